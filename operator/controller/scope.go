package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// In a namespaced install (WATCH_NAMESPACE) the operator sees only the
// namespaces it serves, and reads their labels one by one (a Role grants
// get on the Namespace it lives in, never list or watch of Namespaces).
// A namespace selector of an HAProxy (spec.namespaceSelector,
// spec.listeners[].namespaces.selector) is evaluated against the labels
// of the served namespaces; a namespace the operator does not serve is
// never selected, whatever its labels. ScopeReconciler says so on each
// HAProxy with such a selector, and says when a served namespace's labels
// cannot be read, so its selectors cannot be evaluated.
const (
	// ConditionNamespaceSelectorsResolved is set on an HAProxy with a
	// namespace selector in a namespaced install.
	ConditionNamespaceSelectorsResolved = "NamespaceSelectorsResolved"
	// ReasonServedNamespacesOnly: the selectors are evaluated among the
	// served namespaces.
	ReasonServedNamespacesOnly = "ServedNamespacesOnly"
	// ReasonNamespaceUnreadable: the labels of a served namespace cannot
	// be read, so no selector is evaluated.
	ReasonNamespaceUnreadable = "NamespaceUnreadable"
)

// ScopeReconciler writes ConditionNamespaceSelectorsResolved on the
// HAProxies of a namespaced install.
type ScopeReconciler struct {
	Client client.Client
	// Namespaces are the served namespaces.
	Namespaces []string
}

// SetupWithManager registers the reconciler for HAProxies, woken too by
// changes of the served Namespaces.
func (r *ScopeReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("namespace-scope").
		For(&v1alpha1.HAProxy{}).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.all)).
		Complete(r)
}

func (r *ScopeReconciler) all(ctx context.Context, _ client.Object) []reconcile.Request {
	var list v1alpha1.HAProxyList
	if err := r.Client.List(ctx, &list); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, request(&list.Items[i]))
	}
	return out
}

// Reconcile sets or removes the condition on one HAProxy.
func (r *ScopeReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var unreadable []string
	for _, n := range r.Namespaces {
		err := r.Client.Get(ctx, client.ObjectKey{Name: n}, &corev1.Namespace{})
		if err != nil && !apierrors.IsNotFound(err) {
			log.FromContext(ctx).Error(err, "Read the labels of a served namespace", "namespace", n)
			unreadable = append(unreadable, n)
		}
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var hap v1alpha1.HAProxy
		if err := r.Client.Get(ctx, req.NamespacedName, &hap); err != nil {
			return err
		}
		if !hap.DeletionTimestamp.IsZero() {
			return nil
		}
		before := hap.Status.DeepCopy()
		if c := scopeCondition(&hap, r.Namespaces, unreadable); c != nil {
			meta.SetStatusCondition(&hap.Status.Conditions, *c)
		} else {
			meta.RemoveStatusCondition(&hap.Status.Conditions, ConditionNamespaceSelectorsResolved)
		}
		if equality.Semantic.DeepEqual(before, &hap.Status) {
			return nil
		}
		return r.Client.Status().Update(ctx, &hap)
	})
	if err := client.IgnoreNotFound(err); err != nil {
		return reconcile.Result{}, fmt.Errorf("namespace scope condition of HAProxy %s: %w", req, err)
	}
	return reconcile.Result{}, nil
}

// hasNamespaceSelector reports whether the HAProxy selects namespaces by
// label anywhere.
func hasNamespaceSelector(hap *v1alpha1.HAProxy) bool {
	if hap.Spec.NamespaceSelector != nil {
		return true
	}
	for _, l := range hap.Spec.Listeners {
		if l.Namespaces != nil && l.Namespaces.Selector != nil {
			return true
		}
	}
	return false
}

// scopeCondition is the condition an HAProxy of a namespaced install
// serving namespaces should carry, or nil for none: it has no namespace
// selector. unreadable lists the served namespaces whose labels could
// not be read, with why.
func scopeCondition(hap *v1alpha1.HAProxy, namespaces, unreadable []string) *metav1.Condition {
	if !hasNamespaceSelector(hap) {
		return nil
	}
	c := &metav1.Condition{Type: ConditionNamespaceSelectorsResolved, ObservedGeneration: hap.Generation}
	if len(unreadable) > 0 {
		c.Status, c.Reason = metav1.ConditionFalse, ReasonNamespaceUnreadable
		c.Message = fmt.Sprintf("the operator cannot read the labels of %d of the namespaces it serves (its Role there needs get on namespaces; the operator's log names them): "+
			"no namespace selector of this HAProxy is evaluated until it can", len(unreadable))
		return c
	}
	c.Status, c.Reason = metav1.ConditionTrue, ReasonServedNamespacesOnly
	c.Message = fmt.Sprintf("the operator serves only the %d namespaces of its install (WATCH_NAMESPACE): namespace selectors select among them, never another namespace", len(namespaces))
	return c
}
