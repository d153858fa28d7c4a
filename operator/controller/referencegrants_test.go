package controller

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

func TestReferenceGrantsServedAsksTheRESTMapper(t *testing.T) {
	without := meta.NewDefaultRESTMapper(nil)
	without.Add(schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "Gateway"}, meta.RESTScopeNamespace)
	with := meta.NewDefaultRESTMapper(nil)
	with.Add(schema.GroupVersionKind{Group: gatewayv1beta1.GroupName, Version: "v1beta1", Kind: "ReferenceGrant"}, meta.RESTScopeNamespace)
	onlyV1 := meta.NewDefaultRESTMapper(nil)
	onlyV1.Add(schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "ReferenceGrant"}, meta.RESTScopeNamespace)
	for name, tc := range map[string]struct {
		mapper meta.RESTMapper
		want   bool
	}{
		"the CRD is installed":              {with, true},
		"the group has no ReferenceGrant":   {without, false},
		"only another version is served":    {onlyV1, false},
		"nothing of Gateway API is present": {meta.NewDefaultRESTMapper(nil), false},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := referenceGrantsServed(tc.mapper)
			if err != nil || got != tc.want {
				t.Errorf("referenceGrantsServed = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestHAProxyStatusSaysWhenTheReferenceGrantCRDIsMissing(t *testing.T) {
	hap := &v1alpha1.HAProxy{}
	hap.Generation = 2
	res := translate.Result{
		HAProxy:         translate.Condition{Status: true, Reason: v1alpha1.ReasonAccepted},
		ReferenceGrants: translate.Condition{Reason: v1alpha1.ReasonCRDNotInstalled, Message: "the ReferenceGrant CRD is not installed"},
	}
	st := haproxyStatus(v1alpha1.HAProxyStatus{}, hap, res, "h", 1, 1, nil)
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReferenceGrants)
	if c == nil || c.Status != "False" || c.Reason != v1alpha1.ReasonCRDNotInstalled || c.ObservedGeneration != 2 {
		t.Errorf("ReferenceGrants condition %+v", c)
	}
}
