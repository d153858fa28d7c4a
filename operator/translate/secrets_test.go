package translate_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/internal/golden"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// TestReadingOnlyTheNamedSecretsGivesTheSameTranslation plays the
// controller: it reads just the Secrets SecretNames lists, translates once,
// and must get what a translation with every Secret gives.
func TestReadingOnlyTheNamedSecretsGivesTheSameTranslation(t *testing.T) {
	for _, tc := range golden.Cases(t, "testdata") {
		t.Run(tc.Name, func(t *testing.T) {
			names := translate.SecretNames(tc.Snapshot)
			s := tc.Snapshot
			s.Secrets = nil
			for _, sec := range tc.Snapshot.Secrets {
				if slices.Contains(names, sec.Namespace+"/"+sec.Name) {
					s.Secrets = append(s.Secrets, sec)
				}
			}
			full, _ := yaml.Marshal(translate.Translate(tc.Snapshot))
			once, _ := yaml.Marshal(translate.Translate(s))
			if !bytes.Equal(full, once) {
				t.Errorf("translation with the Secrets %v differs from one with every Secret", names)
			}
			for _, ref := range translate.Translate(tc.Snapshot).References {
				if n, isSecret := strings.CutPrefix(ref, translate.RefSecret+"/"); isSecret && !slices.Contains(names, n) {
					t.Errorf("translation reads Secret %s that SecretNames does not list", n)
				}
			}
		})
	}
}

func TestSecretNamesComeFromTheSpecsAlone(t *testing.T) {
	s := cluster(t)
	s.Secrets = []corev1.Secret{} // nothing read yet
	s.HAProxy.Spec.Stats.AuthSecret = "stats-auth"
	// Every reference counts here; TestUngrantedSecretsAreNotRead has
	// the grants.
	s.HAProxy.Spec.CrossNamespaceReferences = v1alpha1.CrossNamespaceAllowAll
	ctx := tlsContext("site", 2, v1alpha1.TLSContextSpec{Secret: "new-cert", CASecret: "client-ca.other"})
	ctx.Status.LastAccepted = &v1alpha1.AcceptedTLSContext{Generation: 1, Spec: v1alpha1.TLSContextSpec{Secret: "old-cert"}}
	elsewhere := tlsContext("shared", 1, v1alpha1.TLSContextSpec{Secret: "shared-cert"})
	elsewhere.Namespace = "other"
	unused := tlsContext("unused", 1, v1alpha1.TLSContextSpec{Secret: "unused-cert"})
	unused.Namespace = "other"
	s.TLSContexts = []v1alpha1.TLSContext{ctx, elsewhere, unused}
	s.TCPMappings = pointers(
		mapping("site", 0, 1, v1alpha1.TCPMappingSpec{Port: 2222, TLS: "site", Service: "qotm"}),
		mapping("shared", 1, 1, v1alpha1.TCPMappingSpec{Port: 2223, TLS: "shared.other", Service: "qotm"}),
	)
	got := translate.SecretNames(s)
	want := []string{"default/new-cert", "default/old-cert", "default/stats-auth", "other/client-ca", "other/shared-cert"}
	if !slices.Equal(got, want) {
		t.Errorf("SecretNames = %v, want %v", got, want)
	}
}
