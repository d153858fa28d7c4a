package v1alpha1

// Condition types shared by the resources of this API.
const (
	// ConditionAccepted says whether the object is valid and does not
	// conflict with another object.
	ConditionAccepted = "Accepted"
	// ConditionResolvedRefs says whether every object this one references
	// (TLSContext, Secret, Service) was found and usable.
	ConditionResolvedRefs = "ResolvedRefs"
	// ConditionProgrammed says whether every ready HAProxy instance runs a
	// configuration that contains the object.
	ConditionProgrammed = "Programmed"
	// ConditionReady says whether an HAProxy's instances are available.
	ConditionReady = "Ready"
)

// Reasons carried by conditions and events.
const (
	ReasonAccepted            = "Accepted"
	ReasonResolved            = "Resolved"
	ReasonConflict            = "Conflict"
	ReasonInvalidWeights      = "InvalidWeights"
	ReasonInvalidService      = "InvalidService"
	ReasonInvalidIPFamilies   = "InvalidIPFamilies"
	ReasonTLSContextNotFound  = "TLSContextNotFound"
	ReasonSecretNotFound      = "SecretNotFound"
	ReasonInvalidCertificate  = "InvalidCertificate"
	ReasonServiceNotFound     = "ServiceNotFound"
	ReasonServicePortNotFound = "ServicePortNotFound"
	ReasonHostNotInTLSContext = "HostNotInTLSContext"
	ReasonInvalidTLSContext   = "InvalidTLSContext"
	ReasonProgrammed          = "Programmed"
	ReasonPending             = "Pending"
	ReasonApplyFailed         = "ApplyFailed"
)
