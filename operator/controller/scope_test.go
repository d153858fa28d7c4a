package controller

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

func TestScopeCondition(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}
	for _, tc := range []struct {
		name       string
		spec       v1alpha1.HAProxySpec
		unreadable []string
		want       metav1.ConditionStatus
		reason     string
	}{
		{name: "no selector: no condition", spec: v1alpha1.HAProxySpec{Listeners: []v1alpha1.ListenerSpec{{Ports: "80"}}}},
		{name: "namespace selector", spec: v1alpha1.HAProxySpec{NamespaceSelector: sel}, want: metav1.ConditionTrue, reason: ReasonServedNamespacesOnly},
		{name: "listener selector", spec: v1alpha1.HAProxySpec{Listeners: []v1alpha1.ListenerSpec{{Ports: "80", Namespaces: &v1alpha1.ListenerNamespaces{Selector: sel}}}},
			want: metav1.ConditionTrue, reason: ReasonServedNamespacesOnly},
		{name: "unreadable namespace", spec: v1alpha1.HAProxySpec{NamespaceSelector: sel}, unreadable: []string{"b"},
			want: metav1.ConditionFalse, reason: ReasonNamespaceUnreadable},
	} {
		hap := &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Spec: tc.spec}
		c := scopeCondition(hap, []string{"a", "b"}, tc.unreadable)
		if tc.want == "" {
			if c != nil {
				t.Errorf("%s: %+v, want none", tc.name, c)
			}
			continue
		}
		if c == nil || c.Status != tc.want || c.Reason != tc.reason || c.ObservedGeneration != 3 {
			t.Errorf("%s: %+v, want %s %s", tc.name, c, tc.want, tc.reason)
			continue
		}
		// Other tenants' namespaces stay out of the message.
		if strings.Contains(c.Message, `"b"`) || strings.Contains(c.Message, " b ") {
			t.Errorf("%s: the message names a namespace: %s", tc.name, c.Message)
		}
	}
}
