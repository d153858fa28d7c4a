package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedFilesAreCurrent regenerates the CRDs, the ClusterRole and deep copies into a
// scratch folder and fails when the committed ones differ: run
// make generate manifests.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	out := t.TempDir()
	crdDir := filepath.Join(out, "crd")
	run := func(args ...string) {
		cmd := exec.Command("go", append([]string{"tool", "controller-gen"}, args...)...)
		cmd.Dir = ".."
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("controller-gen %v: %v\n%s", args, err, b)
		}
	}
	run("crd", "paths=./api/...", "output:crd:artifacts:config="+crdDir)
	run("object", "paths=./api/...", "output:object:dir="+out)
	run("rbac:roleName=haproxy-tcp-operator", "paths=./operator/controller/...", "output:rbac:dir="+out)
	same(t, "../deploy/rbac/role.yaml", filepath.Join(out, "role.yaml"), "make manifests")

	committed, err := filepath.Glob("../deploy/crd/haproxy-operator.io_*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	generated, err := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(committed) != len(generated) {
		t.Errorf("deploy/crd has %d CRDs, the API types give %d: run make manifests", len(committed), len(generated))
	}
	for _, g := range generated {
		same(t, filepath.Join("../deploy/crd", filepath.Base(g)), g, "make manifests")
	}
	same(t, "../api/v1alpha1/zz_generated.deepcopy.go", filepath.Join(out, "zz_generated.deepcopy.go"), "make generate")
}

func same(t *testing.T, committed, generated, fix string) {
	t.Helper()
	want, err := os.ReadFile(generated)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(committed)
	if err != nil {
		t.Fatalf("%s: %v (run %s)", committed, err, fix)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run %s", committed, fix)
	}
}
