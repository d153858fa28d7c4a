package manifests

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/controller"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// peer is a Pod that opens a connection: its namespace's labels and its
// own.
type peer struct {
	nsLabels, podLabels map[string]string
}

// admits evaluates an ingress policy the way a network plugin does, for
// a TCP connection from p to port on a Pod with the given labels.
func admits(t *testing.T, np *networkingv1.NetworkPolicy, podLabels map[string]string, p peer, port int32) bool {
	t.Helper()
	if !sel(t, &np.Spec.PodSelector).Matches(labels.Set(podLabels)) {
		return true // not selected: not isolated by this policy
	}
	for _, rule := range np.Spec.Ingress {
		fromOK := len(rule.From) == 0
		for _, f := range rule.From {
			nsOK := f.NamespaceSelector == nil || sel(t, f.NamespaceSelector).Matches(labels.Set(p.nsLabels))
			// A podSelector alone means the policy's own namespace.
			if f.NamespaceSelector == nil {
				nsOK = p.nsLabels[corev1.LabelMetadataName] == np.Namespace
			}
			podOK := f.PodSelector == nil || sel(t, f.PodSelector).Matches(labels.Set(p.podLabels))
			fromOK = fromOK || (nsOK && podOK && f.IPBlock == nil)
		}
		portOK := len(rule.Ports) == 0
		for _, pr := range rule.Ports {
			if pr.Protocol != nil && *pr.Protocol != corev1.ProtocolTCP {
				continue
			}
			lo := pr.Port.IntVal
			hi := lo
			if pr.EndPort != nil {
				hi = *pr.EndPort
			}
			portOK = portOK || (lo <= port && port <= hi)
		}
		if fromOK && portOK {
			return true
		}
	}
	return false
}

func findOne[T any](t *testing.T, objs []*unstructured.Unstructured, kind string) (*T, *unstructured.Unstructured) {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s rendered, want 1", len(found), kind)
	}
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(found[0].Object, out); err != nil {
		t.Fatal(err)
	}
	return out, found[0]
}

// TestNetworkPolicyAdmitsOnlyTheOperatorToTheAPI: the policy deploy/
// ships selects the Pods the operator runs for an HAProxy (by the labels
// the controller puts on them), lets the operator's own Pods (by the
// labels of its Deployment, in its namespace) reach the Data Plane API
// port, refuses everyone else there, and leaves every other port open.
// The API server accepts it: TestHelmAndKustomizeServerSideDryRun sends
// it with the rest of deploy/default and the chart.
func TestNetworkPolicyAdmitsOnlyTheOperatorToTheAPI(t *testing.T) {
	for name, objs := range map[string][]*unstructured.Unstructured{
		"kustomize": kustomize(t, "../default"),
		"helm":      helmTemplate(t, map[string]any{"createNamespace": true}),
	} {
		t.Run(name, func(t *testing.T) {
			np, _ := findOne[networkingv1.NetworkPolicy](t, objs, "NetworkPolicy")
			dep, _ := findOne[appsv1.Deployment](t, objs, "Deployment")
			operator := peer{
				nsLabels:  map[string]string{corev1.LabelMetadataName: dep.Namespace},
				podLabels: dep.Spec.Template.Labels,
			}
			tenant := peer{
				nsLabels:  map[string]string{corev1.LabelMetadataName: "team-a"},
				podLabels: map[string]string{"app": "client"},
			}
			// A Pod in the operator's namespace that is not the operator.
			neighbour := peer{nsLabels: operator.nsLabels, podLabels: map[string]string{"app.kubernetes.io/name": "other"}}
			hap := &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: dep.Namespace}}
			instance := controller.InstancePodLabels(hap)
			api := int32(translate.DefaultDataPlanePort)

			if !admits(t, np, instance, operator, api) {
				t.Error("the operator cannot reach the Data Plane API")
			}
			for who, p := range map[string]peer{"a tenant": tenant, "a neighbour of the operator": neighbour} {
				if admits(t, np, instance, p, api) {
					t.Errorf("%s reaches the Data Plane API", who)
				}
				for _, port := range []int32{1, 80, 2222, 8404, api - 1, api + 1, 65535} {
					if !admits(t, np, instance, p, port) {
						t.Errorf("%s cannot reach port %d", who, port)
					}
				}
			}
			// The operator's own Pods are not isolated by it.
			if !sel(t, &np.Spec.PodSelector).Matches(labels.Set(instance)) || sel(t, &np.Spec.PodSelector).Matches(labels.Set(dep.Spec.Template.Labels)) {
				t.Error("the policy must select the instance Pods and not the operator's")
			}
		})
	}
}

func sel(t *testing.T, ls *metav1.LabelSelector) labels.Selector {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
