package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// ParentsReconciler keeps the parent list of TCPMappings honest where no
// HAProxy reconcile would: a mapping that no HAProxy selects says so, and
// entries of HAProxies that no longer exist are dropped. The HAProxy
// reconciler writes everything else.
type ParentsReconciler struct {
	Client client.Client
}

// SetupWithManager registers the reconciler for TCPMappings, woken by
// their creation and spec or label changes and by HAProxies coming and
// going or changing their selectors.
func (r *ParentsReconciler) SetupWithManager(mgr ctrl.Manager) error {
	specOrLabels := builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))
	return ctrl.NewControllerManagedBy(mgr).
		Named("tcpmapping-parents").
		For(&v1alpha1.TCPMapping{}, specOrLabels).
		Watches(&v1alpha1.HAProxy{}, handler.EnqueueRequestsFromMapFunc(r.allMappings), specOrLabels).
		Complete(r)
}

func (r *ParentsReconciler) allMappings(ctx context.Context, _ client.Object) []reconcile.Request {
	var list v1alpha1.TCPMappingList
	if err := r.Client.List(ctx, &list); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, m := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&m)})
	}
	return out
}

// Reconcile sets NotSelected on a mapping no HAProxy selects and drops the
// entries of HAProxies that are gone or no longer select it.
func (r *ParentsReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var m v1alpha1.TCPMapping
	if err := r.Client.Get(ctx, req.NamespacedName, &m); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	var haps v1alpha1.HAProxyList
	if err := r.Client.List(ctx, &haps); err != nil {
		return reconcile.Result{}, fmt.Errorf("list HAProxies: %w", err)
	}
	var ns corev1.Namespace
	nsLabels := labels.Set{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: m.Namespace}, &ns); err == nil {
		nsLabels = ns.Labels
	} else if !apierrors.IsNotFound(err) {
		return reconcile.Result{}, fmt.Errorf("get namespace %s: %w", m.Namespace, err)
	}
	selecting := map[string]bool{}
	for i := range haps.Items {
		h := &haps.Items[i]
		if h.DeletionTimestamp.IsZero() && selects(h, nsLabels, &m) {
			selecting[klogRef(h)] = true
		}
	}
	// An HAProxy that selects the mapping writes its own entry; this only
	// removes what nobody else will.
	if len(selecting) > 0 && len(m.Status.Parents) > 0 {
		stale := false
		for _, p := range m.Status.Parents {
			if !selecting[p.HAProxy] {
				stale = true
			}
		}
		if !stale {
			return reconcile.Result{}, nil
		}
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		st := *m.Status.DeepCopy()
		for _, p := range m.Status.Parents {
			if !selecting[p.HAProxy] {
				st.Parents = withoutParent(st.Parents, p.HAProxy)
			}
		}
		if len(selecting) > 0 && len(st.Parents) == 0 {
			// The selecting HAProxies will report; no verdict meanwhile.
			return nil
		}
		finishMappingStatus(&st, m.Generation)
		if equality.Semantic.DeepEqual(st, m.Status) {
			return nil
		}
		m.Status = st
		err := r.Client.Status().Update(ctx, &m)
		if apierrors.IsConflict(err) {
			if gerr := r.Client.Get(ctx, req.NamespacedName, &m); gerr != nil {
				return gerr
			}
		}
		return err
	})
	return reconcile.Result{}, client.IgnoreNotFound(err)
}
