package controller

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

func TestMappingServices(t *testing.T) {
	for _, tc := range []struct {
		service, previous string
		want              []string
	}{
		{service: "app", want: []string{"team/app"}},
		{service: "app:8080", want: []string{"team/app"}},
		{service: "https://app", want: []string{"team/app"}},
		{service: "app.other", want: []string{"other/app"}},
		{service: "app.other.svc:443", want: []string{"other/app"}},
		{service: "tls://app.other.svc.cluster.local:443", want: []string{"other/app"}},
		{service: "db.example.com:5432"},
		{service: "10.0.0.1:80"},
		{service: "[::1]:80"},
		// The last accepted spec is still programmed while the current
		// one is rejected: its Service is a dependency too.
		{service: "new", previous: "old", want: []string{"team/new", "team/old"}},
		{service: "same", previous: "same", want: []string{"team/same"}},
	} {
		m := &v1alpha1.TCPMapping{ObjectMeta: metav1.ObjectMeta{Namespace: "team"}, Spec: v1alpha1.TCPMappingSpec{Service: tc.service}}
		if tc.previous != "" {
			m.Status.LastAccepted = &v1alpha1.AcceptedTCPMapping{Spec: v1alpha1.TCPMappingSpec{Service: tc.previous}}
		}
		if got := mappingServices(m); !slices.Equal(got, tc.want) {
			t.Errorf("service %q (previous %q): %v, want %v", tc.service, tc.previous, got, tc.want)
		}
	}
}

func TestMappingContextsAndContextSecrets(t *testing.T) {
	m := &v1alpha1.TCPMapping{ObjectMeta: metav1.ObjectMeta{Namespace: "team"}, Spec: v1alpha1.TCPMappingSpec{TLS: "shared.certs"}}
	m.Status.LastAccepted = &v1alpha1.AcceptedTCPMapping{Spec: v1alpha1.TCPMappingSpec{TLS: "own"}}
	if got, want := mappingContexts(m), []string{"certs/shared", "team/own"}; !slices.Equal(got, want) {
		t.Errorf("mappingContexts: %v, want %v", got, want)
	}
	c := &v1alpha1.TLSContext{ObjectMeta: metav1.ObjectMeta{Namespace: "certs"}, Spec: v1alpha1.TLSContextSpec{Secret: "cert", CASecret: "ca.pki"}}
	c.Status.LastAccepted = &v1alpha1.AcceptedTLSContext{Spec: v1alpha1.TLSContextSpec{Secret: "old-cert"}}
	if got, want := contextSecrets(c), []string{"certs/cert", "pki/ca", "certs/old-cert"}; !slices.Equal(got, want) {
		t.Errorf("contextSecrets: %v, want %v", got, want)
	}
}

func TestHAProxySecrets(t *testing.T) {
	hap := &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Namespace: "edge", Name: "lb"}}
	hap.Spec.Stats.AuthSecret = "stats-login"
	got := haproxySecrets(hap)
	for _, want := range []string{"edge/" + statsSecretName(hap), "edge/stats-login", "edge/" + apiTLSSecretName(hap)} {
		if !slices.Contains(got, want) {
			t.Errorf("haproxySecrets %v lacks %s", got, want)
		}
	}
}

func TestMappingUpstreamSecrets(t *testing.T) {
	m := &v1alpha1.TCPMapping{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"}, Spec: v1alpha1.TCPMappingSpec{
		Service:     "https://db:5432",
		UpstreamTLS: &v1alpha1.UpstreamTLS{CASecret: "db-ca.pki", ClientCertificateSecret: "db-client"},
	}}
	m.Status.LastAccepted = &v1alpha1.AcceptedTCPMapping{Spec: v1alpha1.TCPMappingSpec{Service: "https://db:5432", UpstreamTLS: &v1alpha1.UpstreamTLS{CASecret: "old-ca"}}}
	if got, want := mappingSecrets(m), []string{"pki/db-ca", "shop/db-client", "shop/old-ca"}; !slices.Equal(got, want) {
		t.Errorf("mappingSecrets: %v, want %v", got, want)
	}
	if got := mappingSecrets(&v1alpha1.TCPMapping{Spec: v1alpha1.TCPMappingSpec{Service: "db:5432"}}); len(got) != 0 {
		t.Errorf("a mapping without upstreamTLS names Secrets %v", got)
	}
}
