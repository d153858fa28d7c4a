package manifests

import (
	"slices"
	"testing"

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
		// The operator serves its metrics in plain HTTP on the port named
		// metrics.
		if ep["scheme"] != "http" {
			t.Errorf("endpoints[%d].scheme %v, want http: the metrics endpoint serves plain HTTP", i, ep["scheme"])
		}
		if ep["path"] != "/metrics" {
			t.Errorf("endpoints[%d].path %v, want /metrics", i, ep["path"])
		}
	}

}
