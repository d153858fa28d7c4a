package manifests

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestServiceMonitorSelectsTheMetricsService renders deploy/monitoring
// (deploy/default with the servicemonitor component) and follows the chain
// Prometheus follows: ServiceMonitor -> Service by labels -> named port ->
// the operator container's metrics port.
func TestServiceMonitorSelectsTheMetricsService(t *testing.T) {
	objs := kustomize(t, "../monitoring")

	var monitors, services []*unstructured.Unstructured
	var deployment *unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceMonitor":
			monitors = append(monitors, o)
		case "Service":
			services = append(services, o)
		case "Deployment":
			deployment = o
		}
	}
	if len(monitors) != 1 {
		t.Fatalf("%d ServiceMonitors rendered, want 1", len(monitors))
	}
	sm := monitors[0]
	if sm.GetAPIVersion() != "monitoring.coreos.com/v1" {
		t.Errorf("ServiceMonitor apiVersion %q, want monitoring.coreos.com/v1", sm.GetAPIVersion())
	}
	if deployment == nil {
		t.Fatal("no operator Deployment rendered")
	}

	var sel metav1.LabelSelector
	raw, _, _ := unstructured.NestedMap(sm.Object, "spec", "selector")
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &sel); err != nil {
		t.Fatalf("spec.selector: %v", err)
	}
	selector, err := metav1.LabelSelectorAsSelector(&sel)
	if err != nil || selector.Empty() {
		t.Fatalf("spec.selector %v: must select by labels (%v)", raw, err)
	}
	var selected []*unstructured.Unstructured
	for _, s := range services {
		// Without a namespaceSelector a ServiceMonitor looks in its own namespace.
		if s.GetNamespace() == sm.GetNamespace() && selector.Matches(labels.Set(s.GetLabels())) {
			selected = append(selected, s)
		}
	}
	if len(selected) != 1 {
		t.Fatalf("the ServiceMonitor's selector %s picks %d Services in %s, want the metrics Service", selector, len(selected), sm.GetNamespace())
	}
	svc := selected[0]

	// The Service must reach the operator's Pods and their metrics port.
	svcSelector, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	podLabels, _, _ := unstructured.NestedStringMap(deployment.Object, "spec", "template", "metadata", "labels")
	if len(svcSelector) == 0 || !labels.SelectorFromSet(svcSelector).Matches(labels.Set(podLabels)) {
		t.Errorf("Service %s selects %v; the operator's Pods carry %v", svc.GetName(), svcSelector, podLabels)
	}
	containers, _, _ := unstructured.NestedSlice(deployment.Object, "spec", "template", "spec", "containers")
	var containerPorts []string
	for _, c := range containers {
		ports, _, _ := unstructured.NestedSlice(c.(map[string]any), "ports")
		for _, p := range ports {
			containerPorts = append(containerPorts, p.(map[string]any)["name"].(string))
		}
	}
	svcPorts, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	portNames := map[string]string{} // Service port name -> target port
	for _, p := range svcPorts {
		pm := p.(map[string]any)
		name, _ := pm["name"].(string)
		target, _ := pm["targetPort"].(string)
		portNames[name] = target
	}

	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) == 0 {
		t.Fatal("the ServiceMonitor has no endpoints")
	}
	for i, e := range endpoints {
		ep := e.(map[string]any)
		port, _ := ep["port"].(string)
		target, ok := portNames[port]
		if !ok {
			t.Errorf("endpoints[%d].port %q is not a port name of Service %s (%v)", i, port, svc.GetName(), portNames)
		} else if !slices.Contains(containerPorts, target) {
			t.Errorf("Service port %q targets %q, not a named port of the operator container %v", port, target, containerPorts)
		}
		// The operator serves its metrics over HTTPS (a self-signed
		// certificate by default) to clients the API server authenticates
		// by bearer token.
		if ep["scheme"] != "https" {
			t.Errorf("endpoints[%d].scheme %v, want https: the metrics endpoint serves HTTPS", i, ep["scheme"])
		}
		if ep["bearerTokenFile"] != "/var/run/secrets/kubernetes.io/serviceaccount/token" {
			t.Errorf("endpoints[%d].bearerTokenFile %v, want Prometheus's ServiceAccount token: the endpoint refuses requests without one", i, ep["bearerTokenFile"])
		}
		if skip, _, _ := unstructured.NestedBool(ep, "tlsConfig", "insecureSkipVerify"); !skip {
			t.Errorf("endpoints[%d].tlsConfig.insecureSkipVerify is not true: the operator's certificate is self-signed by default", i)
		}
		if ep["path"] != "/metrics" {
			t.Errorf("endpoints[%d].path %v, want /metrics", i, ep["path"])
		}
	}

	// A scraper's ServiceAccount needs get on /metrics; the component
	// ships the ClusterRole granting exactly that.
	var reader *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" && o.GetName() == "haproxy-tcp-operator-metrics-reader" {
			reader = o
		}
	}
	if reader == nil {
		t.Fatal("no ClusterRole haproxy-tcp-operator-metrics-reader rendered")
	}
	var role rbacv1.ClusterRole
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(reader.Object, &role); err != nil {
		t.Fatal(err)
	}
	want := []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}
	if d := cmp.Diff(want, role.Rules); d != "" {
		t.Errorf("the metrics-reader ClusterRole's rules (-want +got):\n%s", d)
	}
}

// TestOperatorMayCheckMetricsClients: the metrics endpoint asks the API
// server who a token belongs to and whether it may get /metrics, so the
// operator's ClusterRole must allow creating both reviews.
func TestOperatorMayCheckMetricsClients(t *testing.T) {
	var role *unstructured.Unstructured
	for _, o := range kustomize(t, "../default") {
		if o.GetKind() == "ClusterRole" && o.GetName() == "haproxy-tcp-operator" {
			role = o
		}
	}
	if role == nil {
		t.Fatal("deploy/default renders no ClusterRole haproxy-tcp-operator")
	}
	var cr rbacv1.ClusterRole
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(role.Object, &cr); err != nil {
		t.Fatal(err)
	}
	for _, need := range []struct{ group, resource string }{
		{"authentication.k8s.io", "tokenreviews"},
		{"authorization.k8s.io", "subjectaccessreviews"},
	} {
		allowed := slices.ContainsFunc(cr.Rules, func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.APIGroups, need.group) && slices.Contains(r.Resources, need.resource) && slices.Contains(r.Verbs, "create")
		})
		if !allowed {
			t.Errorf("the operator's ClusterRole does not allow create on %s.%s", need.resource, need.group)
		}
	}
}
