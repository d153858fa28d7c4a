package manifests

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// env returns the operator container's environment variable name, or nil.
func env(t *testing.T, objs []*unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	d, ok := byKey(t, objs)["Deployment haproxy-tcp-operator in "+namespace]
	if !ok {
		t.Fatal("no operator Deployment")
	}
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	vars, _, _ := unstructured.NestedSlice(cs[0].(map[string]any), "env")
	for _, v := range vars {
		if m := v.(map[string]any); m["name"] == name {
			return m
		}
	}
	return nil
}

// rulesOf returns the rules of one object.
func rulesOf(t *testing.T, o *unstructured.Unstructured) []any {
	t.Helper()
	r, _, err := unstructured.NestedSlice(o.Object, "rules")
	if err != nil || len(r) == 0 {
		t.Fatalf("%s has no rules: %v", key(o), err)
	}
	return r
}

// TestNamespacedInstallHasNoClusterRole: deploy/namespaced grants with
// Roles only, in the namespace it serves, and tells the operator which
// namespace that is; deploy/default serves all with the ClusterRole.
func TestNamespacedInstallHasNoClusterRole(t *testing.T) {
	objs := kustomize(t, "../namespaced")
	objects := byKey(t, objs)
	for _, o := range objs {
		if k := o.GetKind(); k == "ClusterRole" || k == "ClusterRoleBinding" {
			t.Errorf("deploy/namespaced renders %s", key(o))
		}
	}
	for _, want := range []string{
		"Role haproxy-tcp-operator in " + namespace,
		"RoleBinding haproxy-tcp-operator in " + namespace,
		"Role haproxy-tcp-operator-leader-election in " + namespace,
		"ValidatingAdmissionPolicy haproxy-tcp-operator-owned-secrets",
		"ValidatingAdmissionPolicyBinding haproxy-tcp-operator-owned-secrets",
	} {
		if _, ok := objects[want]; !ok {
			t.Errorf("deploy/namespaced renders no %s", want)
		}
	}
	rb := objects["RoleBinding haproxy-tcp-operator in "+namespace]
	if subj, _, _ := unstructured.NestedSlice(rb.Object, "subjects"); len(subj) != 1 || subj[0].(map[string]any)["namespace"] != namespace {
		t.Errorf("the RoleBinding binds %v, want the operator's ServiceAccount in %s", subj, namespace)
	}
	w := env(t, objs, "WATCH_NAMESPACE")
	if p, _, _ := unstructured.NestedString(w, "valueFrom", "fieldRef", "fieldPath"); p != "metadata.namespace" {
		t.Errorf("WATCH_NAMESPACE is %v, want the Pod's namespace", w)
	}
	if w := env(t, kustomize(t, "../default"), "WATCH_NAMESPACE"); w != nil {
		t.Errorf("deploy/default limits the operator to namespaces: %v", w)
	}
}

// TestHelmWatchNamespacesUsesRoles: the chart's watchNamespaces installs
// the Role of deploy/namespaced in each namespace instead of the
// ClusterRole, and passes them to the operator.
func TestHelmWatchNamespacesUsesRoles(t *testing.T) {
	objs := helmTemplate(t, map[string]any{"watchNamespaces": []any{"team-a", "team-b"}})
	objects := byKey(t, objs)
	served := byKey(t, kustomize(t, "../namespaced"))["Role haproxy-tcp-operator in "+namespace]
	for _, o := range objs {
		if k := o.GetKind(); k == "ClusterRole" || k == "ClusterRoleBinding" {
			t.Errorf("with watchNamespaces the chart renders %s", key(o))
		}
	}
	for _, ns := range []string{"team-a", "team-b"} {
		role, ok := objects["Role haproxy-tcp-operator in "+ns]
		if !ok {
			t.Errorf("no Role in %s", ns)
			continue
		}
		if !reflect.DeepEqual(rulesOf(t, role), rulesOf(t, served)) {
			t.Errorf("the Role in %s differs from deploy/namespaced's", ns)
		}
		rb, ok := objects["RoleBinding haproxy-tcp-operator in "+ns]
		if subj, _, _ := unstructured.NestedSlice(rb.Object, "subjects"); !ok || len(subj) != 1 || subj[0].(map[string]any)["namespace"] != namespace {
			t.Errorf("the RoleBinding in %s binds %v", ns, subj)
		}
	}
	if w := env(t, objs, "WATCH_NAMESPACE"); w == nil || w["value"] != "team-a,team-b" {
		t.Errorf("WATCH_NAMESPACE %v, want team-a,team-b", w)
	}
	if _, ok := byKey(t, helmTemplate(t, nil))["ClusterRole haproxy-tcp-operator"]; !ok {
		t.Error("without watchNamespaces the chart renders no ClusterRole")
	}
}

// TestServedRoleGrantsNothingClusterScoped: what a Role cannot grant is
// not in it, and get on Namespaces is its only verb there.
func TestServedRoleGrantsNothingClusterScoped(t *testing.T) {
	role := byKey(t, kustomize(t, "../namespaced"))["Role haproxy-tcp-operator in "+namespace]
	for _, r := range rulesOf(t, role) {
		m := r.(map[string]any)
		res, _, _ := unstructured.NestedStringSlice(m, "resources")
		verbs, _, _ := unstructured.NestedStringSlice(m, "verbs")
		for _, x := range res {
			switch x {
			case "tokenreviews", "subjectaccessreviews":
				t.Errorf("the served Role names %s", x)
			case "namespaces":
				if strings.Join(verbs, ",") != "get" {
					t.Errorf("the served Role has %v on namespaces, want get only", verbs)
				}
			}
		}
	}
}
