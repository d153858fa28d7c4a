package controller

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

func (r *HAProxyReconciler) haproxies(ctx context.Context) []v1alpha1.HAProxy {
	var list v1alpha1.HAProxyList
	if err := r.Client.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "List HAProxies")
		return nil
	}
	return list.Items
}

func request(h *v1alpha1.HAProxy) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: h.Namespace, Name: h.Name}}
}

func (r *HAProxyReconciler) forAll(ctx context.Context, _ client.Object) []reconcile.Request {
	var out []reconcile.Request
	for _, h := range r.haproxies(ctx) {
		out = append(out, request(&h))
	}
	return out
}

func (r *HAProxyReconciler) forPod(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[LabelHAProxy]
	if name == "" || o.GetLabels()[LabelManagedBy] != ManagedBy {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// forSelected wakes the HAProxies that select the object (called with the
// old and the new object on updates, so a relabelled mapping leaves too).
func (r *HAProxyReconciler) forSelected(ctx context.Context, o client.Object) []reconcile.Request {
	var ns corev1.Namespace
	nsLabels := labels.Set{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: o.GetNamespace()}, &ns); err == nil {
		nsLabels = ns.Labels
	}
	var out []reconcile.Request
	for _, h := range r.haproxies(ctx) {
		if selects(&h, nsLabels, o) {
			out = append(out, request(&h))
		}
	}
	return out
}

func selects(h *v1alpha1.HAProxy, nsLabels labels.Set, o client.Object) bool {
	if h.Spec.NamespaceSelector == nil {
		if o.GetNamespace() != h.Namespace {
			return false
		}
	} else if sel, err := metav1.LabelSelectorAsSelector(h.Spec.NamespaceSelector); err != nil || !sel.Matches(nsLabels) {
		return false
	}
	if h.Spec.MappingSelector == nil {
		return true
	}
	sel, err := metav1.LabelSelectorAsSelector(h.Spec.MappingSelector)
	return err == nil && sel.Matches(labels.Set(o.GetLabels()))
}

// forTLSContext wakes the HAProxies that select the TLSContext or a
// TCPMapping that names it.
func (r *HAProxyReconciler) forTLSContext(ctx context.Context, o client.Object) []reconcile.Request {
	return r.selecting(ctx, r.withReferrers(ctx, o))
}

// withReferrers is the TLSContext o with the TCPMappings that name it.
func (r *HAProxyReconciler) withReferrers(ctx context.Context, o client.Object) []client.Object {
	return append([]client.Object{o}, r.mappingsBy(ctx, indexMappingTLS, o.GetNamespace()+"/"+o.GetName())...)
}

// forService wakes the HAProxies that select a TCPMapping naming the
// Service, and the HAProxy that owns it (its ports or stats Service), so
// a Service someone changed or deleted is put right at once.
func (r *HAProxyReconciler) forService(ctx context.Context, o client.Object) []reconcile.Request {
	out := r.selecting(ctx, r.mappingsBy(ctx, indexMappingService, o.GetNamespace()+"/"+o.GetName()))
	if owner := metav1.GetControllerOf(o); owner != nil && owner.Kind == "HAProxy" && owner.APIVersion == v1alpha1.GroupVersion.String() {
		req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: owner.Name}}
		if !slices.Contains(out, req) {
			out = append(out, req)
		}
	}
	return out
}

// forEndpointSlice wakes the HAProxies that select a TCPMapping naming
// the slice's Service.
func (r *HAProxyReconciler) forEndpointSlice(ctx context.Context, o client.Object) []reconcile.Request {
	svc := o.GetLabels()[discoveryv1.LabelServiceName]
	if svc == "" {
		return nil
	}
	return r.selecting(ctx, r.mappingsBy(ctx, indexMappingService, o.GetNamespace()+"/"+svc))
}

// forSecret wakes the HAProxies that read the Secret for themselves and
// those that select a TLSContext naming it, or a TCPMapping naming such a
// TLSContext.
func (r *HAProxyReconciler) forSecret(ctx context.Context, o client.Object) []reconcile.Request {
	key := o.GetNamespace() + "/" + o.GetName()
	var objs []client.Object
	for _, c := range r.contextsBy(ctx, indexContextSecret, key) {
		objs = append(objs, r.withReferrers(ctx, c)...)
	}
	objs = append(objs, r.mappingsBy(ctx, indexMappingSecret, key)...)
	out := r.selecting(ctx, objs)
	var own v1alpha1.HAProxyList
	if err := r.Client.List(ctx, &own, client.MatchingFields{indexHAProxySecret: key}); err != nil {
		log.FromContext(ctx).Error(err, "List HAProxies by Secret", "secret", key)
	}
	for i := range own.Items {
		if req := request(&own.Items[i]); !slices.Contains(out, req) {
			out = append(out, req)
		}
	}
	return out
}
