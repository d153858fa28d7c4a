package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TCPMappingSpec is the desired routing of TCP connections on one port to one
// service. Its fields follow Ambassador's TCPMapping attributes one for one.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.enableIPv4) && !self.enableIPv4 && has(self.enableIPv6) && !self.enableIPv6)",message="enableIPv4 and enableIPv6 cannot both be false: the service could not be resolved at all"
// +kubebuilder:validation:XValidation:rule="!has(self.upstreamTLS) || self.service.startsWith('https://')",message="upstreamTLS needs an https:// service"
// +kubebuilder:validation:XValidation:rule="!self.service.matches('^https://([0-9]+[.][0-9]+[.][0-9]+[.][0-9]+|[[][0-9a-fA-F:.]+[]])(:[0-9]+)?$') || (has(self.upstreamTLS) && (has(self.upstreamTLS.serverName) || (has(self.upstreamTLS.insecureSkipVerify) && self.upstreamTLS.insecureSkipVerify)))",message="an https:// service given as an IP address needs upstreamTLS.serverName (the name its certificate is verified for) or upstreamTLS.insecureSkipVerify"
// +kubebuilder:validation:XValidation:rule="!has(self.queueTimeoutMs) || has(self.maxConnectionsPerServer)",message="queueTimeoutMs needs maxConnectionsPerServer: connections queue only for full servers"
type TCPMappingSpec struct {
	// Port is the TCP port on which HAProxy listens for connections for this
	// mapping.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// Address is the IP address on which HAProxy listens for this mapping's
	// connections. If not present, HAProxy listens on all addresses.
	// +optional
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="address must be an IPv4 or IPv6 address"
	Address string `json:"address,omitempty"`

	// Service is the upstream that handles the connections, written
	// [scheme://]name[.namespace][:port]. A name without a namespace is a
	// Service in the mapping's namespace; name.namespace is a Service in
	// another namespace (which must permit it with a ReferenceGrant unless
	// the HAProxy's crossNamespaceReferences is AllowAll); a name that is
	// no Service in the cluster is resolved by DNS. The scheme https:// makes HAProxy open TLS towards the upstream
	// (re-encrypting what it decrypted); the default port is 80, or 443 with
	// https://.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=261
	// +kubebuilder:validation:XValidation:rule="self.matches('^((http|https)://)?([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*|[[][0-9a-fA-F:.]+[]])(:[0-9]{1,5})?$')",message="service must be [scheme://]name[.namespace][:port]: scheme http or https, a lowercase DNS name or IP address, an optional port, and no path, spaces or other characters"
	// +kubebuilder:validation:XValidation:rule="!self.matches(':[0-9]+$') || (int(self.substring(self.lastIndexOf(':') + 1)) >= 1 && int(self.substring(self.lastIndexOf(':') + 1)) <= 65535)",message="service port must be between 1 and 65535"
	Service string `json:"service"`

	// TLS enables TLS termination: it names the TLSContext (name in the
	// mapping's namespace, or name.namespace, which needs a ReferenceGrant
	// there like service) whose certificate HAProxy offers when a client
	// connects. HAProxy then forwards the decrypted
	// stream to the service, in cleartext unless the service is https://.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)?$')",message="tls must name a TLSContext as name or name.namespace"
	TLS string `json:"tls,omitempty"`

	// Host is the hostname that must be presented using SNI for this mapping
	// to match: a lowercase DNS name, or *. followed by one (a wildcard for
	// exactly one label). With tls, HAProxy matches the SNI after terminating
	// TLS. Without tls, HAProxy does not terminate: it reads the SNI from the
	// ClientHello and passes the TLS connection through to the service
	// untouched.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^([*][.])?[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="host must be a lowercase DNS name, optionally starting with *. for a wildcard"
	Host string `json:"host,omitempty"`

	// Weight is the (integer) percentage of the traffic for this mapping's
	// address, port and host that is routed using this mapping. Mappings
	// without a weight share what the weighted ones leave equally. Weight 0
	// routes nothing to this mapping.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Weight *int32 `json:"weight,omitempty"`

	// IdleTimeoutMs is the timeout, in milliseconds, after which a connection
	// is terminated if no traffic is seen in either direction. If not present,
	// no timeout is applied.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2147483647
	IdleTimeoutMs *int64 `json:"idleTimeoutMs,omitempty"`

	// ConnectTimeoutMs bounds, in milliseconds, how long HAProxy waits
	// for a connection to one of the service's servers to be established.
	// The default is 5000. Mappings that share traffic (same address, port
	// and host) must agree on it, as on retries and redispatch.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2147483647
	ConnectTimeoutMs *int64 `json:"connectTimeoutMs,omitempty"`

	// Retries is how many times HAProxy tries again to connect to a
	// server after a failed attempt, before it closes the client's
	// connection. The default is 3.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Retries *int32 `json:"retries,omitempty"`

	// Redispatch makes each retry after a failed connection go to another
	// server of the service instead of the same one. With weighted
	// mappings, a retry may go to a server of another mapping that shares
	// the traffic.
	// +optional
	Redispatch *bool `json:"redispatch,omitempty"`

	// LoadBalancer is how connections are spread over the servers:
	// roundrobin (the default) takes them in turn, in proportion to their
	// weights; leastconn picks the server with the fewest connections,
	// for long-lived ones; source keeps each client address on one server
	// (consistent hashing, so a server coming or going moves few
	// clients). Weights hold with each: with source they split client
	// addresses rather than connections. Mappings that share traffic must
	// agree on it.
	// +optional
	// +kubebuilder:validation:Enum=roundrobin;leastconn;source
	LoadBalancer string `json:"loadBalancer,omitempty"`

	// HealthCheck makes HAProxy check each of the service's servers on
	// its own by opening a TCP connection to it (over TLS for an https://
	// service, with the same TLS settings as traffic): a server that
	// fails fall checks in a row is marked DOWN and gets no new
	// connections until it passes rise checks in a row. Servers marked
	// down show as DOWN on the stats page. Without it every server is
	// taken as up. Mappings that share traffic must agree on it.
	// +optional
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`

	// SendProxyProtocol makes HAProxy start every connection to the
	// service with a PROXY protocol header (v1, text, or v2, binary) that
	// tells the upstream the client's address and port.
	// +optional
	// +kubebuilder:validation:Enum=v1;v2
	SendProxyProtocol string `json:"sendProxyProtocol,omitempty"`

	// AcceptProxyProtocol makes HAProxy read a PROXY protocol header (v1
	// or v2) at the start of every connection on this mapping's port, as
	// sent by a load balancer in front of it, and use the client address
	// it carries; a connection without one is closed. It holds for the
	// whole port (address and port): when mappings on one port disagree,
	// the oldest one decides and a newer one that differs is not
	// accepted (Conflict).
	// +optional
	AcceptProxyProtocol *bool `json:"acceptProxyProtocol,omitempty"`

	// MaxConnections bounds the connections this mapping carries at once
	// on each HAProxy instance: a connection beyond it is refused (closed
	// at once) rather than queued. Mappings that share traffic (same
	// address, port and host) must agree on it, and it bounds their
	// connections together.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxConnections *int32 `json:"maxConnections,omitempty"`

	// MaxConnectionsPerServer bounds the connections each of the
	// service's servers (endpoints) gets at once. A connection that finds
	// every server full waits in a queue until one frees up, for at most
	// queueTimeoutMs, and is then closed.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxConnectionsPerServer *int32 `json:"maxConnectionsPerServer,omitempty"`

	// QueueTimeoutMs is how long, in milliseconds, a connection waits for
	// a server below maxConnectionsPerServer before it is closed. The
	// default is the connect timeout (connectTimeoutMs, 5000 when unset).
	// Mappings that share traffic must agree on it.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2147483647
	QueueTimeoutMs *int64 `json:"queueTimeoutMs,omitempty"`

	// ConnectionRateLimit bounds how many new connections one client
	// address may open to this mapping in a period; connections beyond it
	// are refused until the rate falls. Each HAProxy instance counts on
	// its own, and starts over when its configuration reloads. Mappings
	// that share traffic must agree on it.
	// +optional
	ConnectionRateLimit *ConnectionRateLimit `json:"connectionRateLimit,omitempty"`

	// AllowedSourceRanges, when given, admits only clients whose address
	// is in one of these CIDRs (IPv4 or IPv6, such as 10.0.0.0/8 or
	// 2001:db8::/32); others are refused. On a port shared by SNI hosts
	// the check happens once the host is known, so each host has its own
	// lists. Mappings that share traffic must agree on it.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	AllowedSourceRanges []SourceRange `json:"allowedSourceRanges,omitempty"`

	// DeniedSourceRanges refuses clients whose address is in one of
	// these CIDRs, even when allowedSourceRanges admits them: deny wins.
	// Mappings that share traffic must agree on it.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	DeniedSourceRanges []SourceRange `json:"deniedSourceRanges,omitempty"`

	// AccessLog makes the HAProxy instances write one JSON line per
	// connection of this mapping to their standard output, naming the
	// mapping, the client address, the SNI, the server, the bytes each
	// way, the duration and how the connection ended. Connections of
	// mappings without it are not logged. Mappings that share traffic
	// must agree on it.
	// +optional
	AccessLog *bool `json:"accessLog,omitempty"`

	// EnableIPv4 enables IPv4 DNS lookups for this mapping's service. The
	// default is the HAProxy resource's enableIPv4.
	// +optional
	EnableIPv4 *bool `json:"enableIPv4,omitempty"`

	// EnableIPv6 enables IPv6 DNS lookups for this mapping's service. The
	// default is the HAProxy resource's enableIPv6. If both IPv4 and IPv6 are
	// enabled, IPv6 is preferred.
	// +optional
	EnableIPv6 *bool `json:"enableIPv6,omitempty"`

	// UpstreamTLS says how HAProxy checks the server of an https://
	// service and which certificate it shows it. Without it, an https://
	// service's certificate is verified against the system's certificate
	// authorities, for the service's host name.
	// +optional
	UpstreamTLS *UpstreamTLS `json:"upstreamTLS,omitempty"`
}

// UpstreamTLS is the TLS HAProxy opens towards an https:// service.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.insecureSkipVerify) && self.insecureSkipVerify && has(self.caSecret))",message="insecureSkipVerify cannot be combined with caSecret: nothing would be verified against it"
type UpstreamTLS struct {
	// CASecret is a Secret (name in the mapping's namespace, or
	// name.namespace, which needs a ReferenceGrant there like service)
	// whose ca.crt holds the certificate authorities the upstream's
	// certificate is verified against. Without it, the system's
	// certificate authorities of the HAProxy instance are used.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)?$')",message="caSecret must be name or name.namespace"
	CASecret string `json:"caSecret,omitempty"`

	// ServerName is sent as SNI and is the name the upstream's
	// certificate must be valid for. The default is the host of service
	// as written (name, name.namespace or a DNS name); a service given as
	// an IP address needs it unless insecureSkipVerify is set.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="serverName must be a lowercase DNS name"
	ServerName string `json:"serverName,omitempty"`

	// InsecureSkipVerify accepts any certificate from the upstream. The
	// connection is encrypted but not authenticated; the mapping's
	// Accepted condition says so, and its UpstreamTLSVerified condition
	// is False with reason InsecureSkipVerify.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`

	// ClientCertificateSecret is a kubernetes.io/tls Secret (keys tls.crt
	// and tls.key; name, or name.namespace permitted as for caSecret)
	// whose certificate HAProxy presents to the upstream, for upstreams
	// that require client certificates.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)?$')",message="clientCertificateSecret must be name or name.namespace"
	ClientCertificateSecret string `json:"clientCertificateSecret,omitempty"`
}

// TCPMappingStatus is what the operator observed of a TCPMapping.
type TCPMappingStatus struct {
	// Conditions sum up the parents: Accepted (valid and without conflict
	// in every HAProxy that serves it), ResolvedRefs (TLSContext, Secret
	// and Service found and permitted) and Programmed (running in every
	// ready instance of every HAProxy that serves it). A mapping no
	// HAProxy selects has Accepted=False with reason NotSelected.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Parents has one entry per HAProxy that serves this mapping, each with
	// its own conditions, as Gateway API routes list their parents.
	// +optional
	// +listType=map
	// +listMapKey=haproxy
	// +kubebuilder:validation:MaxItems=32
	Parents []ParentStatus `json:"parents,omitempty"`

	// Frontend is the HAProxy frontend that carries this mapping, as the
	// stats page shows it.
	// +optional
	Frontend string `json:"frontend,omitempty"`
	// Backend is the HAProxy backend of this mapping's weight group; its
	// servers are named namespace:mapping:n.
	// +optional
	Backend string `json:"backend,omitempty"`

	// LastAccepted is the last generation of the spec that was accepted.
	// While a newer generation is rejected (weights of a group summing over
	// 100 in the middle of an edit, say), this one keeps serving.
	// +optional
	LastAccepted *AcceptedTCPMapping `json:"lastAccepted,omitempty"`
}

// AcceptedTCPMapping is a generation of a TCPMapping's spec that was
// accepted.
type AcceptedTCPMapping struct {
	// Generation is the metadata.generation the spec had.
	Generation int64 `json:"generation"`
	// Spec is the accepted spec.
	Spec TCPMappingSpec `json:"spec"`
}

// ParentStatus is the state of an object in one HAProxy that serves it.
type ParentStatus struct {
	// HAProxy is the serving HAProxy resource, as namespace/name.
	// +kubebuilder:validation:MaxLength=317
	HAProxy string `json:"haproxy"`
	// Conditions are Accepted, ResolvedRefs and Programmed in this HAProxy.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Frontend is the HAProxy frontend that carries the mapping there.
	// +optional
	Frontend string `json:"frontend,omitempty"`
	// Backend is the HAProxy backend of the mapping's weight group there.
	// +optional
	Backend string `json:"backend,omitempty"`
}

// TCPMapping routes TCP connections arriving on a port (and optionally an
// address and an SNI host) to a service.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tcpm,categories=haproxy-operator
// +kubebuilder:printcolumn:name="Port",type=integer,JSONPath=`.spec.port`
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.spec.host`
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.spec.service`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.spec.weight`
// +kubebuilder:printcolumn:name="TLS",type=string,JSONPath=`.spec.tls`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TCPMapping struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TCPMappingSpec   `json:"spec"`
	Status TCPMappingStatus `json:"status,omitempty"`
}

// TCPMappingList is a list of TCPMappings.
//
// +kubebuilder:object:root=true
type TCPMappingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TCPMapping `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TCPMapping{}, &TCPMappingList{})
}

// SourceRange is a range of client addresses in CIDR notation, IPv4
// (192.0.2.0/24) or IPv6 (2001:db8::/32); a single address is a /32 or
// /128.
// +kubebuilder:validation:MaxLength=49
// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="a source range must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32"
type SourceRange string

// ConnectionRateLimit bounds the new connections per client address.
type ConnectionRateLimit struct {
	// Connections is how many new connections one client address may
	// open in a period; the next one is refused.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	Connections int32 `json:"connections"`

	// PeriodMs is the sliding period, in milliseconds, over which
	// connections are counted. The default is 1000.
	// +optional
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=86400000
	PeriodMs *int64 `json:"periodMs,omitempty"`
}

// HealthCheck is the active check of a mapping's servers.
type HealthCheck struct {
	// IntervalMs is the time, in milliseconds, between two checks of a
	// server. The default is 2000.
	// +optional
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=86400000
	IntervalMs *int64 `json:"intervalMs,omitempty"`

	// Rise is how many checks in a row a DOWN server must pass to be
	// marked UP again. The default is 2.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Rise *int32 `json:"rise,omitempty"`

	// Fall is how many checks in a row an UP server must fail to be
	// marked DOWN. The default is 3.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Fall *int32 `json:"fall,omitempty"`

	// Send is written to the server once the check's connection is up,
	// for protocols that answer only when spoken to ("PING\r\n"):
	// printable ASCII, tab, CR and LF, but no ", \ or $.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[ !#%-\[\]-~\t\r\n]*$`
	Send string `json:"send,omitempty"`

	// Expect is text the server must send (after Send, if given) for the
	// check to pass; without it a connection that opens passes. The same
	// characters as Send.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[ !#%-\[\]-~\t\r\n]*$`
	Expect string `json:"expect,omitempty"`

	// ErrorLimit adds passive checking: after this many failed
	// connections in a row from clients to a server (refused or timed
	// out), it is marked DOWN at once, without waiting for fall checks;
	// the active checks bring it back UP.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	ErrorLimit *int32 `json:"errorLimit,omitempty"`
}
