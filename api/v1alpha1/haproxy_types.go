package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HAProxySpec is one set of HAProxy instances and the mappings they serve.
type HAProxySpec struct {
	// Replicas is the number of HAProxy instances.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	Replicas *int32 `json:"replicas,omitempty"`

	// Image is the HAProxy instance image (HAProxy and the dataplane).
	// Empty means the image this operator release was built with.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`

	// MappingSelector selects the TCPMappings (and TLSContexts) this HAProxy
	// serves by label. Empty selects all in the selected namespaces.
	// +optional
	MappingSelector *metav1.LabelSelector `json:"mappingSelector,omitempty"`

	// NamespaceSelector selects the namespaces whose mappings this HAProxy
	// serves. Not set: only the HAProxy's own namespace. An empty selector
	// selects every namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// ServiceType is the type of the Service that exposes the mappings'
	// ports.
	// +optional
	// +kubebuilder:default=LoadBalancer
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	ServiceType corev1.ServiceType `json:"serviceType,omitempty"`

	// Stats configures HAProxy's stats page and Prometheus exporter.
	// +optional
	// +kubebuilder:default={}
	Stats StatsSpec `json:"stats,omitempty"`

	// EnableIPv4 is the default of every served mapping's enableIPv4: IPv4
	// DNS lookups for services resolved by DNS.
	// +optional
	// +kubebuilder:default=true
	EnableIPv4 *bool `json:"enableIPv4,omitempty"`

	// EnableIPv6 is the default of every served mapping's enableIPv6: IPv6
	// DNS lookups for services resolved by DNS.
	// +optional
	// +kubebuilder:default=false
	EnableIPv6 *bool `json:"enableIPv6,omitempty"`

	// HardStopAfter bounds how long connections established before a reload
	// may keep running on the old HAProxy worker.
	// +optional
	// +kubebuilder:default="15m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	HardStopAfter *metav1.Duration `json:"hardStopAfter,omitempty"`

	// Timeouts bound the phases of a connection in which a client holds a
	// connection slot without having been routed yet.
	// +optional
	// +kubebuilder:default={}
	Timeouts *TimeoutsSpec `json:"timeouts,omitempty"`

	// MaxReloadsPerWorker bounds how many reloads an old HAProxy worker
	// survives while it finishes its connections: once a worker has lived
	// through more reloads than this, it is stopped, so frequent reloads
	// with long-lived connections cannot pile up processes and memory.
	// Together with hardStopAfter it bounds the old workers.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxReloadsPerWorker *int32 `json:"maxReloadsPerWorker,omitempty"`

	// CertificateExpiryWarning is how long before a served certificate
	// expires its TLSContext gets CertificateExpiring=True and a warning
	// event.
	// +optional
	// +kubebuilder:default="336h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	CertificateExpiryWarning *metav1.Duration `json:"certificateExpiryWarning,omitempty"`

	// DataPlaneAPI configures the credentials the operator uses to reach
	// each instance's Data Plane API.
	// +optional
	DataPlaneAPI DataPlaneAPISpec `json:"dataPlaneAPI,omitempty"`

	// ExternalInstances are HAProxy instances the operator does not run
	// (VMs, bare-metal edges), each reached through its Data Plane API
	// (this project's dataplane or the official dataplaneapi v2.9). When
	// set, the operator creates no Deployment, Service or
	// PodDisruptionBudget for this HAProxy and programs these instances
	// instead. Service endpoints become their servers, so Pod IPs must be
	// routable from them.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	ExternalInstances []ExternalInstance `json:"externalInstances,omitempty"`

	// Resources are the compute resources of the HAProxy container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// Listeners restrict which namespaces may use which ports, like the
	// Gateway API's allowedRoutes: a mapping is accepted only on a port
	// of an entry whose namespaces include its own. Not set: every port
	// is open to every served namespace.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Listeners []ListenerSpec `json:"listeners,omitempty"`

	// CrossNamespaceReferences says when a served object may reference an
	// object in another namespace (a TCPMapping's service name.namespace
	// or tls name.namespace, a TLSContext's secret or caSecret
	// name.namespace). RequireGrant: only when a Gateway API
	// ReferenceGrant (gateway.networking.k8s.io/v1beta1) in the target
	// namespace permits it; otherwise the referrer gets
	// ResolvedRefs=False with reason RefNotPermitted and the target is not
	// used. AllowAll: every such reference is honoured, as Ambassador
	// does; for clusters whose namespaces all belong to one team.
	// +optional
	// +kubebuilder:default=RequireGrant
	CrossNamespaceReferences CrossNamespacePolicy `json:"crossNamespaceReferences,omitempty"`

	// DataPlaneTLSSecret names a Secret in the HAProxy's namespace with
	// tls.crt, tls.key and ca.crt (the Secret of a cert-manager
	// Certificate, say): the instances' Data Plane API serves tls.crt and
	// the operator verifies it with ca.crt. The certificate must name the
	// DNS name haproxy-<HAProxy name>-dataplane.<namespace>.svc, which the
	// operator expects whatever the Pod's address. The operator only reads
	// this Secret. Not set: the operator issues the certificate from a CA
	// of its own for this HAProxy and renews both before they expire.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	DataPlaneTLSSecret string `json:"dataPlaneTLSSecret,omitempty"`
}

// CrossNamespacePolicy is how an HAProxy treats references from the
// objects it serves into other namespaces.
// +kubebuilder:validation:Enum=RequireGrant;AllowAll
type CrossNamespacePolicy string

const (
	// CrossNamespaceRequireGrant honours a reference into another
	// namespace only when a ReferenceGrant there permits it. An empty
	// policy means this.
	CrossNamespaceRequireGrant CrossNamespacePolicy = "RequireGrant"
	// CrossNamespaceAllowAll honours every reference into another
	// namespace.
	CrossNamespaceAllowAll CrossNamespacePolicy = "AllowAll"
)

// ListenerSpec opens a port or a range of ports to some namespaces.
type ListenerSpec struct {
	// Ports is one port "N" or an inclusive range "N-M", each between 1
	// and 65535.
	// +kubebuilder:validation:MaxLength=11
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]{1,5}(-[0-9]{1,5})?$') && int(self.find('^[0-9]+')) >= 1 && int(self.find('[0-9]+$')) <= 65535 && int(self.find('^[0-9]+')) <= int(self.find('[0-9]+$'))",message="ports must be a port N or a range N-M with 1 <= N <= M <= 65535"
	Ports string `json:"ports"`

	// Namespaces selects the namespaces whose mappings may use these
	// ports. Not set: every namespace the HAProxy serves.
	// +optional
	Namespaces *ListenerNamespaces `json:"namespaces,omitempty"`
}

// ListenerNamespaces selects namespaces by their labels.
type ListenerNamespaces struct {
	// Selector selects namespaces by label; an empty selector selects
	// every namespace.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// TimeoutsSpec bounds the phases of a connection before it is routed.
type TimeoutsSpec struct {
	// Handshake is how long a client may take, once connected, to send
	// its TLS ClientHello (SNI ports), to complete the TLS handshake
	// (terminating ports) and, on any port, to be routed to a backend.
	// Connections that take longer are closed, so idle clients cannot
	// hold connection slots. Established connections are bounded only by
	// the mappings' idleTimeoutMs.
	// +optional
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	Handshake *metav1.Duration `json:"handshake,omitempty"`
}

// StatsSpec configures the stats page of every instance.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.public) && self.public && has(self.authSecret) && size(self.authSecret) > 0)",message="a public stats page takes no authSecret"
type StatsSpec struct {
	// Enabled serves the stats page and the Prometheus exporter (/metrics).
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// Port is the port of the stats page and of /metrics.
	// +optional
	// +kubebuilder:default=8404
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// Path is the URL path of the stats page.
	// +optional
	// +kubebuilder:default="/stats"
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^/[A-Za-z0-9._~/-]*$')",message="path must start with / and hold only letters, digits and ._~/-"
	// +kubebuilder:validation:XValidation:rule="self != '/metrics'",message="path /metrics is the Prometheus exporter's"
	Path string `json:"path,omitempty"`

	// AuthSecret names a Secret in the HAProxy's namespace with keys
	// username and password that the stats page asks for. Not set: the
	// operator generates credentials in the Secret haproxy-<name>-stats,
	// unless public is true.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	AuthSecret string `json:"authSecret,omitempty"`

	// Public serves the stats page without credentials. It shows every
	// mapping's ports, backends and servers: opt in only where the
	// network already restricts who reaches it.
	// +optional
	Public bool `json:"public,omitempty"`

	// ServiceType is the type of the Service haproxy-<name>-stats that
	// exposes the stats page and /metrics; it is never exposed through the
	// mappings' Service.
	// +optional
	// +kubebuilder:default=ClusterIP
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	ServiceType corev1.ServiceType `json:"serviceType,omitempty"`
}

// DataPlaneAPISpec configures access to the instances' Data Plane API.
type DataPlaneAPISpec struct {
	// CredentialsSecret names a Secret in the HAProxy's namespace with keys
	// username and password. Not set: the operator generates one.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	CredentialsSecret string `json:"credentialsSecret,omitempty"`

	// Port is the port the dataplane listens on inside each instance.
	// +optional
	// +kubebuilder:default=5555
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
}

// ExternalInstance is an HAProxy the operator programs but does not run.
type ExternalInstance struct {
	// Name identifies the instance in status.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// URL is the base URL of the instance's Data Plane API (without
	// /v2), over HTTPS: credentials never cross the network in clear.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://') && !self.contains('?') && !self.contains('#')",message="url must be https://host[:port][/path], with no query or fragment"
	URL string `json:"url"`

	// CredentialsSecret names a Secret in the HAProxy's namespace with keys
	// username and password for the API.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	CredentialsSecret string `json:"credentialsSecret"`

	// CASecret names a Secret in the HAProxy's namespace whose ca.crt
	// verifies the API's certificate. Not set: the system's roots.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	CASecret string `json:"caSecret,omitempty"`
}

// InstanceStatus is what one HAProxy instance runs.
type InstanceStatus struct {
	// Pod is the instance's Pod name, or the name of an external
	// instance.
	Pod string `json:"pod"`
	// URL is the Data Plane API of an external instance.
	// +optional
	URL string `json:"url,omitempty"`
	// ConfigHash is the hash of the configuration the instance runs.
	// +optional
	ConfigHash string `json:"configHash,omitempty"`
	// Programmed is true when the instance runs the desired configuration.
	Programmed bool `json:"programmed"`
	// Message says why the instance is not programmed.
	// +optional
	Message string `json:"message,omitempty"`
}

// HAProxyStatus is what the operator observed of an HAProxy.
type HAProxyStatus struct {
	// ObservedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Replicas is the number of instance Pods.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// ReadyReplicas is the number of ready instance Pods.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// ProgrammedReplicas is the number of instances running the desired
	// configuration.
	// +optional
	ProgrammedReplicas int32 `json:"programmedReplicas,omitempty"`
	// Selector is the label selector of the instance Pods, in the string
	// form of a label query; the scale subresource returns it, so a
	// HorizontalPodAutoscaler finds the Pods whose metrics it averages.
	// +optional
	Selector string `json:"selector,omitempty"`
	// ConfigHash is the hash of the desired configuration.
	// +optional
	ConfigHash string `json:"configHash,omitempty"`
	// Instances lists what each ready instance runs.
	// +optional
	// +listType=map
	// +listMapKey=pod
	Instances []InstanceStatus `json:"instances,omitempty"`
	// AcceptedMappings counts the served mappings that are programmed.
	// +optional
	AcceptedMappings int32 `json:"acceptedMappings,omitempty"`
	// RejectedMappings counts the served mappings that are not accepted or
	// whose references are not resolved.
	// +optional
	RejectedMappings int32 `json:"rejectedMappings,omitempty"`
	// Conditions are Ready and Programmed.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// HAProxy is a set of HAProxy instances that serve TCPMappings.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:path=haproxies,shortName=hap,categories=haproxy-operator
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Programmed",type=integer,JSONPath=`.status.programmedReplicas`
// +kubebuilder:printcolumn:name="Accepted",type=integer,JSONPath=`.status.acceptedMappings`
// +kubebuilder:printcolumn:name="Rejected",type=integer,JSONPath=`.status.rejectedMappings`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type HAProxy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   HAProxySpec   `json:"spec,omitempty"`
	Status HAProxyStatus `json:"status,omitempty"`
}

// HAProxyList is a list of HAProxies.
//
// +kubebuilder:object:root=true
type HAProxyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HAProxy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&HAProxy{}, &HAProxyList{})
}
