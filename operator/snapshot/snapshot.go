// Package snapshot owns the set of inputs one HAProxy resource needs for a
// reconcile, read once so that translation sees a consistent picture. The
// Snapshot type is plain data; Gather is the only code that fills it from
// the API server.
package snapshot

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// Snapshot is every input one HAProxy's configuration depends on.
type Snapshot struct {
	HAProxy    v1alpha1.HAProxy
	Namespaces []corev1.Namespace
	// TCPMappings are the cached objects themselves: read, never modified.
	TCPMappings []*v1alpha1.TCPMapping
	TLSContexts []v1alpha1.TLSContext
	Secrets     []corev1.Secret
	Services    []corev1.Service
	// EndpointSlices, like every object Gather reads, share their slices
	// and maps with the cached objects: they are read, never modified.
	EndpointSlices []discoveryv1.EndpointSlice
	// ReferenceGrants are the Gateway API ReferenceGrants of every
	// namespace: the consent a namespace gives to references from others.
	ReferenceGrants []gatewayv1beta1.ReferenceGrant
	// NoReferenceGrantCRD is set when the cluster does not serve
	// ReferenceGrants at all, so none can permit anything; the HAProxy's
	// status says so.
	NoReferenceGrantCRD bool
	// Exclusions are objects HAProxy refused (a cipher it does not know, a
	// certificate it cannot load, an address it cannot bind): translation
	// leaves them out, so the rest of the configuration still loads.
	Exclusions []Exclusion
}

// Exclusion is one generation of an object HAProxy refused.
type Exclusion struct {
	// Ref is Kind/namespace/name, e.g. TCPMapping/default/db or
	// TLSContext/default/site.
	Ref string
	// Generation is the refused generation: a newer one is tried again.
	Generation int64
	// Reason is the condition reason reported on the object, e.g.
	// InvalidTLSSettings or ReloadFailed.
	Reason string
	// Message is the sentence reported on the object; it must quote only
	// HAProxy lines about this object.
	Message string
}
