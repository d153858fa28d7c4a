package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// referenceGrantKind is the Gateway API kind whose objects consent to
// references from other namespaces.
var referenceGrantKind = schema.GroupKind{Group: gatewayv1beta1.GroupName, Kind: "ReferenceGrant"}

// referenceGrantsServed reports whether the API server serves
// ReferenceGrants in the version the operator reads. A cluster without
// the CRD is not an error: the operator runs, refuses every reference into
// another namespace (unless an HAProxy allows all) and says why.
func referenceGrantsServed(mapper meta.RESTMapper) (bool, error) {
	_, err := mapper.RESTMapping(referenceGrantKind, gatewayv1beta1.GroupVersion.Version)
	switch {
	case err == nil:
		return true, nil
	case meta.IsNoMatchError(err):
		return false, nil
	}
	return false, fmt.Errorf("find out whether the API server serves %s %s: %w", referenceGrantKind, gatewayv1beta1.GroupVersion.Version, err)
}

// watchReferenceGrants adds the ReferenceGrant watch to b when the cluster
// serves them, so granting or revoking reaches the configuration without
// touching the referring objects; it remembers the answer for Reconcile.
// The CRD is looked for once: installing it later takes an operator
// restart, which the HAProxy's ReferenceGrants condition says.
func (r *HAProxyReconciler) watchReferenceGrants(mgr ctrl.Manager, b *builder.Builder) error {
	served, err := referenceGrantsServed(mgr.GetRESTMapper())
	if err != nil {
		return err
	}
	r.grantsServed = served
	if !served {
		mgr.GetLogger().Info("The ReferenceGrant CRD is not installed; references into other namespaces are refused unless an HAProxy allows all",
			"crd", "referencegrants."+gatewayv1beta1.GroupName)
		return nil
	}
	b.Watches(&gatewayv1beta1.ReferenceGrant{}, handler.EnqueueRequestsFromMapFunc(r.changes(r.forReferenceGrant)))
	return nil
}

// forReferenceGrant wakes the HAProxies serving an object whose spec
// (current or last accepted) names the grant's namespace, read from the
// cache's indexes at event time, so a grant that arrives while a
// translation is running still wakes its HAProxy.
func (r *HAProxyReconciler) forReferenceGrant(ctx context.Context, o client.Object) []reconcile.Request {
	ns := o.GetNamespace()
	objs := r.mappingsBy(ctx, indexMappingNamespace, ns)
	for _, c := range r.contextsBy(ctx, indexContextNamespace, ns) {
		objs = append(objs, r.withReferrers(ctx, c)...)
	}
	return r.selecting(ctx, objs)
}
