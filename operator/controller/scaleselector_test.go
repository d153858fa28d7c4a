package controller

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// TestScaleSelector: the status selector a HorizontalPodAutoscaler reads
// through the scale subresource parses, matches the instance Pods of its
// HAProxy and no other HAProxy's, and is empty for external instances.
func TestScaleSelector(t *testing.T) {
	edge := &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "ns"}}
	other := &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge-2", Namespace: "ns"}}
	ext := edge.DeepCopy()
	ext.Spec.ExternalInstances = []v1alpha1.ExternalInstance{{Name: "a", URL: "https://192.0.2.1:5555"}}

	got := haproxyStatus(v1alpha1.HAProxyStatus{}, edge, translate.Result{}, "h", 1, 1, nil).Selector
	if want := "app.kubernetes.io/managed-by=haproxy-tcp-operator,haproxy-operator.io/haproxy=edge"; got != want {
		t.Errorf("status selector = %q, want %q", got, want)
	}
	sel, err := labels.Parse(got)
	if err != nil {
		t.Fatalf("status selector %q does not parse: %v", got, err)
	}
	if !sel.Matches(labels.Set(InstancePodLabels(edge))) {
		t.Errorf("selector %q does not match the instance Pods' labels %v", got, InstancePodLabels(edge))
	}
	if sel.Matches(labels.Set(InstancePodLabels(other))) {
		t.Errorf("selector %q matches another HAProxy's Pods %v", got, InstancePodLabels(other))
	}
	dep, err := metav1.LabelSelectorAsSelector(desiredDeployment(edge, "haproxy:test").Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if got != dep.String() {
		t.Errorf("status selector %q differs from the Deployment's selector %q", got, dep)
	}
	if s := ScaleSelector(ext); s != "" {
		t.Errorf("external instances: selector = %q, want empty", s)
	}
}
