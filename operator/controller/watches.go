package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
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

// forReference wakes the HAProxies whose last configuration depended on
// the object.
func (r *HAProxyReconciler) forReference(ref string) []reconcile.Request {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []reconcile.Request
	for hap, refs := range r.deps {
		if refs[ref] {
			out = append(out, reconcile.Request{NamespacedName: hap})
		}
	}
	return out
}

func (r *HAProxyReconciler) forTLSContext(ctx context.Context, o client.Object) []reconcile.Request {
	return append(r.forSelected(ctx, o), r.forReference(translate.RefTLSContext+"/"+o.GetNamespace()+"/"+o.GetName())...)
}

func (r *HAProxyReconciler) forService(_ context.Context, o client.Object) []reconcile.Request {
	return r.forReference(translate.RefService + "/" + o.GetNamespace() + "/" + o.GetName())
}

func (r *HAProxyReconciler) forEndpointSlice(_ context.Context, o client.Object) []reconcile.Request {
	svc := o.GetLabels()[discoveryv1.LabelServiceName]
	if svc == "" {
		return nil
	}
	return r.forReference(translate.RefService + "/" + o.GetNamespace() + "/" + svc)
}

func (r *HAProxyReconciler) forSecret(_ context.Context, o client.Object) []reconcile.Request {
	return r.forReference(translate.RefSecret + "/" + o.GetNamespace() + "/" + o.GetName())
}

func (r *HAProxyReconciler) remember(key types.NamespacedName, refs []string) {
	set := make(map[string]bool, len(refs))
	for _, ref := range refs {
		set[ref] = true
	}
	r.mu.Lock()
	r.deps[key] = set
	r.mu.Unlock()
}

func (r *HAProxyReconciler) forget(key types.NamespacedName) {
	r.mu.Lock()
	delete(r.deps, key)
	r.mu.Unlock()
}
