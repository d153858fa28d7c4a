// Package dataplanetest starts real dataplanes (with real haproxy) and
// loopback backends for tests, the way net/http/httptest starts servers.
package dataplanetest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane"
)

// Credentials every test dataplane requires.
const (
	User     = "admin"
	Password = "test-password"
)

// Instance is a running dataplane with its haproxy.
type Instance struct {
	Server  *dataplane.Server
	Client  *client.Client
	CertDir string
	// Dir holds haproxy.cfg; RunDir HAProxy's sockets (haproxy.sock is
	// the runtime API).
	Dir, RunDir string
	// URL is the API's base URL (http://host:port, https:// when the
	// options gave a certificate).
	URL string
}

// Transport carries the HTTP requests of the clients Start returns; nil
// is http.DefaultTransport. A test package may wrap it, e.g. to check
// every answer against the API specification.
var Transport http.RoundTripper

// HTTPClient is an HTTP client over Transport.
func HTTPClient() *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: Transport}
}

// HAProxyBinary finds Debian's haproxy (or $HAPROXY_BIN); make test
// installs it.
func HAProxyBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("HAPROXY_BIN"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy"
	}
	p, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy not found: run make test, which installs it")
	}
	return p
}

// Start runs a dataplane whose haproxy binds unaddressed listeners to
// bindAddr (a loopback address); options may change its settings.
func Start(t testing.TB, bindAddr string, options ...func(*dataplane.Options)) *Instance {
	t.Helper()
	dir := t.TempDir()
	// UNIX socket paths are limited to about 100 bytes; keep them short.
	runDir, err := os.MkdirTemp("", "tcpm-run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	ctx, cancel := context.WithCancel(context.Background())
	opt := dataplane.Options{
		Listen:      "127.0.0.1:0",
		HAProxy:     HAProxyBinary(t),
		Dir:         dir,
		RunDir:      runDir,
		CertDir:     filepath.Join(dir, "certs"),
		BindAddr:    bindAddr,
		User:        User,
		Password:    Password,
		ReloadDelay: 100 * time.Millisecond,
		HAProxyLog:  io.Discard,
	}
	for _, o := range options {
		o(&opt)
	}
	srv, err := dataplane.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopCtx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		srv.Stop(stopCtx)
		cancel()
	})
	scheme := "http://"
	if opt.TLSCert != "" {
		// Client then needs a transport trusting the test's CA: see
		// TLSClient.
		scheme = "https://"
	}
	return &Instance{
		Server:  srv,
		Client:  client.New(scheme+srv.Addr(), User, Password, HTTPClient()),
		CertDir: opt.CertDir,
		Dir:     opt.Dir,
		RunDir:  opt.RunDir,
		URL:     scheme + srv.Addr(),
	}
}

// Runtime sends one command to the instance's runtime API (the stats
// socket) and returns HAProxy's answer.
func (i *Instance) Runtime(t testing.TB, command string) string {
	t.Helper()
	c, err := net.DialTimeout("unix", filepath.Join(i.RunDir, "haproxy.sock"), 2*time.Second)
	if err != nil {
		t.Fatalf("runtime API: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		t.Fatalf("runtime API: %v", err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("runtime API: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// handedOut remembers every port FreePort returned in this process: the
// kernel may hand the same ephemeral port to two listeners opened and closed
// one after the other, and two mappings given the same "free" port collide.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a TCP port free on addr right now and never returned
// before in this test process.
func FreePort(t testing.TB, addr string) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		handedOut.Lock()
		seen := handedOut.ports[port]
		handedOut.ports[port] = true
		handedOut.Unlock()
		if !seen {
			return port
		}
	}
	t.Fatal("no fresh free port after 100 tries")
	return 0
}

// Backend is a TCP server on loopback that greets each connection with its
// name and a newline, then echoes what it reads.
type Backend struct {
	Name string
	Addr *net.TCPAddr
	ln   net.Listener
	wg   sync.WaitGroup
}

// StartBackend listens on addr:0 (addr a loopback address).
func StartBackend(t testing.TB, name, addr string) *Backend {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	b := &Backend{Name: name, Addr: ln.Addr().(*net.TCPAddr), ln: ln}
	b.wg.Add(1)
	go func() { defer b.wg.Done(); ServeGreeting(ln, name) }()
	t.Cleanup(func() { ln.Close(); b.wg.Wait() })
	return b
}

// ServeGreeting greets each connection on ln with name and a newline, then
// echoes what it reads, until ln is closed. Tests and the local cluster's
// demo backends speak this.
func ServeGreeting(ln net.Listener, name string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if _, err := fmt.Fprintf(c, "%s\n", name); err != nil {
				return
			}
			_, _ = io.Copy(c, c)
		}()
	}
}

// Greeting connects to addr and returns the first line the backend sent.
func Greeting(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// Split opens n connections to addr and counts which backend greeted
// each; failed connections count under "".
func Split(addr string, n int) map[string]int {
	out := map[string]int{}
	for i := 0; i < n; i++ {
		name, err := Greeting(addr)
		if err != nil {
			name = ""
		}
		out[name]++
	}
	return out
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SelfSigned is a PEM file holding a fresh self-signed certificate for cn
// and its key, as certificate storage takes it.
func SelfSigned(t testing.TB, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})...)
}

// ClientHello is the first TLS record a client sends for server name sni:
// what HAProxy's req.ssl_sni reads. Tests send it to a frontend that
// routes by SNI towards plain greeting backends.
func ClientHello(t testing.TB, sni string) []byte {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	go func() {
		tc := tls.Client(client, &tls.Config{ServerName: sni, InsecureSkipVerify: true}) //nolint:gosec // never completes; only its hello is read
		_ = tc.Handshake()
		client.Close()
	}()
	_ = server.SetDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(server, hdr); err != nil {
		t.Fatalf("client hello: %v", err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(server, body); err != nil {
		t.Fatalf("client hello: %v", err)
	}
	return append(hdr, body...)
}

// SNIGreeting sends hello (ClientHello) to addr and returns the first
// line the backend HAProxy chose sent back.
func SNIGreeting(addr string, hello []byte) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(hello); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}
