package render_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/render"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// closedWithin reads from c until the peer closes it or limit passes, and
// says how long the peer took; ok is false when it was still open.
func closedWithin(c net.Conn, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, false
			}
			return time.Since(start), true
		}
	}
}

// TestASilentClientIsClosedWithinTheHandshakeBound runs Debian's HAProxy
// with a 1s handshake bound: a client that sends no ClientHello, or no
// TLS at all, is closed within it, while a routed connection, idle as
// long, stays open because the backend's tunnel timeout took over.
func TestASilentClientIsClosedWithinTheHandshakeBound(t *testing.T) {
	const bound = time.Second
	backend := dataplanetest.StartBackend(t, "upstream", "127.0.0.1")
	ports := map[string]int{}
	for _, n := range []string{"relay", "sni", "terminate"} {
		ports[n] = dataplanetest.FreePort(t, "127.0.0.1")
	}
	objs, err := snapshot.ReadPaths([]string{"../translate/testdata/common"})
	if err != nil {
		t.Fatal(err)
	}
	objs.HAProxies = []v1alpha1.HAProxy{{
		ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "default"},
		Spec: v1alpha1.HAProxySpec{
			Stats:    v1alpha1.StatsSpec{Enabled: ptr.To(false)},
			Timeouts: &v1alpha1.TimeoutsSpec{Handshake: &metav1.Duration{Duration: bound}},
		},
	}}
	s := objs.ForEachHAProxy()[0]
	upstream := backend.Addr.String()
	s.TLSContexts = []v1alpha1.TLSContext{{
		ObjectMeta: metav1.ObjectMeta{Name: "site", Namespace: "default"},
		Spec:       v1alpha1.TLSContextSpec{Secret: "some-context-cert"},
	}}
	mappingOn := func(name string, spec v1alpha1.TCPMappingSpec) *v1alpha1.TCPMapping {
		spec.Port, spec.Service = int32(ports[name]), upstream
		return &v1alpha1.TCPMapping{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: spec}
	}
	s.TCPMappings = []*v1alpha1.TCPMapping{
		mappingOn("relay", v1alpha1.TCPMappingSpec{}),
		mappingOn("sni", v1alpha1.TCPMappingSpec{Host: "a.example.com"}),
		mappingOn("terminate", v1alpha1.TCPMappingSpec{TLS: "site"}),
	}
	res := translate.Translate(s)
	for _, m := range res.Mappings {
		if !m.Programmable() {
			t.Fatalf("mapping %s not programmable: %+v", m.Name, m)
		}
	}
	text, err := render.Config(res.Config)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, pem := range certificates(res.Config) {
		if err := os.WriteFile(filepath.Join(certDir, name), pem, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mapDir := filepath.Join(dir, "maps")
	if err := os.Mkdir(mapDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range maps(res.Config) {
		if err := os.WriteFile(filepath.Join(mapDir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, text, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dataplanetest.HAProxyBinary(t), "-db", "-f", cfgPath)
	cmd.Env = append(os.Environ(), "TCPM_BIND_ADDR=127.0.0.1", "TCPM_CERT_DIR="+certDir, "TCPM_RUN_DIR="+dir, "TCPM_MAP_DIR="+mapDir)
	out, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(out.Name())
			t.Logf("haproxy output:\n%s", log)
		}
	})
	addr := func(name string) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[name])) }
	dataplanetest.Eventually(t, 10*time.Second, "HAProxy relays", func() bool {
		g, err := dataplanetest.Greeting(addr("relay"))
		return err == nil && g == "upstream"
	})
	dial := func(name string) net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr(name), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	expectClosed := func(what string, c net.Conn, min time.Duration) {
		t.Helper()
		took, closed := closedWithin(c, 3*bound)
		switch {
		case !closed:
			t.Errorf("%s: still open after %s", what, 3*bound)
		case took < min || took > bound+500*time.Millisecond:
			t.Errorf("%s: closed after %s, want between %s and about %s", what, took, min, bound)
		}
	}

	expectClosed("an SNI port client that sends no ClientHello", dial("sni"), bound-200*time.Millisecond)
	expectClosed("a terminating port client that sends no ClientHello", dial("terminate"), bound-200*time.Millisecond)
	notTLS := dial("sni")
	if _, err := notTLS.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	expectClosed("an SNI port client that does not speak TLS", notTLS, 0)

	relay := dial("relay")
	if line, err := bufio.NewReader(relay).ReadString('\n'); err != nil || line != "upstream\n" {
		t.Fatalf("relay greeting %q, %v", line, err)
	}
	if took, closed := closedWithin(relay, 2*bound); closed {
		t.Errorf("a routed cleartext connection idle for %s was closed after %s", 2*bound, took)
	}

	terminated := tls.Client(dial("terminate"), &tls.Config{InsecureSkipVerify: true, ServerName: "host1"})
	if line, err := bufio.NewReader(terminated).ReadString('\n'); err != nil || line != "upstream\n" {
		t.Fatalf("terminated greeting %q, %v", line, err)
	}
	if took, closed := closedWithin(terminated, 2*bound); closed {
		t.Errorf("a terminated connection idle for %s after its handshake was closed after %s", 2*bound, took)
	}
}
