package cli

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

func TestTrimObjectDropsWhatNoReconcileReads(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{
		Name:          "app",
		Annotations:   map[string]string{lastApplied: `{"big":"copy"}`, "keep": "me"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
	}}
	out, err := trimObject(svc)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Service)
	if len(got.ManagedFields) != 0 {
		t.Errorf("managedFields kept: %v", got.ManagedFields)
	}
	if _, ok := got.Annotations[lastApplied]; ok || got.Annotations["keep"] != "me" {
		t.Errorf("annotations %v: want only keep=me", got.Annotations)
	}
}

func TestTrimPodKeepsWhatTargetsNeed(t *testing.T) {
	now := metav1.Now()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "lb-0", Namespace: "edge", UID: "u1", Labels: map[string]string{"app": "x"},
			DeletionTimestamp: &now, Annotations: map[string]string{"a": "b"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "haproxy", Image: "img", Env: []corev1.EnvVar{{Name: "X", Value: "y"}}}}},
		Status: corev1.PodStatus{
			PodIP:             "10.0.0.1",
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "haproxy"}},
		},
	}
	out, err := trimPod(pod)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Pod)
	if got.Name != "lb-0" || got.Namespace != "edge" || got.UID != "u1" || got.Labels["app"] != "x" || got.DeletionTimestamp == nil {
		t.Errorf("identity lost: %+v", got.ObjectMeta)
	}
	if got.Status.PodIP != "10.0.0.1" || len(got.Status.Conditions) != 1 {
		t.Errorf("readiness lost: %+v", got.Status)
	}
	if len(got.Spec.Containers) != 0 || len(got.Status.ContainerStatuses) != 0 || len(got.ManagedFields) != 0 || len(got.Annotations) != 0 {
		t.Errorf("unused fields kept: spec %+v, status %+v, meta %+v", got.Spec, got.Status, got.ObjectMeta)
	}
}

func TestHAProxiesKeepTheLastAppliedAnnotation(t *testing.T) {
	for obj, by := range managerCacheOptions().ByObject {
		hap, ok := obj.(*v1alpha1.HAProxy)
		if !ok {
			continue
		}
		hap.Annotations = map[string]string{lastApplied: "{}"}
		hap.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
		out, err := by.Transform(hap)
		if err != nil {
			t.Fatal(err)
		}
		got := out.(*v1alpha1.HAProxy)
		if got.Annotations[lastApplied] == "" || len(got.ManagedFields) != 0 {
			t.Errorf("HAProxy after the transform: annotations %v, managedFields %v", got.Annotations, got.ManagedFields)
		}
		return
	}
	t.Fatal("the cache options have no transform for HAProxies")
}
