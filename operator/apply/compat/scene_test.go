package compat_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/apply"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/render"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// ns is the namespace of every object of a scene.
const ns = "compat"

// scene is the resources one HAProxy serves, as the operator would read
// them from the API server: the suite drives the operator's own
// translation and templates, so what an instance gets is what the
// operator sends in production.
type scene struct {
	snap snapshot.Snapshot
}

func newScene() *scene {
	return &scene{snap: snapshot.Snapshot{
		HAProxy: v1alpha1.HAProxy{
			ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ns},
			// The stats page would listen on every address of the host.
			Spec: v1alpha1.HAProxySpec{Stats: v1alpha1.StatsSpec{Enabled: ptr.To(false)}},
		},
		Namespaces: []corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{corev1.LabelMetadataName: ns}}}},
	}}
}

// service makes Service name's ready endpoints the given backends, one
// EndpointSlice each: loopback backends differ by port.
func (s *scene) service(name string, backends ...*dataplanetest.Backend) {
	var svcs []corev1.Service
	for _, svc := range s.snap.Services {
		if svc.Name != name {
			svcs = append(svcs, svc)
		}
	}
	s.snap.Services = append(svcs, corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	})
	var slices []discoveryv1.EndpointSlice
	for _, es := range s.snap.EndpointSlices {
		if es.Labels[discoveryv1.LabelServiceName] != name {
			slices = append(slices, es)
		}
	}
	for i, b := range backends {
		slices = append(slices, discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("%s-%d", name, i), Namespace: ns,
				Labels: map[string]string{discoveryv1.LabelServiceName: name},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Port: ptr.To(int32(b.Addr.Port))}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{b.Addr.IP.String()}}},
		})
	}
	s.snap.EndpointSlices = slices
}

// mapping sets TCPMapping name: 127.0.0.1:port to service, terminating
// TLS with TLSContext tlsContext when set.
func (s *scene) mapping(name string, port int, service string, weight *int32, tlsContext string) {
	s.removeMapping(name)
	s.snap.TCPMappings = append(s.snap.TCPMappings, &v1alpha1.TCPMapping{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Generation: 1,
			// Older mappings own a shared listener; order them by name.
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, len(s.snap.TCPMappings), 0, time.UTC))},
		Spec: v1alpha1.TCPMappingSpec{Port: int32(port), Address: "127.0.0.1", Service: service, Weight: weight, TLS: tlsContext},
	})
}

func (s *scene) removeMapping(name string) {
	var ms []*v1alpha1.TCPMapping
	for _, m := range s.snap.TCPMappings {
		if m.Name != name {
			ms = append(ms, m)
		}
	}
	s.snap.TCPMappings = ms
}

// secret sets Secret name to data.
func (s *scene) secret(name string, typ corev1.SecretType, data map[string][]byte) {
	var ss []corev1.Secret
	for _, sec := range s.snap.Secrets {
		if sec.Name != name {
			ss = append(ss, sec)
		}
	}
	s.snap.Secrets = append(ss, corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Type: typ, Data: data})
}

// tlsContext sets TLSContext name with its certificate Secret and, for
// client certificate verification, a CA Secret.
func (s *scene) tlsContext(name, secret, caSecret string) {
	var cs []v1alpha1.TLSContext
	for _, c := range s.snap.TLSContexts {
		if c.Name != name {
			cs = append(cs, c)
		}
	}
	spec := v1alpha1.TLSContextSpec{Secret: secret, CASecret: caSecret}
	if caSecret != "" {
		spec.CertRequired = ptr.To(true)
	}
	s.snap.TLSContexts = append(cs, v1alpha1.TLSContext{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Generation: 1}, Spec: spec})
}

// desired translates and renders the scene as the operator does; every
// object must be accepted.
func (s *scene) desired(t testing.TB) apply.Desired {
	t.Helper()
	res := translate.Translate(s.snap)
	for _, m := range res.Mappings {
		if !m.Programmable() {
			t.Fatalf("mapping %s not programmable: %+v %+v", m.Name, m.Accepted, m.ResolvedRefs)
		}
	}
	cfg, err := render.Config(res.Config)
	if err != nil {
		t.Fatal(err)
	}
	return apply.Desired{Config: cfg, Model: res.Config, Certificates: res.Config.Certificates}
}

// authority is a test CA issuing server and client certificates.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newAuthority(t testing.TB, cn string) *authority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &authority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a certificate for cn, for servers or clients, and returns
// it and its key as PEM.
func (a *authority) issue(t testing.TB, cn string, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if !client {
		tmpl.DNSNames = []string{cn}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// serverSecret sets a kubernetes.io/tls Secret with a certificate for cn.
func (s *scene) serverSecret(t testing.TB, name string, ca *authority, cn string) {
	t.Helper()
	crt, key := ca.issue(t, cn, false)
	s.secret(name, corev1.SecretTypeTLS, map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key})
}

// clientCertificate is a client certificate of ca for a TLS dial.
func clientCertificate(t testing.TB, ca *authority, cn string) tls.Certificate {
	t.Helper()
	crt, key := ca.issue(t, cn, true)
	c, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// port is a listener of the scene on 127.0.0.1.
type port int

func (p port) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(p))) }

func freePort(t testing.TB) port { return port(dataplanetest.FreePort(t, "127.0.0.1")) }
