package apigen_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/docs/apigen"
)

// TestAPIReferenceIsCurrent fails when docs/api.md no longer matches the
// API: run make docs.
func TestAPIReferenceIsCurrent(t *testing.T) {
	want, err := apigen.Generate("../../deploy/crd")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../api.md")
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("docs/api.md is stale or missing (%v): run make docs", err)
	}
	for _, field := range []string{"`port`", "`idleTimeoutMs`", "`alpnProtocols`", "`stats.port`"} {
		if !bytes.Contains(want, []byte(field)) {
			t.Errorf("the reference lacks %s", field)
		}
	}
}
