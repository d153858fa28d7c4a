package manifests

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// helmLabels are the labels Helm and the chart add for Helm's own
// bookkeeping; everything else must equal what kustomize renders.
var helmLabels = []string{
	"helm.sh/chart",
	"app.kubernetes.io/managed-by",
	"app.kubernetes.io/instance",
	"app.kubernetes.io/version",
}

// comparable strips what legitimately differs between the two renderings:
// Helm's labels, and on CRDs the part-of label kustomize adds, because
// Helm installs crds/ verbatim (make helm copies them byte for byte).
func comparable(o *unstructured.Unstructured, stripHelm bool) *unstructured.Unstructured {
	o = o.DeepCopy()
	labels := o.GetLabels()
	if stripHelm {
		for _, l := range helmLabels {
			delete(labels, l)
		}
	}
	if o.GetKind() == "CustomResourceDefinition" {
		delete(labels, "app.kubernetes.io/part-of")
	}
	if len(labels) == 0 {
		labels = nil
	}
	o.SetLabels(labels)
	return o
}

// assertSameObjects fails for every object only one side has and for
// every difference in one both have.
func assertSameObjects(t *testing.T, kustomized, helm []*unstructured.Unstructured) {
	t.Helper()
	k, h := byKey(t, kustomized), byKey(t, helm)
	for name, ko := range k {
		ho, ok := h[name]
		if !ok {
			t.Errorf("kustomize renders %s, the chart does not", name)
			continue
		}
		if d := cmp.Diff(comparable(ko, false).Object, comparable(ho, true).Object); d != "" {
			t.Errorf("%s differs between kustomize (-) and the chart (+):\n%s", name, d)
		}
	}
	for name := range h {
		if _, ok := k[name]; !ok {
			t.Errorf("the chart renders %s, kustomize does not", name)
		}
	}
}

func TestHelmChartRendersWhatKustomizeInstalls(t *testing.T) {
	kustomized := kustomize(t, "../default")
	if len(kustomized) < 9 {
		t.Fatalf("deploy/default renders %d objects; expected the CRDs, namespace, RBAC and Deployment", len(kustomized))
	}
	t.Run("with the namespace", func(t *testing.T) {
		assertSameObjects(t, kustomized, helmTemplate(t, map[string]any{"createNamespace": true}))
	})
	t.Run("defaults: all but the namespace", func(t *testing.T) {
		withoutNamespace := slices.DeleteFunc(slices.Clone(kustomized), func(o *unstructured.Unstructured) bool {
			return o.GetKind() == "Namespace"
		})
		assertSameObjects(t, withoutNamespace, helmTemplate(t, nil))
	})
}

func TestHelmServiceMonitorMatchesTheKustomizeComponent(t *testing.T) {
	kustomized := kustomize(t, "../monitoring")
	helm := helmTemplate(t, map[string]any{"createNamespace": true, "serviceMonitor": map[string]any{"enabled": true}})
	assertSameObjects(t, kustomized, helm)
	if _, ok := byKey(t, helm)["ServiceMonitor haproxy-tcp-operator in "+namespace]; !ok {
		t.Errorf("serviceMonitor.enabled renders no ServiceMonitor")
	}
}

// TestHelmChartCopiesAreCurrent checks the files make helm copies: the
// chart's CRDs and RBAC rules are the bytes of deploy/crd and deploy/rbac.
func TestHelmChartCopiesAreCurrent(t *testing.T) {
	src, err := filepath.Glob("../crd/haproxy-operator.io_*.yaml")
	if err != nil || len(src) == 0 {
		t.Fatalf("no CRDs in deploy/crd: %v", err)
	}
	copies := map[string]string{}
	for _, f := range src {
		copies[f] = filepath.Join(chartDir, "crds", filepath.Base(f))
	}
	for _, f := range []string{"role.yaml", "leader_election_role.yaml"} {
		copies[filepath.Join("../rbac", f)] = filepath.Join(chartDir, "files/rbac", f)
	}
	copies["../namespaced/served/role.yaml"] = filepath.Join(chartDir, "files/rbac/served_role.yaml")
	copies["../admission/secrets_policy.yaml"] = filepath.Join(chartDir, "files/admission/secrets_policy.yaml")
	inChart, err := filepath.Glob(filepath.Join(chartDir, "crds", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inChart) != len(src) {
		t.Errorf("the chart has %d CRD files, deploy/crd %d: run make helm", len(inChart), len(src))
	}
	for from, to := range copies {
		want, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(to)
		if err != nil {
			t.Errorf("%s: %v (run make helm)", to, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s: run make helm", to, from)
		}
	}
}

func TestHelmValuesReachTheDeployment(t *testing.T) {
	deployment := func(t *testing.T, values map[string]any) *unstructured.Unstructured {
		t.Helper()
		d, ok := byKey(t, helmTemplate(t, values))["Deployment haproxy-tcp-operator in "+namespace]
		if !ok {
			t.Fatal("no Deployment rendered")
		}
		return d
	}
	container := func(t *testing.T, d *unstructured.Unstructured) map[string]any {
		t.Helper()
		cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		if len(cs) != 1 {
			t.Fatalf("%d containers, want 1", len(cs))
		}
		return cs[0].(map[string]any)
	}
	args := func(t *testing.T, d *unstructured.Unstructured) []string {
		t.Helper()
		a, _, _ := unstructured.NestedStringSlice(container(t, d), "args")
		return a
	}
	tests := []struct {
		name   string
		values map[string]any
		check  func(t *testing.T, d *unstructured.Unstructured)
	}{
		{"replicas", map[string]any{"replicas": 3}, func(t *testing.T, d *unstructured.Unstructured) {
			if n, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); n != float64(3) {
				t.Errorf("spec.replicas = %v, want 3", n)
			}
		}},
		{"image", map[string]any{"image": map[string]any{"repository": "registry.example/op", "tag": "v9", "pullPolicy": "Always"}}, func(t *testing.T, d *unstructured.Unstructured) {
			c := container(t, d)
			if c["image"] != "registry.example/op:v9" || c["imagePullPolicy"] != "Always" {
				t.Errorf("image %v, pull policy %v", c["image"], c["imagePullPolicy"])
			}
		}},
		{"instance image", map[string]any{"instanceImage": map[string]any{"repository": "registry.example/hap", "tag": "v9"}}, func(t *testing.T, d *unstructured.Unstructured) {
			if a := args(t, d); !slices.Contains(a, "--instance-image=registry.example/hap:v9") {
				t.Errorf("args %q", a)
			}
		}},
		{"leader election off", map[string]any{"leaderElection": false}, func(t *testing.T, d *unstructured.Unstructured) {
			if a := args(t, d); slices.Contains(a, "--leader-elect") {
				t.Errorf("args %q still elect a leader", a)
			}
		}},
		{"leader election on by default", nil, func(t *testing.T, d *unstructured.Unstructured) {
			if a := args(t, d); !slices.Contains(a, "--leader-elect") {
				t.Errorf("args %q", a)
			}
		}},
		{"log level", map[string]any{"logLevel": "debug"}, func(t *testing.T, d *unstructured.Unstructured) {
			if a := args(t, d); !slices.Contains(a, "--zap-log-level=debug") {
				t.Errorf("args %q", a)
			}
		}},
		{"no log level flag by default", nil, func(t *testing.T, d *unstructured.Unstructured) {
			for _, a := range args(t, d) {
				if strings.HasPrefix(a, "--zap-log-level") {
					t.Errorf("default args carry %q", a)
				}
			}
		}},
		{"resources", map[string]any{"resources": map[string]any{"limits": map[string]any{"memory": "1Gi"}}}, func(t *testing.T, d *unstructured.Unstructured) {
			// Helm merges the user's map over the chart's default.
			if lim, _, _ := unstructured.NestedString(container(t, d), "resources", "limits", "memory"); lim != "1Gi" {
				t.Errorf("resources.limits.memory = %q, want 1Gi", lim)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, deployment(t, tc.values)) })
	}
}
