package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/localcluster"
)

// issue signs a certificate for name, usable by servers and clients, and
// returns it with its PEM certificate and key.
func (ca *testCA) issue(t testing.TB, name string) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certPEM, keyPEM
}

// tlsBackend starts a greeting backend on the test host that serves cert
// and, with clientCA, requires a client certificate signed by it.
func tlsBackend(t testing.TB, name string, cert tls.Certificate, clientCA *testCA) *localcluster.Backend {
	t.Helper()
	ln, err := bed.host.Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCA != nil {
		pool := x509.NewCertPool()
		pool.AddCert(clientCA.cert)
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	tl := tls.NewListener(ln, cfg)
	t.Cleanup(func() { tl.Close() })
	go dataplanetest.ServeGreeting(tl, name)
	return &localcluster.Backend{Name: name, Addr: ln.Addr().(*net.TCPAddr)}
}

// refused checks that connections through address never reach a backend:
// HAProxy closes them once the upstream handshake fails.
func refused(t testing.TB, address, why string) {
	t.Helper()
	for i := 0; i < 5; i++ {
		if got, _, err := greeting(address, ""); err == nil {
			t.Fatalf("%s: a connection through %s reached %q", why, address, got)
		}
	}
}

// TestUpstreamTLSVerifiesTheServer: an https:// upstream whose certificate
// comes from another CA is refused; with the CA that signed it the same
// upstream is reached; insecureSkipVerify reaches it with a warning; a
// backend that requires a client certificate gets the one named by
// clientCertificateSecret.
func TestUpstreamTLSVerifiesTheServer(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]

	trusted, other := newTestCA(t, "trusted upstream CA"), newTestCA(t, "other CA")
	goodCert, _, _ := trusted.issue(t, "secure.upstream")
	rogueCert, _, _ := other.issue(t, "secure.upstream")
	_, clientPEM, clientKey := trusted.issue(t, "haproxy.client")

	service(t, ns, "secure", map[string]int32{"tls": 443})
	service(t, ns, "rogue", map[string]int32{"tls": 443})
	service(t, ns, "picky", map[string]int32{"tls": 443})
	publish(t, ns, "secure", "tls", tlsBackend(t, "secure", goodCert, nil))
	publish(t, ns, "rogue", "tls", tlsBackend(t, "rogue", rogueCert, nil))
	publish(t, ns, "picky", "tls", tlsBackend(t, "picky", goodCert, trusted))

	create(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "trusted-ca", Namespace: ns}, Data: map[string][]byte{"ca.crt": trusted.pem}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "other-ca", Namespace: ns}, Data: map[string][]byte{"ca.crt": other.pem}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "client-cert", Namespace: ns}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{"tls.crt": clientPEM, "tls.key": clientKey}},
	)
	verified := func(ca, client string) *v1alpha1.UpstreamTLS {
		return &v1alpha1.UpstreamTLS{CASecret: ca, ServerName: "secure.upstream", ClientCertificateSecret: client}
	}
	create(t,
		mapping(ns, "secure", v1alpha1.TCPMappingSpec{Port: 2700, Service: "https://secure", UpstreamTLS: verified("trusted-ca", "")}),
		mapping(ns, "rogue", v1alpha1.TCPMappingSpec{Port: 2701, Service: "https://rogue", UpstreamTLS: verified("trusted-ca", "")}),
		mapping(ns, "wrong-name", v1alpha1.TCPMappingSpec{Port: 2702, Service: "https://secure", UpstreamTLS: &v1alpha1.UpstreamTLS{CASecret: "trusted-ca"}}),
		mapping(ns, "system-roots", v1alpha1.TCPMappingSpec{Port: 2703, Service: "https://secure", UpstreamTLS: &v1alpha1.UpstreamTLS{ServerName: "secure.upstream"}}),
		mapping(ns, "insecure", v1alpha1.TCPMappingSpec{Port: 2704, Service: "https://rogue", UpstreamTLS: &v1alpha1.UpstreamTLS{InsecureSkipVerify: true}}),
		mapping(ns, "picky-anonymous", v1alpha1.TCPMappingSpec{Port: 2705, Service: "https://picky", UpstreamTLS: verified("trusted-ca", "")}),
		mapping(ns, "picky", v1alpha1.TCPMappingSpec{Port: 2706, Service: "https://picky", UpstreamTLS: verified("trusted-ca", "client-cert")}),
	)
	for _, m := range []string{"secure", "rogue", "wrong-name", "system-roots", "insecure", "picky-anonymous", "picky"} {
		condition(t, ns, m, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}

	routesTo(t, addr(ip, 2700), "", "secure")
	routesTo(t, addr(ip, 2706), "", "picky")
	refused(t, addr(ip, 2701), "a certificate from another CA")
	refused(t, addr(ip, 2702), "a certificate for secure.upstream verified as the service host secure")
	refused(t, addr(ip, 2703), "a private CA's certificate verified against the system roots")
	refused(t, addr(ip, 2705), "a backend requiring a client certificate, given none")

	routesTo(t, addr(ip, 2704), "", "rogue")
	if c := condition(t, ns, "insecure", v1alpha1.ConditionAccepted, metav1.ConditionTrue); !strings.Contains(c.Message, "insecureSkipVerify") {
		t.Errorf("Accepted of an insecureSkipVerify mapping does not warn: %q", c.Message)
	}

	// The CA that signed the rogue certificate makes it trusted.
	var m v1alpha1.TCPMapping
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "rogue"}, &m); err != nil {
		t.Fatal(err)
	}
	m.Spec.UpstreamTLS.CASecret = "other-ca"
	if err := cluster.client.Update(ctxFor(t), &m); err != nil {
		t.Fatal(err)
	}
	routesTo(t, addr(ip, 2701), "", "rogue")

	// A missing CA Secret is a missing reference, not a silent fallback.
	create(t, mapping(ns, "no-ca", v1alpha1.TCPMappingSpec{Port: 2707, Service: "https://secure", UpstreamTLS: verified("no-such-ca", "")}))
	if c := condition(t, ns, "no-ca", v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse); c.Reason != v1alpha1.ReasonSecretNotFound {
		t.Errorf("ResolvedRefs of a mapping with a missing CA Secret: %s %q", c.Reason, c.Message)
	}
}

// TestUpstreamTLSBadInputIsRefusedNamingTheField: the API server refuses
// upstreamTLS settings that cannot work.
func TestUpstreamTLSBadInputIsRefusedNamingTheField(t *testing.T) {
	mapping := func(spec string) string {
		return "apiVersion: haproxy-operator.io/v1alpha1\nkind: TCPMapping\nmetadata:\n  name: bad-upstream\n  namespace: default\nspec:\n  port: 2222\n" + spec
	}
	tests := map[string]struct {
		yaml string
		want []string
	}{
		"upstreamTLS on a cleartext service": {
			mapping("  service: qotm\n  upstreamTLS:\n    insecureSkipVerify: true\n"),
			[]string{"spec", "upstreamTLS needs an https:// service"},
		},
		"an IPv4 upstream with no name to verify": {
			mapping("  service: https://10.1.2.3\n"),
			[]string{"spec", "upstreamTLS.serverName"},
		},
		"an IPv6 upstream with no name to verify": {
			mapping("  service: https://[2001:db8::1]:8443\n  upstreamTLS:\n    caSecret: ca\n"),
			[]string{"spec", "upstreamTLS.serverName"},
		},
		"insecureSkipVerify with a CA": {
			mapping("  service: https://qotm\n  upstreamTLS:\n    insecureSkipVerify: true\n    caSecret: ca\n"),
			[]string{"spec.upstreamTLS", "insecureSkipVerify cannot be combined with caSecret"},
		},
		"a server name carrying a directive": {
			mapping("  service: https://qotm\n  upstreamTLS:\n    serverName: \"qotm verify none\"\n"),
			[]string{"spec.upstreamTLS.serverName", "lowercase DNS name"},
		},
		"a CA reference with a slash": {
			mapping("  service: https://qotm\n  upstreamTLS:\n    caSecret: ns/ca\n"),
			[]string{"spec.upstreamTLS.caSecret", "name or name.namespace"},
		},
		"a client certificate reference with a space": {
			mapping("  service: https://qotm\n  upstreamTLS:\n    clientCertificateSecret: \"a b\"\n"),
			[]string{"spec.upstreamTLS.clientCertificateSecret", "name or name.namespace"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { refusedNamingTheField(t, tc.yaml, tc.want...) })
	}
	// What the rules allow: an address with a name, or with the opt-out.
	for _, spec := range []string{
		"  service: https://10.1.2.3\n  upstreamTLS:\n    serverName: db.example.com\n    caSecret: ca.other\n    clientCertificateSecret: client\n",
		"  service: https://[2001:db8::1]\n  upstreamTLS:\n    insecureSkipVerify: true\n",
		"  service: https://qotm.default:8443\n",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, errOut, err := kubectl(ctx, mapping(spec), "apply", "--dry-run=server", "-f", "-")
		cancel()
		if err != nil {
			t.Errorf("kubectl apply refused a valid mapping:\n%s\n%s%s", spec, out, errOut)
		}
	}
}
