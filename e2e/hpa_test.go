package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/controller"
)

// TestScaleSubresourceAndHPA: the real API server's scale subresource of
// an HAProxy returns the label selector the operator writes into its
// status; that selector finds exactly its instance Pods; kubectl scale
// changes spec.replicas and the operator follows; and a
// HorizontalPodAutoscaler targeting the HAProxy is accepted.
func TestScaleSubresourceAndHPA(t *testing.T) {
	ns := newNamespace(t, nil)
	newHAProxy(t, ns, 1)
	hap := &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ns}}
	want := controller.ScaleSelector(hap)

	// The scale subresource as kubectl reads it.
	var scale struct {
		Spec   struct{ Replicas int32 }
		Status struct {
			Replicas int32
			Selector string
		}
	}
	eventually(t, time.Minute, "scale subresource with the selector", func() error {
		out := kubectlK8s(t, "", "-n", ns, "get", "haproxy", "edge", "--subresource=scale", "-o", "json")
		if err := json.Unmarshal([]byte(out), &scale); err != nil {
			return fmt.Errorf("decode %s: %w", out, err)
		}
		if scale.Status.Selector != want || scale.Status.Replicas != 1 {
			return fmt.Errorf("scale status = %+v, want selector %q and 1 replica", scale.Status, want)
		}
		return nil
	})
	if scale.Spec.Replicas != 1 {
		t.Errorf("scale spec.replicas = %d, want 1", scale.Spec.Replicas)
	}

	// kubectl scale goes through the same subresource; the operator
	// follows, and the selector matches the instance Pods.
	out := kubectlK8s(t, "", "-n", ns, "scale", "haproxy/edge", "--replicas=2")
	if !strings.Contains(out, "scaled") {
		t.Errorf("kubectl scale printed %q, want it to say scaled", out)
	}
	if err := cluster.client.Get(ctxFor(t), types.NamespacedName{Namespace: ns, Name: "edge"}, hap); err != nil {
		t.Fatal(err)
	}
	if got := ptr.Deref(hap.Spec.Replicas, 0); got != 2 {
		t.Fatalf("spec.replicas after kubectl scale = %d, want 2", got)
	}
	instanceIPs(t, ns, "edge", 2)
	sel, err := labels.Parse(want)
	if err != nil {
		t.Fatalf("selector %q: %v", want, err)
	}
	eventually(t, time.Minute, "the selector finds both instance Pods", func() error {
		var pods corev1.PodList
		if err := cluster.client.List(ctxFor(t), &pods, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
			return err
		}
		if len(pods.Items) != 2 {
			return fmt.Errorf("selector %q finds %d Pods, want 2", want, len(pods.Items))
		}
		out := kubectlK8s(t, "", "-n", ns, "get", "haproxy", "edge", "--subresource=scale", "-o", "jsonpath={.status.replicas} {.status.selector}")
		if out != "2 "+want {
			return fmt.Errorf("scale status = %q, want %q", out, "2 "+want)
		}
		return nil
	})

	// The README's HPA on the HAProxy: the API server accepts it.
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, found := strings.Cut(string(readme), "<!-- hpa:begin -->\n```yaml\n")
	doc, _, ended := strings.Cut(rest, "```\n<!-- hpa:end -->")
	if !found || !ended {
		t.Fatal("README has no hpa block")
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := yaml.UnmarshalStrict([]byte(doc), hpa); err != nil {
		t.Fatalf("the README's HPA: %v", err)
	}
	if ref := hpa.Spec.ScaleTargetRef; ref.APIVersion != v1alpha1.GroupVersion.String() || ref.Kind != "HAProxy" || ref.Name != "edge" {
		t.Fatalf("the README's HPA targets %+v, want the HAProxy edge", ref)
	}
	hpa.Namespace = ns
	create(t, hpa)
	got := kubectlK8s(t, "", "-n", ns, "get", "hpa", "edge", "-o", "jsonpath={.spec.scaleTargetRef.kind}/{.spec.scaleTargetRef.name}")
	if got != "HAProxy/edge" {
		t.Errorf("HPA target = %q, want HAProxy/edge", got)
	}
}
