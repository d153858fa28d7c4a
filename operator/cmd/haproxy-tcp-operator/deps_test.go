package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestShippedBinaryLinksNoTestingPackage: nothing in the shipped binary
// imports the standard library's testing package (its flags and helpers
// have no place in production; client-native's runtime package brought
// it in through haproxy_mock.go, which is why the dataplane has its own
// runtime API client, haproxy/runtime). The error names who imports it.
func TestShippedBinaryLinksNoTestingPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}:{{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	linked := false
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		if pkg == "testing" {
			linked = true
		}
		if strings.Contains(" "+imports+" ", " testing ") {
			t.Errorf("%s, in the shipped binary, imports testing", pkg)
		}
	}
	if linked {
		t.Error("the shipped binary links the testing package")
	}
}
