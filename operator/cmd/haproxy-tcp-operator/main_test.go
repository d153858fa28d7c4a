package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestShippedBinaryLinksNoTestCode: the operator image's binary must not
// carry the local cluster (envtest, the kubelet stand-in, test helpers);
// haproxy-tcp-operator-dev does. No package of this module may import the
// standard library's testing package (TestShippedBinaryLinksNoTestingPackage
// checks that nothing else does either).
func TestShippedBinaryLinksNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Module}}:{{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const module = "github.com/haproxy-tcp-operator/haproxy-tcp-operator"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		head, imports, _ := strings.Cut(line, ":")
		pkg, mod, _ := strings.Cut(head, " ")
		for _, banned := range []string{"sigs.k8s.io/controller-runtime/pkg/envtest", module + "/operator/localcluster", module + "/haproxy/dataplane/dataplanetest"} {
			if pkg == banned {
				t.Errorf("the shipped binary links %s", pkg)
			}
		}
		if strings.HasPrefix(mod, module) && strings.Contains(" "+imports+" ", " testing ") {
			t.Errorf("%s, in the shipped binary, imports testing", pkg)
		}
	}
}
