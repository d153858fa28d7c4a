package bundlegen_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/deploy/bundlegen"
)

// acceptedWarnings are the validator warnings we accept, each with why.
var acceptedWarnings = map[string]string{}

// TestBundleIsCurrentAndValid regenerates the bundle, compares it with
// deploy/bundle, and runs OLM's bundle, CSV, CRD, OperatorHub and
// community validators on it.
func TestBundleIsCurrentAndValid(t *testing.T) {
	out := t.TempDir()
	if err := bundlegen.Generate("..", out); err != nil {
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

	bundle, err := manifests.GetBundleFromDir("../bundle")
	if err != nil {
		t.Fatalf("load deploy/bundle: %v", err)
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
		if !bytes.Contains(csv, []byte(image)) || !bytes.Contains(manager, []byte(image)) {
			t.Errorf("%s is not named by both the Deployment and the CSV", image)
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
