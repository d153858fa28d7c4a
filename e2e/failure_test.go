package e2e

import (
	"bufio"
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
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// parentCondition waits until the mapping's entry for its HAProxy edge has
// the condition with the given status, and returns it.
func contextCondition(t testing.TB, ns, name, typ string, status metav1.ConditionStatus) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	eventually(t, time.Minute, fmt.Sprintf("TLSContext %s/%s %s=%s", ns, name, typ, status), func() error {
		var c v1alpha1.TLSContext
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: name}, &c); err != nil {
			return err
		}
		cond := meta.FindStatusCondition(c.Status.Conditions, typ)
		if cond == nil || cond.Status != status {
			return fmt.Errorf("conditions %+v", c.Status.Conditions)
		}
		got = *cond
		return nil
	})
	return got
}

func updateMapping(t testing.TB, ns, name string, mutate func(*v1alpha1.TCPMapping)) {
	t.Helper()
	eventually(t, 10*time.Second, "update "+name, func() error {
		var m v1alpha1.TCPMapping
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: name}, &m); err != nil {
			return err
		}
		mutate(&m)
		return cluster.client.Update(ctxFor(t), &m)
	})
}

// TestUnbindableAddressIsReportedAndBlocksNoOne: a mapping on an address
// the instance does not have cannot load; it alone says so, the mappings
// before and after it serve.
func TestUnbindableAddressIsReportedAndBlocksNoOne(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "app")
	create(t, mapping(ns, "before", v1alpha1.TCPMappingSpec{Port: 3590, Service: "app"}))
	condition(t, ns, "before", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)

	create(t, mapping(ns, "unbindable", v1alpha1.TCPMappingSpec{Port: 3600, Address: "192.0.2.55", Service: "app"}))
	start := time.Now()
	c := condition(t, ns, "unbindable", v1alpha1.ConditionProgrammed, metav1.ConditionFalse)
	eventually(t, 30*time.Second, "the unbindable mapping reports ReloadFailed", func() error {
		pc := meta.FindStatusCondition(getMapping(t, ns, "unbindable").Status.Conditions, v1alpha1.ConditionProgrammed)
		if pc == nil || pc.Reason != v1alpha1.ReasonReloadFailed {
			return fmt.Errorf("Programmed %+v", pc)
		}
		c = *pc
		return nil
	})
	t.Logf("ReloadFailed reported %s after creation: %s", time.Since(start).Round(time.Millisecond), c.Message)
	acc := meta.FindStatusCondition(getMapping(t, ns, "unbindable").Status.Conditions, v1alpha1.ConditionAccepted)
	if acc == nil || !strings.Contains(acc.Message, "192.0.2.55") {
		t.Errorf("Accepted should quote HAProxy's line about the address: %+v", acc)
	}

	routesTo(t, addr(ip, 3590), "", "app")
	create(t, mapping(ns, "after", v1alpha1.TCPMappingSpec{Port: 3591, Service: "app"}))
	condition(t, ns, "after", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 3591), "", "app")
	if c := condition(t, ns, "before", v1alpha1.ConditionProgrammed, metav1.ConditionTrue); strings.Contains(c.Message, "192.0.2.55") {
		t.Errorf("another mapping's status mentions the unbindable one: %q", c.Message)
	}
}

// haproxyMaster finds the HAProxy master process serving the instance at
// ip, from the processes' command lines (the kubelet stand-in names each
// pod's directory after its address).
func haproxyMaster(t testing.TB, ip string) int {
	t.Helper()
	dir := strings.ReplaceAll(ip, ".", "-")
	var pid int
	eventually(t, 10*time.Second, "find the HAProxy master of "+ip, func() error {
		out, err := exec.Command("pgrep", "-f", "-o", "haproxy -W .*"+dir+"/").Output()
		if err != nil {
			return fmt.Errorf("pgrep: %v", err)
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(out)))
		return err
	})
	return pid
}

// TestKilledHAProxyComesBack: kill -9 of the HAProxy master; traffic flows
// again within 5 s with nobody doing anything.
func TestKilledHAProxyComesBack(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "app")
	create(t, mapping(ns, "m", v1alpha1.TCPMappingSpec{Port: 3620, Service: "app"}))
	condition(t, ns, "m", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 3620), "", "app")

	pid := haproxyMaster(t, ip)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	dir := strings.ReplaceAll(ip, ".", "-")
	eventually(t, 5*time.Second, "a new master serves after kill -9 of the old one", func() error {
		out, _ := exec.Command("pgrep", "-f", "-o", "haproxy -W .*"+dir+"/").Output()
		again, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		if again == 0 || again == pid {
			return fmt.Errorf("no new master yet")
		}
		got, _, err := greeting(addr(ip, 3620), "")
		if err != nil || got != "app" {
			return fmt.Errorf("%q %v", got, err)
		}
		return nil
	})
	t.Logf("a new master serves %s after kill -9 of the old one", time.Since(killed).Round(time.Millisecond))
}

// TestBadTLSSettingsRejectOnlyTheirTLSContext: a cipher or a curve HAProxy
// does not know leaves out its own TLSContext (and its mappings); the
// other tenant's mapping, and mappings created afterwards, serve.
func TestBadTLSSettingsRejectOnlyTheirTLSContext(t *testing.T) {
	for name, bad := range map[string]func(*v1alpha1.TLSContext){
		"cipher": func(c *v1alpha1.TLSContext) { c.Spec.CipherSuites = []string{"FOO"} },
		"curve":  func(c *v1alpha1.TLSContext) { c.Spec.ECDHCurves = []string{"FOO"} },
	} {
		t.Run(name, func(t *testing.T) {
			ns := newNamespace(t, nil)
			ip := newHAProxy(t, ns, 1)[0]
			serviceWithBackend(t, ns, "app")
			tlsSecret(t, ns, "good-cert", "good.example")
			tlsSecret(t, ns, "bad-cert", "bad.example")
			good := tlsContext(ns, "good", "good-cert")
			badCtx := tlsContext(ns, "bad", "bad-cert")
			bad(badCtx)
			create(t, good, mapping(ns, "good", v1alpha1.TCPMappingSpec{Port: 3630, TLS: "good", Service: "app"}))
			condition(t, ns, "good", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)

			create(t, badCtx, mapping(ns, "bad", v1alpha1.TCPMappingSpec{Port: 3631, TLS: "bad", Service: "app"}))
			c := contextCondition(t, ns, "bad", v1alpha1.ConditionAccepted, metav1.ConditionFalse)
			if c.Reason != v1alpha1.ReasonInvalidTLSSettings || !strings.Contains(c.Message, "FOO") {
				t.Errorf("the bad TLSContext says %s: %q", c.Reason, c.Message)
			}
			if c := condition(t, ns, "bad", v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse); c.Reason != v1alpha1.ReasonInvalidTLSContext {
				t.Errorf("its mapping says %s: %q", c.Reason, c.Message)
			}
			if sub := routesTo(t, addr(ip, 3630), "good.example", "app"); sub != "good.example" {
				t.Errorf("the good mapping served %q", sub)
			}
			create(t, mapping(ns, "later", v1alpha1.TCPMappingSpec{Port: 3632, Service: "app"}))
			condition(t, ns, "later", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
			routesTo(t, addr(ip, 3632), "", "app")
			if c := condition(t, ns, "good", v1alpha1.ConditionProgrammed, metav1.ConditionTrue); strings.Contains(c.Message, "FOO") {
				t.Errorf("the good mapping's status quotes the bad one: %q", c.Message)
			}
		})
	}
}

// testCA is a certificate authority for client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) client(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// mtlsGreeting connects with TLS (optionally presenting cert) and reads
// the backend's greeting.
func mtlsGreeting(address, sni string, cert *tls.Certificate) (string, error) {
	conn, err := net.DialTimeout("tcp", address, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	cfg := &tls.Config{ServerName: sni, InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}
	if cert != nil {
		// Present it whatever CAs the server asks for: a client with a
		// certificate of another CA must be refused, not skipped.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(tc).ReadString('\n')
	return strings.TrimSpace(line), err
}

// TestMutualTLS: caSecret verifies client certificates; certRequired
// refuses clients without one; a certificate from another CA is refused.
func TestMutualTLS(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "app")
	ca, other := newTestCA(t, "clients"), newTestCA(t, "strangers")
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "client-ca", Namespace: ns}, Data: map[string][]byte{"ca.crt": ca.pem}})
	tlsSecret(t, ns, "host-cert", "mtls.example")
	required := tlsContext(ns, "required", "host-cert")
	required.Spec.CASecret, required.Spec.CertRequired = "client-ca", ptr.To(true)
	optional := tlsContext(ns, "optional", "host-cert")
	optional.Spec.CASecret, optional.Spec.CertRequired = "client-ca", ptr.To(false)
	create(t, required, optional,
		mapping(ns, "required", v1alpha1.TCPMappingSpec{Port: 3640, TLS: "required", Service: "app"}),
		mapping(ns, "optional", v1alpha1.TCPMappingSpec{Port: 3641, TLS: "optional", Service: "app"}))
	condition(t, ns, "required", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	condition(t, ns, "optional", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)

	good, stranger := ca.client(t, "alice"), other.client(t, "mallory")
	eventually(t, 10*time.Second, "a client with a certificate of the CA gets through", func() error {
		got, err := mtlsGreeting(addr(ip, 3640), "mtls.example", &good)
		if err != nil || got != "app" {
			return fmt.Errorf("%q %v", got, err)
		}
		return nil
	})
	if got, err := mtlsGreeting(addr(ip, 3640), "mtls.example", nil); err == nil {
		t.Errorf("certRequired: a client without a certificate got %q", got)
	}
	if got, err := mtlsGreeting(addr(ip, 3640), "mtls.example", &stranger); err == nil {
		t.Errorf("certRequired: a certificate of another CA got %q", got)
	}
	if got, err := mtlsGreeting(addr(ip, 3641), "mtls.example", nil); err != nil || got != "app" {
		t.Errorf("optional: a client without a certificate: %q %v", got, err)
	}
	if got, err := mtlsGreeting(addr(ip, 3641), "mtls.example", &good); err != nil || got != "app" {
		t.Errorf("optional: a client with a good certificate: %q %v", got, err)
	}
	if got, err := mtlsGreeting(addr(ip, 3641), "mtls.example", &stranger); err == nil {
		t.Errorf("optional: a certificate of another CA got %q", got)
	}
}

// TestCanaryWeightEditsInEitherOrderDropNothing: 60/40 → 70/40 → 70/30
// under continuous connections; the middle step (sum 110) keeps 60/40.
func TestCanaryWeightEditsInEitherOrderDropNothing(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	canaryRelease(t, ns, 3650, 40, 60)
	condition(t, ns, "canary", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	condition(t, ns, "stable", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 3650), "", "stable")

	var total, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, _, err := greeting(addr(ip, 3650), "")
				total.Add(1)
				if err != nil || (got != "stable" && got != "canary") {
					failed.Add(1)
				}
			}
		}()
	}
	updateMapping(t, ns, "canary", func(m *v1alpha1.TCPMapping) { m.Spec.Weight = ptr.To(int32(70)) })
	c := condition(t, ns, "canary", v1alpha1.ConditionAccepted, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonPreviousGenerationInEffect {
		t.Errorf("mid-edit, the canary says %s: %q", c.Reason, c.Message)
	}
	if p := condition(t, ns, "canary", v1alpha1.ConditionProgrammed, metav1.ConditionTrue); !strings.Contains(p.Message, "generation") {
		t.Errorf("mid-edit, Programmed should say which generation serves: %q", p.Message)
	}
	// The generation in effect is kept in status, not only in memory: a
	// restarted operator keeps serving 60/40.
	stopOperatorProcess()
	if err := runOperator(); err != nil {
		t.Fatal(err)
	}
	create(t, mapping(ns, "nudge", v1alpha1.TCPMappingSpec{Port: 3651, Service: "stable"}))
	condition(t, ns, "nudge", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	if c := condition(t, ns, "canary", v1alpha1.ConditionAccepted, metav1.ConditionFalse); c.Reason != v1alpha1.ReasonPreviousGenerationInEffect {
		t.Errorf("after a restart, mid-edit, the canary says %s: %q", c.Reason, c.Message)
	}
	if s := split(addr(ip, 3650), 400); s["canary"] < 200 || s["canary"] > 280 || s["failed"] > 0 {
		t.Errorf("after a restart, mid-edit, the split is %v; want 60/40 still", s)
	}
	updateMapping(t, ns, "stable", func(m *v1alpha1.TCPMapping) { m.Spec.Weight = ptr.To(int32(30)) })
	condition(t, ns, "canary", v1alpha1.ConditionAccepted, metav1.ConditionTrue)
	condition(t, ns, "stable", v1alpha1.ConditionAccepted, metav1.ConditionTrue)
	eventually(t, 20*time.Second, "70/30 in effect", func() error {
		s := split(addr(ip, 3650), 200)
		if s["canary"] < 120 {
			return fmt.Errorf("split %v", s)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	t.Logf("%d connections during the edits, %d failed", total.Load(), failed.Load())
	if failed.Load() > 0 || total.Load() < 50 {
		t.Errorf("%d of %d connections failed during the edits", failed.Load(), total.Load())
	}
}

// TestIdleClientsAreClosed: clients that connect and send nothing (no
// ClientHello on an SNI or terminating port) are closed within the
// default handshake bound.
func TestIdleClientsAreClosed(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "app")
	tlsSecret(t, ns, "cert", "idle.example")
	create(t, tlsContext(ns, "ctx", "cert"),
		mapping(ns, "terminated", v1alpha1.TCPMappingSpec{Port: 3660, TLS: "ctx", Service: "app"}),
		mapping(ns, "passthrough", v1alpha1.TCPMappingSpec{Port: 3661, Host: "idle.example", Service: "app"}))
	condition(t, ns, "terminated", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	condition(t, ns, "passthrough", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)

	const n = 100
	var conns []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr(ip, int32(3660+i%2)), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	start := time.Now()
	var closed atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func(c net.Conn) {
			defer wg.Done()
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
				closed.Add(1)
			}
		}(c)
	}
	wg.Wait()
	t.Logf("%d of %d idle connections closed by HAProxy within %s", closed.Load(), n, time.Since(start).Round(time.Millisecond))
	if closed.Load() != n || time.Since(start) > 8*time.Second {
		t.Errorf("%d of %d idle connections closed in %s; want all within the 5s default", closed.Load(), n, time.Since(start))
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestOldWorkersAreBounded: with a long-lived connection held across each
// of many reloads, the old workers that remain stay bounded.
func TestOldWorkersAreBounded(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1, func(h *v1alpha1.HAProxy) { h.Spec.MaxReloadsPerWorker = ptr.To(int32(3)) })[0]
	serviceWithBackend(t, ns, "app")
	master := haproxyMaster(t, ip)
	const reloads = 100
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < reloads; i++ {
		name := fmt.Sprintf("m%d", i)
		create(t, mapping(ns, name, v1alpha1.TCPMappingSpec{Port: int32(4000 + i), Service: "app"}))
		condition(t, ns, name, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
		c, err := net.DialTimeout("tcp", addr(ip, int32(4000+i)), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	var workers int
	eventually(t, 10*time.Second, "old workers stay bounded", func() error {
		out, _ := exec.Command("pgrep", "-P", strconv.Itoa(master)).Output()
		workers = len(strings.Fields(string(out)))
		if workers > 3+1 {
			return fmt.Errorf("%d workers", workers)
		}
		return nil
	})
	t.Logf("after %d reloads with a held connection each: %d worker processes (bound: 3 old + 1)", reloads, workers)
}

// TestFrozenInstanceDelaysNoOtherHAProxy: while one HAProxy's dataplane
// is stopped (SIGSTOP), another HAProxy's new mapping is programmed.
func TestFrozenInstanceDelaysNoOtherHAProxy(t *testing.T) {
	frozenNS := newNamespace(t, nil)
	frozenIP := newHAProxy(t, frozenNS, 1)[0]
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, frozenNS, "app")
	serviceWithBackend(t, ns, "app")

	out, err := exec.Command("pgrep", "-f", "dataplane .*--listen="+frozenIP+":").Output()
	if err != nil {
		t.Fatalf("find the dataplane of %s: %v", frozenIP, err)
	}
	pid, _ := strconv.Atoi(strings.Fields(string(out))[0])
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	create(t, mapping(frozenNS, "stuck", v1alpha1.TCPMappingSpec{Port: 3670, Service: "app"}))
	start := time.Now()
	create(t, mapping(ns, "free", v1alpha1.TCPMappingSpec{Port: 3671, Service: "app"}))
	eventually(t, 15*time.Second, "the other HAProxy's mapping is programmed", func() error {
		c := meta.FindStatusCondition(getMapping(t, ns, "free").Status.Conditions, v1alpha1.ConditionProgrammed)
		if c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
	t.Logf("programmed %s after creation while the other HAProxy's instance was frozen", time.Since(start).Round(time.Millisecond))
	routesTo(t, addr(ip, 3671), "", "app")
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Minute, "the thawed instance catches up", func() error {
		c := meta.FindStatusCondition(getMapping(t, frozenNS, "stuck").Status.Conditions, v1alpha1.ConditionProgrammed)
		if c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
}

// TestCertificateTroubleIsReportedOnItsTLSContext: a chain with a garbage
// block is refused before HAProxy sees it, on its own TLSContext only; a
// certificate that expires within the warning window is served with a
// warning condition and event.
func TestCertificateTroubleIsReportedOnItsTLSContext(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "app")

	garbage := certData(t, "garbage.example")
	garbage["tls.crt"] = append(garbage["tls.crt"], []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")...)
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "garbage-cert", Namespace: ns}, Type: corev1.SecretTypeTLS, Data: garbage})
	ca := newTestCA(t, "short-lived")
	certPEM, keyPEM := ca.serverCert(t, "127.0.0.1")
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "soon-cert", Namespace: ns}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM}})
	create(t, tlsContext(ns, "garbage", "garbage-cert"), tlsContext(ns, "soon", "soon-cert"),
		mapping(ns, "garbage", v1alpha1.TCPMappingSpec{Port: 3680, TLS: "garbage", Service: "app"}),
		mapping(ns, "soon", v1alpha1.TCPMappingSpec{Port: 3681, TLS: "soon", Service: "app"}))

	if c := contextCondition(t, ns, "garbage", v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse); c.Reason != v1alpha1.ReasonInvalidCertificate {
		t.Errorf("a chain with a garbage block: %s %q", c.Reason, c.Message)
	}
	condition(t, ns, "garbage", v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse)
	condition(t, ns, "soon", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 3681), "soon.example", "app")
	c := contextCondition(t, ns, "soon", v1alpha1.ConditionCertificateExpiring, metav1.ConditionTrue)
	if c.Reason != v1alpha1.ReasonCertificateExpiring {
		t.Errorf("a certificate valid for a day: %s %q", c.Reason, c.Message)
	}
	eventually(t, 30*time.Second, "a warning event on the expiring TLSContext", func() error {
		var events eventsv1.EventList
		if err := cluster.client.List(ctxFor(t), &events, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Regarding.Name == "soon" && e.Reason == v1alpha1.ReasonCertificateExpiring && e.Type == corev1.EventTypeWarning {
				return nil
			}
		}
		return fmt.Errorf("%d events, none about the expiring certificate", len(events.Items))
	})
}

// TestGarbageSecretKeepsTheLastCertificateServing: a TLSContext's Secret
// replaced with garbage is reported on the TLSContext, while HAProxy keeps
// serving the certificate it loaded; a valid Secret is served again.
func TestGarbageSecretKeepsTheLastCertificateServing(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "app")
	secret := tlsSecret(t, ns, "cert", "first.example")
	create(t, tlsContext(ns, "ctx", "cert"), mapping(ns, "site", v1alpha1.TCPMappingSpec{Port: 3690, TLS: "ctx", Service: "app"}))
	condition(t, ns, "site", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	if sub := routesTo(t, addr(ip, 3690), "first.example", "app"); sub != "first.example" {
		t.Fatalf("served %q", sub)
	}
	eventually(t, 30*time.Second, "the TLSContext remembers its accepted generation", func() error {
		var c v1alpha1.TLSContext
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "ctx"}, &c); err != nil {
			return err
		}
		if c.Status.LastAccepted == nil {
			return fmt.Errorf("no lastAccepted yet")
		}
		return nil
	})

	secret.Data["tls.crt"] = []byte("-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n")
	if err := cluster.client.Update(ctxFor(t), secret); err != nil {
		t.Fatal(err)
	}
	c := contextCondition(t, ns, "ctx", v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonInvalidCertificate || !strings.Contains(c.Message, "keeps serving") {
		t.Errorf("the TLSContext says %s: %q", c.Reason, c.Message)
	}
	for i := 0; i < 20; i++ {
		name, sub, err := greeting(addr(ip, 3690), "first.example")
		if err != nil || name != "app" || sub != "first.example" {
			t.Fatalf("with a garbage Secret, connection %d: %q %q %v", i, name, sub, err)
		}
	}
	condition(t, ns, "site", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)

	fresh := certData(t, "second.example")
	if err := cluster.client.Get(ctxFor(t), client.ObjectKeyFromObject(secret), secret); err != nil {
		t.Fatal(err)
	}
	secret.Data = fresh
	if err := cluster.client.Update(ctxFor(t), secret); err != nil {
		t.Fatal(err)
	}
	contextCondition(t, ns, "ctx", v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue)
	eventually(t, 30*time.Second, "the new certificate is served", func() error {
		_, sub, err := greeting(addr(ip, 3690), "second.example")
		if err != nil || sub != "second.example" {
			return fmt.Errorf("served %q (%v)", sub, err)
		}
		return nil
	})
}
