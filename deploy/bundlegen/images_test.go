package bundlegen_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/deploy/bundlegen"
)

// TestBundleImages: the bundle's relatedImages, its Deployment's image and
// --instance-image flag and the containerImage annotation name each image
// with a registry; digests, when given, pin them all; the pinned bundle
// still passes OLM's validators.
func TestBundleImages(t *testing.T) {
	const (
		opDigest  = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
		hapDigest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	)
	tests := map[string]struct {
		images            bundlegen.Images
		operator, haproxy string
	}{
		"the default registry, by tag": {
			operator: bundlegen.DefaultRegistry + "/haproxy-tcp-operator/operator:v0.1.0",
			haproxy:  bundlegen.DefaultRegistry + "/haproxy-tcp-operator/haproxy:v0.1.0",
		},
		"a registry of the release, by tag": {
			images:   bundlegen.Images{Registry: "registry.test:5000"},
			operator: "registry.test:5000/haproxy-tcp-operator/operator:v0.1.0",
			haproxy:  "registry.test:5000/haproxy-tcp-operator/haproxy:v0.1.0",
		},
		"both pinned": {
			images:   bundlegen.Images{Registry: "registry.test", Digests: map[string]string{"operator": opDigest, "haproxy": "registry.test/haproxy-tcp-operator/haproxy@" + hapDigest}},
			operator: "registry.test/haproxy-tcp-operator/operator@" + opDigest,
			haproxy:  "registry.test/haproxy-tcp-operator/haproxy@" + hapDigest,
		},
		"the operator pinned": {
			images:   bundlegen.Images{Registry: "registry.test", Digests: map[string]string{"operator": opDigest}},
			operator: "registry.test/haproxy-tcp-operator/operator@" + opDigest,
			haproxy:  "registry.test/haproxy-tcp-operator/haproxy:v0.1.0",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out := t.TempDir()
			if err := bundlegen.Generate("..", out, tc.images); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(out, "manifests", "haproxy-tcp-operator.clusterserviceversion.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var csv operatorsv1alpha1.ClusterServiceVersion
			if err := yaml.Unmarshal(b, &csv); err != nil {
				t.Fatal(err)
			}
			related := map[string]string{}
			for _, r := range csv.Spec.RelatedImages {
				related[r.Name] = r.Image
			}
			if related["operator"] != tc.operator || related["haproxy"] != tc.haproxy || len(related) != 2 {
				t.Errorf("relatedImages = %v, want operator %s and haproxy %s", related, tc.operator, tc.haproxy)
			}
			c := csv.Spec.InstallStrategy.StrategySpec.DeploymentSpecs[0].Spec.Template.Spec.Containers[0]
			if c.Image != tc.operator {
				t.Errorf("Deployment image = %s, want %s", c.Image, tc.operator)
			}
			flag := "--instance-image=" + tc.haproxy
			found := false
			for _, a := range c.Args {
				if strings.HasPrefix(a, "--instance-image=") {
					found = a == flag
					if !found {
						t.Errorf("Deployment flag %s, want %s", a, flag)
					}
				}
			}
			if !found {
				t.Errorf("Deployment args %v lack %s", c.Args, flag)
			}
			if got := csv.Annotations["containerImage"]; got != tc.operator {
				t.Errorf("containerImage annotation = %s, want %s", got, tc.operator)
			}
			if csv.Spec.Version.String() != "0.1.0" {
				t.Errorf("CSV version %s, want 0.1.0 from the image tag", csv.Spec.Version)
			}
			validateBundle(t, out)
		})
	}
}

// TestBundleImagesBadDigest: a digest that is no sha256 digest, or one
// for an image the bundle does not have, stops the generator with an
// error that names the image.
func TestBundleImagesBadDigest(t *testing.T) {
	for want, digests := range map[string]map[string]string{
		"digest of the haproxy image":    {"haproxy": "sha256:abc"},
		`digest for image "dataplane"`:   {"dataplane": "sha256:" + strings.Repeat("0", 64)},
		"names repository other/haproxy": {"haproxy": "other/haproxy@sha256:" + strings.Repeat("0", 64)},
	} {
		err := bundlegen.Generate("..", t.TempDir(), bundlegen.Images{Digests: digests})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("digests %v: error %v, want one containing %q", digests, err, want)
		}
	}
}
