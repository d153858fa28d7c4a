package bundlegen_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/operator-framework/api/pkg/manifests"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	"github.com/operator-framework/api/pkg/validation"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/deploy/bundlegen"
)

// acceptedWarnings are the validator warnings we accept, each with why.
var acceptedWarnings = map[string]string{}

// TestBundleIsCurrentAndValid regenerates the bundle, compares it with
// deploy/bundle, and runs OLM's bundle, CSV, CRD, OperatorHub and
// community validators on it.
func TestBundleIsCurrentAndValid(t *testing.T) {
	out := t.TempDir()
	if err := bundlegen.Generate("..", out, bundlegen.Images{}); err != nil {
		t.Fatal(err)
	}
	err := filepath.Walk(out, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, path)
		want, _ := os.ReadFile(path)
		got, err := os.ReadFile(filepath.Join("../bundle", rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("deploy/bundle/%s is stale or missing: run make bundle", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	validateBundle(t, "../bundle")
}

// validateBundle runs OLM's bundle, CSV, CRD, OperatorHub and community
// validators on the bundle in dir.
func validateBundle(t *testing.T, dir string) {
	t.Helper()
	bundle, err := manifests.GetBundleFromDir(dir)
	if err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	objs := append(bundle.ObjectsToValidate(), map[string]string{"k8s-version": "1.37"})
	validators := validation.DefaultBundleValidators.WithValidators(
		validation.OperatorHubV2Validator,
		validation.StandardCapabilitiesValidator,
		validation.StandardCategoriesValidator,
		validation.CommunityOperatorValidator,
		validation.AlphaDeprecatedAPIsValidator,
		validation.GoodPracticesValidator,
		validation.ObjectValidator,
	)
	results := validators.Validate(objs...)
	checked := 0
	for _, r := range results {
		checked++
		for _, e := range r.Errors {
			t.Errorf("%s: error: %s", r.Name, e.Error())
		}
		for _, w := range r.Warnings {
			msg := w.Error()
			accepted := false
			for k := range acceptedWarnings {
				if strings.Contains(msg, k) {
					accepted = true
				}
			}
			if !accepted {
				t.Errorf("%s: warning not accepted in acceptedWarnings: %s", r.Name, msg)
			}
		}
	}
	if checked == 0 {
		t.Fatal("the validators returned no result")
	}
}

// TestImagesAgree: the operator Deployment, the CSV and the instance
// image flag name one release.
func TestImagesAgree(t *testing.T) {
	csv, err := os.ReadFile("../bundle/manifests/haproxy-tcp-operator.clusterserviceversion.yaml")
	if err != nil {
		t.Fatal(err)
	}
	manager, err := os.ReadFile("../manager/manager.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, image := range []string{"haproxy-tcp-operator/operator:v0.1.0", "haproxy-tcp-operator/haproxy:v0.1.0"} {
		if !bytes.Contains(csv, []byte(bundlegen.DefaultRegistry+"/"+image)) || !bytes.Contains(manager, []byte(image)) {
			t.Errorf("%s is not named by both the Deployment and the CSV (there from %s)", image, bundlegen.DefaultRegistry)
		}
	}
}

// TestServedRoleIsCurrent: deploy/namespaced/served/role.yaml is what
// make bundle derives from the ClusterRole.
func TestServedRoleIsCurrent(t *testing.T) {
	want, err := bundlegen.ServedRole("..")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(bundlegen.ServedRolePath(".."))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("deploy/namespaced/served/role.yaml is stale or missing: run make bundle")
	}
}

// TestNamespacedInstallModesNeedNoClusterRole: every rule is in the CSV's
// permissions, which OLM turns into Roles for OwnNamespace,
// SingleNamespace and MultiNamespace installs; the operator learns its
// target namespaces from OLM's annotation.
func TestNamespacedInstallModesNeedNoClusterRole(t *testing.T) {
	var csv operatorsv1alpha1.ClusterServiceVersion
	b, err := os.ReadFile("../bundle/manifests/haproxy-tcp-operator.clusterserviceversion.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &csv); err != nil {
		t.Fatal(err)
	}
	install := csv.Spec.InstallStrategy.StrategySpec
	if len(install.ClusterPermissions) > 0 {
		t.Errorf("clusterPermissions %v: OLM would create a ClusterRole in every install mode", install.ClusterPermissions)
	}
	var clusterRole rbacv1.ClusterRole
	b, err = os.ReadFile("../rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &clusterRole); err != nil {
		t.Fatal(err)
	}
	if len(install.Permissions) != 1 || !reflect.DeepEqual(install.Permissions[0].Rules[:len(clusterRole.Rules)], clusterRole.Rules) {
		t.Errorf("permissions do not hold the rules of deploy/rbac/role.yaml: %v", install.Permissions)
	}
	for _, m := range csv.Spec.InstallModes {
		if !m.Supported {
			t.Errorf("install mode %s is not supported", m.Type)
		}
	}
	env := install.DeploymentSpecs[0].Spec.Template.Spec.Containers[0].Env
	found := false
	for _, e := range env {
		if e.Name == "WATCH_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['olm.targetNamespaces']" {
			found = true
		}
	}
	if !found {
		t.Errorf("the CSV's Deployment does not set WATCH_NAMESPACE from olm.targetNamespaces: %v", env)
	}
}
