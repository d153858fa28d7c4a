package localcluster

import (
	"os"
	"strings"
	"testing"
)

func TestReferenceGrantCRDComesFromTheGatewayAPIModule(t *testing.T) {
	path, err := ReferenceGrantCRD()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(path, "gateway-api@") {
		t.Errorf("path %s is not in the module cache", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: CustomResourceDefinition", "name: referencegrants.gateway.networking.k8s.io", "name: v1beta1"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q", path, want)
		}
	}
}
