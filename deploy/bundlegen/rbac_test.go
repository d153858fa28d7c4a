package bundlegen

import (
	"reflect"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

func rule(group string, resources []string, verbs ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: resources, Verbs: verbs}
}

func TestSplitRulesAndServedRules(t *testing.T) {
	in := []rbacv1.PolicyRule{
		rule("", []string{"namespaces", "pods"}, "get", "list", "watch"),
		rule("", []string{"secrets"}, "get", "create"),
		rule("authentication.k8s.io", []string{"tokenreviews"}, "create"),
		rule("authorization.k8s.io", []string{"subjectaccessreviews"}, "create"),
	}
	namespaced, cluster, err := splitRules(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := in[:2]; !reflect.DeepEqual(namespaced, want) {
		t.Errorf("namespaced rules %v, want %v", namespaced, want)
	}
	if want := in[2:]; !reflect.DeepEqual(cluster, want) {
		t.Errorf("cluster rules %v, want %v", cluster, want)
	}
	served, err := servedRules(rbacv1.ClusterRole{Rules: in})
	if err != nil {
		t.Fatal(err)
	}
	want := []rbacv1.PolicyRule{
		rule("", []string{"namespaces"}, "get"),
		rule("", []string{"pods"}, "get", "list", "watch"),
		rule("", []string{"secrets"}, "get", "create"),
	}
	if !reflect.DeepEqual(served, want) {
		t.Errorf("served rules %v, want %v", served, want)
	}
	if _, _, err := splitRules([]rbacv1.PolicyRule{{APIGroups: []string{"", "apps"}, Resources: []string{"pods"}}}); err == nil {
		t.Error("a rule of two API groups was split without complaint")
	}
}
