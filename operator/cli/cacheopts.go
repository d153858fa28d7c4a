package cli

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/controller"
)

// lastApplied is the annotation kubectl apply leaves: a full copy of the
// object that the operator never reads, often the largest part of it.
const lastApplied = corev1.LastAppliedConfigAnnotation

// managerCacheOptions is what the operator's cache holds: only the Pods,
// Deployments and PDBs the operator owns, every object without its
// managedFields and (but HAProxies) kubectl's last-applied copy, and Pods
// without what no reconcile reads. At 10,000 mappings these are most of
// the cache. Objects other than HAProxies are written back only through
// their status subresource, which ignores metadata, or are the
// operator's own, which kubectl never applied.
func managerCacheOptions() cache.Options {
	managed := labels.SelectorFromSet(labels.Set{controller.LabelManagedBy: controller.ManagedBy})
	return cache.Options{
		DefaultTransform: trimObject,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}:                   {Label: managed, Transform: trimPod},
			&appsv1.Deployment{}:            {Label: managed},
			&policyv1.PodDisruptionBudget{}: {Label: managed},
			// EndpointSlices are only read: listed into the snapshot that
			// translation reads and never writes (the controller neither
			// updates nor patches one), so the cache hands out its own
			// copies instead of a deep copy of every slice per reconcile.
			&discoveryv1.EndpointSlice{}: {UnsafeDisableDeepCopy: ptr.To(true)},
			// The controller updates HAProxies (their finalizer) from the
			// cached object: an update without kubectl's annotation would
			// delete it from the stored object and break the next kubectl
			// apply, so only managedFields go (an update that omits them
			// keeps them).
			&v1alpha1.HAProxy{}: {Transform: cache.TransformStripManagedFields()},
		},
	}
}

// trimObject drops the fields of any cached object that the operator
// never reads.
func trimObject(in any) (any, error) {
	if o, err := meta.Accessor(in); err == nil {
		o.SetManagedFields(nil)
		if a := o.GetAnnotations(); a[lastApplied] != "" {
			delete(a, lastApplied)
			o.SetAnnotations(a)
		}
	}
	return in, nil
}

// trimPod keeps of an instance Pod what the controller reads: its
// identity and labels (to find its HAProxy and for events), its owners,
// deletion, IP and conditions (to know whether it is ready).
func trimPod(in any) (any, error) {
	p, ok := in.(*corev1.Pod)
	if !ok {
		return trimObject(in)
	}
	out := &corev1.Pod{
		TypeMeta:   p.TypeMeta,
		ObjectMeta: p.ObjectMeta,
		Status: corev1.PodStatus{
			Phase:      p.Status.Phase,
			Conditions: p.Status.Conditions,
			PodIP:      p.Status.PodIP,
			PodIPs:     p.Status.PodIPs,
		},
	}
	out.ManagedFields = nil
	out.Annotations = nil
	return out, nil
}
