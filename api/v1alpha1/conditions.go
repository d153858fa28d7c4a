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
	// ConditionCertificateExpiring is True on a TLSContext whose
	// certificate expires soon or has expired.
	ConditionCertificateExpiring = "CertificateExpiring"
	// ConditionUpstreamTLSVerified, on a TCPMapping with an https://
	// service, says whether HAProxy verifies the upstream's certificate:
	// False with reason InsecureSkipVerify is a warning, not a rejection.
	ConditionUpstreamTLSVerified = "UpstreamTLSVerified"
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
	// ReasonReloadFailed: HAProxy could not start with the configuration
	// (an address it cannot bind, a port in use); the previous one runs.
	ReasonReloadFailed = "ReloadFailed"
	// ReasonInvalidTLSSettings: HAProxy refused the TLS settings (an
	// unknown cipher or curve, an unusable certificate, CA or CRL).
	ReasonInvalidTLSSettings = "InvalidTLSSettings"
	// ReasonRefusedByHAProxy: HAProxy refused the object's configuration
	// for another reason; the message quotes HAProxy's lines about it.
	ReasonRefusedByHAProxy = "RefusedByHAProxy"
	// ReasonPreviousGenerationInEffect: the newest generation is rejected
	// and the last accepted one keeps serving.
	ReasonPreviousGenerationInEffect = "PreviousGenerationInEffect"
	// ReasonInvalidSpec: a field holds what the API server would have
	// refused (input that did not go through it, e.g. the render
	// command's YAML); the message names the field.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonNotAllowedByListeners: the HAProxy's spec.listeners open the
	// mapping's port to no entry that allows its namespace.
	ReasonNotAllowedByListeners = "NotAllowedByListeners"
	// ReasonNotSelected: no HAProxy selects the object.
	ReasonNotSelected = "NotSelected"
	// ReasonInstanceUnreachable: an instance did not answer in time.
	ReasonInstanceUnreachable = "InstanceUnreachable"
	// ReasonCertificateExpiring and ReasonCertificateExpired explain the
	// CertificateExpiring condition; ReasonCertificateValid clears it.
	ReasonCertificateExpiring = "CertificateExpiring"
	ReasonCertificateExpired  = "CertificateExpired"
	ReasonCertificateValid    = "CertificateValid"
	// ReasonInsecureSkipVerify: upstreamTLS.insecureSkipVerify is set, so
	// the upstream's certificate is not verified.
	ReasonInsecureSkipVerify = "InsecureSkipVerify"
	// ReasonVerified: the upstream's certificate is verified.
	ReasonVerified = "Verified"
)

// Cross-namespace references.
const (
	// ConditionReferenceGrants, on an HAProxy, says whether references
	// into other namespaces can be permitted: True when ReferenceGrants
	// are read (or the policy is AllowAll), False when the ReferenceGrant
	// CRD is not installed, so every such reference is refused.
	ConditionReferenceGrants = "ReferenceGrants"

	// ReasonRefNotPermitted: a reference into another namespace that no
	// ReferenceGrant there permits (and the HAProxy's policy is
	// RequireGrant); the target is not used and not described.
	ReasonRefNotPermitted = "RefNotPermitted"
	// ReasonReferenceGrantsRead, ReasonAllowAll and ReasonCRDNotInstalled
	// explain the ReferenceGrants condition of an HAProxy.
	ReasonReferenceGrantsRead = "ReferenceGrantsRead"
	ReasonAllowAll            = "AllowAll"
	ReasonCRDNotInstalled     = "CRDNotInstalled"
)
