package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TLSVersion is a TLS protocol version.
// +kubebuilder:validation:Enum=v1.0;v1.1;v1.2;v1.3
type TLSVersion string

// TLSContextSpec is a certificate and the TLS settings HAProxy uses when it
// terminates TLS for the TCPMappings that name this context.
//
// +kubebuilder:validation:XValidation:rule="!has(self.certRequired) || !self.certRequired || has(self.caSecret)",message="certRequired needs caSecret: client certificates are verified against it"
// +kubebuilder:validation:XValidation:rule="!has(self.minTLSVersion) || !has(self.maxTLSVersion) || self.minTLSVersion <= self.maxTLSVersion",message="minTLSVersion must not be above maxTLSVersion"
type TLSContextSpec struct {
	// Secret is the kubernetes.io/tls Secret (keys tls.crt and tls.key)
	// holding the certificate chain and private key: name in the
	// TLSContext's namespace, or name.namespace (which must permit it with
	// a ReferenceGrant unless the HAProxy's crossNamespaceReferences is
	// AllowAll).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)?$')",message="secret must be name or name.namespace"
	Secret string `json:"secret"`

	// Hosts are the SNI hostnames this certificate is for. When set, a
	// TCPMapping that names this context with a host outside this list is
	// rejected, so a mapping cannot serve a certificate that does not match.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	Hosts []Hostname `json:"hosts,omitempty"`

	// ALPNProtocols are the protocols offered by ALPN, in order of
	// preference, for example h2 and http/1.1: letters, digits and ._/-,
	// no spaces or commas, at most 64 characters each.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9._/-]+$`
	ALPNProtocols []string `json:"alpnProtocols,omitempty"`

	// MinTLSVersion is the oldest TLS version accepted from clients.
	// +optional
	MinTLSVersion TLSVersion `json:"minTLSVersion,omitempty"`

	// MaxTLSVersion is the newest TLS version accepted from clients.
	// +optional
	MaxTLSVersion TLSVersion `json:"maxTLSVersion,omitempty"`

	// CipherSuites are OpenSSL cipher names offered to clients. TLS 1.3
	// suites (names starting with TLS_) and TLS 1.2 ciphers may be mixed.
	// Each name is letters, digits and _+- (at most 64 characters); a name
	// the instance's TLS library does not know rejects this TLSContext
	// (reason InvalidTLSSettings) and the previous settings keep serving.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9_+-]{1,64}$`
	CipherSuites []string `json:"cipherSuites,omitempty"`

	// ECDHCurves are the elliptic curves offered for key exchange, for
	// example X25519 and P-256. Each name is letters, digits and _+- (at
	// most 64 characters); an unknown curve rejects this TLSContext like an
	// unknown cipher.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9_+-]{1,64}$`
	ECDHCurves []string `json:"ecdhCurves,omitempty"`

	// CASecret is a Secret (name, or name.namespace permitted as for
	// secret) whose ca.crt holds the
	// certificate authorities client certificates are verified against.
	// With it, a client certificate is verified when presented.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)?$')",message="caSecret must be name or name.namespace"
	CASecret string `json:"caSecret,omitempty"`

	// CertRequired refuses clients that present no valid certificate.
	// Needs caSecret.
	// +optional
	CertRequired *bool `json:"certRequired,omitempty"`
}

// Hostname is a lowercase DNS name, or *. followed by one.
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:XValidation:rule="self.matches('^([*][.])?[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="host must be a lowercase DNS name, optionally starting with *. for a wildcard"
type Hostname string

// TLSContextStatus is what the operator observed of a TLSContext.
type TLSContextStatus struct {
	// Conditions are Accepted (settings valid and loadable by HAProxy),
	// ResolvedRefs (Secrets found and permitted, PEM valid, key matches
	// certificate) and CertificateExpiring (True when the certificate
	// expires within the HAProxy's certificateExpiryWarning, or has
	// expired), summed up over the parents.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Parents has one entry per HAProxy that serves this TLSContext.
	// +optional
	// +listType=map
	// +listMapKey=haproxy
	// +kubebuilder:validation:MaxItems=32
	Parents []ParentStatus `json:"parents,omitempty"`

	// NotAfter is when the certificate expires.
	// +optional
	NotAfter *metav1.Time `json:"notAfter,omitempty"`

	// DNSNames are the names the certificate is valid for.
	// +optional
	DNSNames []string `json:"dnsNames,omitempty"`

	// LastAccepted is the last generation of the spec that was accepted;
	// it keeps serving while a newer generation is rejected.
	// +optional
	LastAccepted *AcceptedTLSContext `json:"lastAccepted,omitempty"`
}

// AcceptedTLSContext is a generation of a TLSContext's spec that was
// accepted.
type AcceptedTLSContext struct {
	// Generation is the metadata.generation the spec had.
	Generation int64 `json:"generation"`
	// Spec is the accepted spec.
	Spec TLSContextSpec `json:"spec"`
}

// TLSContext holds the certificate and TLS settings for TCPMappings that
// terminate TLS.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tlsctx,categories=haproxy-operator
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.spec.secret`
// +kubebuilder:printcolumn:name="Hosts",type=string,JSONPath=`.spec.hosts`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.notAfter`
// +kubebuilder:printcolumn:name="Resolved",type=string,JSONPath=`.status.conditions[?(@.type=="ResolvedRefs")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TLSContext struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TLSContextSpec   `json:"spec"`
	Status TLSContextStatus `json:"status,omitempty"`
}

// TLSContextList is a list of TLSContexts.
//
// +kubebuilder:object:root=true
type TLSContextList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TLSContext `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TLSContext{}, &TLSContextList{})
}
