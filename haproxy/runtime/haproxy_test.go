package runtime_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/runtime"
)

// haproxy runs a real HAProxy with cfg (where {{DIR}} is a fresh
// directory, also $DIR in HAProxy's environment) and returns a client for
// its stats socket {{DIR}}/s.sock and the directory.
func haproxy(t *testing.T, cfg string) (*runtime.Client, string) { return haproxyB(t, cfg) }

// haproxyB is haproxy for tests and benchmarks.
func haproxyB(t testing.TB, cfg string) (*runtime.Client, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "tcpm-rt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg = "global\n    stats socket {{DIR}}/s.sock mode 600 level admin\n" + cfg
	cfg = strings.ReplaceAll(cfg, "{{DIR}}", dir)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dataplanetest.HAProxyBinary(t), "-db", "-f", path)
	cmd.Env = append(os.Environ(), "DIR="+dir)
	out, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); out.Close() })
	c := runtime.New(filepath.Join(dir, "s.sock"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Info(context.Background()); err == nil {
			return c, dir
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(out.Name())
			t.Fatalf("haproxy did not answer on its stats socket:\n%s", log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const defaults = `defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s
`

func TestServerCommandsAgainstHAProxy(t *testing.T) {
	port := dataplanetest.FreePort(t, "127.0.0.1")
	c, _ := haproxy(t, defaults+fmt.Sprintf(`frontend fe
    bind 127.0.0.1:%d
    default_backend be
backend be
    balance roundrobin
    server a 127.0.0.1:1 weight 10
    server b 127.0.0.1:2 weight 10 check inter 1h agent-check agent-port 9 agent-inter 1h
backend st
    balance static-rr
    server a 127.0.0.1:1
`, port))
	ctx := context.Background()

	if err := c.SetServerWeight(ctx, "be", "a", "50"); err != nil {
		t.Fatal(err)
	}
	if cur, initial, err := c.ServerWeight(ctx, "be", "a"); err != nil || cur != 50 || initial != 10 {
		t.Errorf("weight %d (initial %d), %v; want 50 (initial 10)", cur, initial, err)
	}
	if err := c.SetServerAddr(ctx, "be", "a", "127.0.0.2", 7); err != nil {
		t.Fatal(err)
	}
	if err := c.SetServerAddr(ctx, "be", "a", "127.0.0.2", 7); err != nil {
		t.Errorf("setting the same address again: %v", err)
	}
	if err := c.SetServerState(ctx, "be", "a", runtime.StateDrain); err != nil {
		t.Fatal(err)
	}
	if err := c.SetServerCheckPort(ctx, "be", "b", 99); err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { return c.SetServerAgentAddr(ctx, "be", "b", "127.0.0.3") },
		func() error { return c.SetServerAgentSend(ctx, "be", "b", "hello") },
		func() error { return c.DisableAgentCheck(ctx, "be", "b") },
		func() error { return c.EnableAgentCheck(ctx, "be", "b") },
		func() error { return c.SetFrontendMaxConn(ctx, "fe", 100) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	st, err := c.ServersState(ctx, "be")
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 {
		t.Fatalf("servers %+v", st)
	}
	a := st[0]
	if a.Name != "a" || a.Addr != "127.0.0.2" || a.Port != 7 || a.UserWeight != 50 || a.Admin() != "drain" {
		t.Errorf("server a is %+v; want 127.0.0.2:7, weight 50, drain", a)
	}
	if b := st[1]; b.CheckPort != 99 || b.AgentAddr != "127.0.0.3" {
		t.Errorf("server b is %+v; want check port 99, agent address 127.0.0.3", b)
	}

	// HAProxy's refusals come back as errors naming the command.
	for name, c := range map[string]struct {
		err  error
		kind error
		says string
	}{
		"unknown backend":       {c.SetServerWeight(ctx, "nope", "a", "1"), runtime.ErrNotFound, "No such backend."},
		"unknown server":        {c.SetServerState(ctx, "be", "zz", "maint"), runtime.ErrNotFound, "No such server."},
		"unknown frontend":      {c.SetFrontendMaxConn(ctx, "nope", 1), runtime.ErrNotFound, "No such frontend."},
		"unknown backend state": {errOf(c.ServersState(ctx, "nope")), runtime.ErrNotFound, "Can't find backend."},
		"invalid address":       {c.SetServerAddr(ctx, "be", "a", "bogus", 0), nil, "Invalid addr"},
		"static weight":         {c.SetServerWeight(ctx, "st", "a", "20"), nil, "static LB algorithm"},
		"check port, no checks": {c.SetServerCheckPort(ctx, "be", "a", 99), nil, "health checks are not enabled"},
		"agent not configured":  {c.EnableAgentCheck(ctx, "be", "a"), nil, "Agent was not configured"},
	} {
		var ce *runtime.CommandError
		if !errors.As(c.err, &ce) || !strings.Contains(ce.Message, c.says) {
			t.Errorf("%s: got %v; want HAProxy's %q", name, c.err, c.says)
			continue
		}
		if c.kind != nil && !errors.Is(c.err, c.kind) {
			t.Errorf("%s: %v does not match %v", name, c.err, c.kind)
		}
	}
	info, err := c.Info(ctx)
	if err != nil || !strings.HasPrefix(info["Version"], "2.") {
		t.Errorf("info %v, %v", info["Version"], err)
	}
	rows, err := c.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rows {
		if r["pxname"] == "be" && r["svname"] == "a" && r["weight"] == "50" {
			found = true
		}
	}
	if !found {
		t.Errorf("show stat has no row for be/a with weight 50: %v", rows)
	}
}

func errOf[T any](_ T, err error) error { return err }

// TestDynamicServerTakesTrafficThenIsRemovedWithItsConnections adds a
// server at runtime to an empty backend, sees it serve, then removes it
// while a connection is open: the connection is closed and new ones no
// longer reach it.
func TestDynamicServerTakesTrafficThenIsRemovedWithItsConnections(t *testing.T) {
	port := dataplanetest.FreePort(t, "127.0.0.1")
	c, _ := haproxy(t, defaults+fmt.Sprintf(`frontend fe
    bind 127.0.0.1:%d
    default_backend be
backend be
    balance roundrobin
`, port))
	ctx := context.Background()
	front := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	b := dataplanetest.StartBackend(t, "dynamic", "127.0.0.1")

	if err := c.AddServer(ctx, "be", "d1", []string{b.Addr.String(), "weight", "10", "check", "inter", "100ms"}); err != nil {
		t.Fatal(err)
	}
	s, err := c.ServerState(ctx, "be", "d1")
	if err != nil || s.Admin() != runtime.StateMaint {
		t.Fatalf("new server %+v, %v; HAProxy creates dynamic servers in maintenance", s, err)
	}
	if err := c.AddServer(ctx, "be", "d1", []string{b.Addr.String()}); !errors.Is(err, runtime.ErrExists) {
		t.Errorf("adding d1 twice: %v; want ErrExists", err)
	}
	if err := c.AddServer(ctx, "nope", "d1", []string{b.Addr.String()}); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("adding to an unknown backend: %v; want ErrNotFound", err)
	}
	if err := c.AddServer(ctx, "be", "d2", []string{b.Addr.String(), "bogus-keyword"}); err == nil || !strings.Contains(err.Error(), "bogus-keyword") {
		t.Errorf("an unknown keyword: %v; want HAProxy's refusal", err)
	}
	if _, err := dataplanetest.Greeting(front); err == nil {
		t.Fatal("a server in maintenance took a connection")
	}
	if err := c.EnableHealthCheck(ctx, "be", "d1"); err != nil {
		t.Fatal(err)
	}
	if err := c.EnableServer(ctx, "be", "d1"); err != nil {
		t.Fatal(err)
	}
	dataplanetest.Eventually(t, 5*time.Second, "the added server serves", func() bool {
		got, err := dataplanetest.Greeting(front)
		return err == nil && got == "dynamic"
	})

	// A connection in progress.
	conn, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if line, err := r.ReadString('\n'); err != nil || line != "dynamic\n" {
		t.Fatalf("greeting %q, %v", line, err)
	}
	if err := c.DeleteServer(ctx, "be", "d1"); err == nil || !strings.Contains(err.Error(), "maintenance") {
		t.Errorf("deleting a serving server: %v; want HAProxy's refusal", err)
	}
	if err := c.SetServerState(ctx, "be", "d1", runtime.StateMaint); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteServer(ctx, "be", "d1"); !errors.Is(err, runtime.ErrStillConnected) {
		t.Errorf("deleting a server with a connection: %v; want ErrStillConnected", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.RemoveServer(rctx, "be", "d1"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Error("the removed server's connection is still open")
	}
	if _, err := c.ServerState(ctx, "be", "d1"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("removed server still listed: %v", err)
	}
	if got, err := dataplanetest.Greeting(front); err == nil {
		t.Errorf("a connection reached %q after the removal", got)
	}
	if err := c.RemoveServer(ctx, "be", "d1"); err != nil {
		t.Errorf("removing it again: %v; want nil", err)
	}
}

// TestMapEntriesRouteBySNI routes TLS connections by SNI through a map
// changed at runtime, as the SNI frontends do.
func TestMapEntriesRouteBySNI(t *testing.T) {
	port := dataplanetest.FreePort(t, "127.0.0.1")
	a := dataplanetest.StartBackend(t, "a", "127.0.0.1")
	b := dataplanetest.StartBackend(t, "b", "127.0.0.1")
	def := dataplanetest.StartBackend(t, "default", "127.0.0.1")
	dir, err := os.MkdirTemp("", "tcpm-map-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	mapFile := filepath.Join(dir, "sni.map")
	if err := os.WriteFile(mapFile, []byte("a.example be_a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := haproxy(t, defaults+fmt.Sprintf(`frontend fe
    bind 127.0.0.1:%d
    tcp-request inspect-delay 2s
    tcp-request content accept if { req.ssl_hello_type 1 }
    use_backend %%[req.ssl_sni,lower,map("%s",be_default)]
backend be_a
    server a %s
backend be_b
    server b %s
backend be_default
    server d %s
`, port, mapFile, a.Addr, b.Addr, def.Addr))
	ctx := context.Background()
	front := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	route := func(sni string) string {
		got, err := dataplanetest.SNIGreeting(front, dataplanetest.ClientHello(t, sni))
		if err != nil {
			return err.Error()
		}
		return got
	}
	if got := route("b.example"); got != "default" {
		t.Fatalf("b.example went to %q before its entry", got)
	}
	if err := c.AddMapEntry(ctx, mapFile, "b.example", "be_b"); err != nil {
		t.Fatal(err)
	}
	if got := route("b.example"); got != "b" {
		t.Errorf("b.example went to %q; want b", got)
	}
	if err := c.SetMapEntry(ctx, mapFile, "a.example", "be_b"); err != nil {
		t.Fatal(err)
	}
	if got := route("A.example"); got != "b" {
		t.Errorf("A.example went to %q after set map; want b", got)
	}
	if err := c.DeleteMapEntry(ctx, mapFile, "b.example"); err != nil {
		t.Fatal(err)
	}
	if got := route("b.example"); got != "default" {
		t.Errorf("b.example went to %q after del map; want default", got)
	}
	if err := c.AddMapEntries(ctx, mapFile, []runtime.MapEntry{{Key: "c.example", Value: "be_a"}, {Key: "d.example", Value: "be_b"}}); err != nil {
		t.Fatal(err)
	}
	if got := route("d.example"); got != "b" {
		t.Errorf("d.example went to %q; want b", got)
	}
	entries, err := c.MapEntries(ctx, mapFile)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range entries {
		keys = append(keys, e.Key+"="+e.Value)
	}
	if got := strings.Join(keys, " "); got != "a.example=be_b c.example=be_a d.example=be_b" {
		t.Errorf("entries %s", got)
	}
	if e, found, err := c.MapEntry(ctx, mapFile, "c.example"); err != nil || !found || e.Value != "be_a" {
		t.Errorf("entry c.example: %+v %v %v", e, found, err)
	}
	maps, err := c.Maps(ctx)
	if err != nil || len(maps) != 1 || maps[0].File != mapFile {
		t.Errorf("maps %+v, %v; want %s", maps, err, mapFile)
	}
	for name, err := range map[string]error{
		"set a missing key":     c.SetMapEntry(ctx, mapFile, "zz.example", "be_a"),
		"delete a missing key":  c.DeleteMapEntry(ctx, mapFile, "zz.example"),
		"an unknown map":        c.AddMapEntry(ctx, filepath.Join(dir, "nope.map"), "k", "v"),
		"entries of a lost map": errOf(c.MapEntries(ctx, filepath.Join(dir, "nope.map"))),
	} {
		if !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("%s: %v; want ErrNotFound", name, err)
		}
	}
	if err := c.ClearMap(ctx, mapFile); err != nil {
		t.Fatal(err)
	}
	if got := route("a.example"); got != "default" {
		t.Errorf("a.example went to %q after clear map; want default", got)
	}
}

// TestCertificateSwapAtRuntime replaces a loaded certificate: new
// handshakes see the new one; a bad PEM is refused and leaves no
// transaction open.
func TestCertificateSwapAtRuntime(t *testing.T) {
	port := dataplanetest.FreePort(t, "127.0.0.1")
	dir, err := os.MkdirTemp("", "tcpm-crt-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	crt := filepath.Join(dir, "a.pem")
	if err := os.WriteFile(crt, dataplanetest.SelfSigned(t, "old.example"), 0o600); err != nil {
		t.Fatal(err)
	}
	back := dataplanetest.StartBackend(t, "x", "127.0.0.1")
	c, _ := haproxy(t, defaults+fmt.Sprintf(`frontend fe
    bind 127.0.0.1:%d ssl crt %s
    default_backend be
backend be
    server x %s
`, port, crt, back.Addr))
	ctx := context.Background()
	if err := c.UpdateCert(ctx, crt, string(dataplanetest.SelfSigned(t, "new.example"))); err != nil {
		t.Fatal(err)
	}
	if cn := servedCN(t, port); cn != "new.example" {
		t.Errorf("served %q after the swap; want new.example", cn)
	}
	err = c.UpdateCert(ctx, crt, "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
	if err == nil || !strings.Contains(err.Error(), "set ssl cert") {
		t.Errorf("a bad PEM: %v; want HAProxy's refusal naming the command", err)
	}
	if err := c.AbortCert(ctx, crt); err == nil {
		t.Error("a transaction was left open after a refused PEM")
	}
	if err := c.UpdateCert(ctx, filepath.Join(dir, "other.pem"), string(dataplanetest.SelfSigned(t, "x"))); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("a file the configuration does not load: %v; want ErrNotFound", err)
	}
}

// servedCN is the common name of the certificate HAProxy serves on port.
func servedCN(t *testing.T, port int) string {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp",
		net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the served certificate only
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// BenchmarkMapEntryAddAndLookup measures one runtime map change (add,
// then the existence check the dataplane makes) against a map of 5,000
// entries.
func BenchmarkMapEntryAddAndLookup(b *testing.B) {
	dir, err := os.MkdirTemp("", "tcpm-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var content strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&content, "h%d.example be\n", i)
	}
	mapFile := filepath.Join(dir, "sni.map")
	if err := os.WriteFile(mapFile, []byte(content.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	c, _ := haproxyB(b, defaults+fmt.Sprintf(`frontend fe
    bind 127.0.0.1:%d
    use_backend %%[req.ssl_sni,lower,map("%s",be)]
backend be
`, dataplanetest.FreePort(b, "127.0.0.1"), mapFile))
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		key := fmt.Sprintf("new%d.example", i)
		if _, found, err := c.MapEntry(ctx, mapFile, key); err != nil || found {
			b.Fatal(found, err)
		}
		if err := c.AddMapEntry(ctx, mapFile, key, "be"); err != nil {
			b.Fatal(err)
		}
	}
}
