package translate_test

import (
	"slices"
	"testing"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// TestUpstreamSecretsAreReferencesIntoTheirNamespaces: the namespaces of
// upstreamTLS Secrets, in the current and the last accepted generation,
// are where grants concern the mapping.
func TestUpstreamSecretsAreReferencesIntoTheirNamespaces(t *testing.T) {
	m := mapping("db", 0, 2, v1alpha1.TCPMappingSpec{Port: 2222, Service: "https://db",
		UpstreamTLS: &v1alpha1.UpstreamTLS{CASecret: "ca.pki", ClientCertificateSecret: "client"}})
	m.Status.LastAccepted = &v1alpha1.AcceptedTCPMapping{Generation: 1, Spec: v1alpha1.TCPMappingSpec{Port: 2222, Service: "https://db",
		UpstreamTLS: &v1alpha1.UpstreamTLS{ClientCertificateSecret: "client.vault"}}}
	got := translate.MappingNamespaces(&m)
	slices.Sort(got)
	if want := []string{"pki", "vault"}; !slices.Equal(got, want) {
		t.Errorf("MappingNamespaces = %v, want %v", got, want)
	}
}
