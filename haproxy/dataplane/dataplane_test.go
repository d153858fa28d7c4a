package dataplane_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
)

// testGlobals are the global and defaults sections every test
// configuration starts with.
const testGlobals = `global
    presetenv TCPM_RUN_DIR /var/run/haproxy-tcp
    crt-base "${TCPM_CERT_DIR}"
    stats socket "${TCPM_RUN_DIR}/haproxy.sock" mode 600 level admin expose-fd listeners
    hard-stop-after 2m
defaults
    mode tcp
    timeout connect 5s
    timeout client 2m
    timeout server 2m
`

func relayConfig(port int, backend *dataplanetest.Backend, extraFrontends int) []byte {
	var b strings.Builder
	b.WriteString(testGlobals)
	fmt.Fprintf(&b, `frontend fe
    bind "${TCPM_BIND_ADDR}:%d"
    default_backend be
backend be
    server s1 %s
`, port, backend.Addr)
	for i := 0; i < extraFrontends; i++ {
		fmt.Fprintf(&b, "frontend extra-%d\n    bind \"unix@${TCPM_RUN_DIR}/extra-%d.sock\"\n    default_backend be\n", i, i)
	}
	return []byte(b.String())
}

func push(t *testing.T, c *client.Client, cfg []byte) client.PushResult {
	t.Helper()
	ctx := context.Background()
	v, err := c.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.PushConfiguration(ctx, cfg, client.Push{Version: v, ForceReload: true})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRequestsWithoutCredentialsGet401AndChangeNothing(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	ctx := context.Background()
	before, _, err := inst.Client.RawConfiguration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + inst.Server.Addr() + "/v2/services/haproxy/configuration/raw?skip_version=true&force_reload=true"
	for name, auth := range map[string]func(*http.Request){
		"no credentials":   func(*http.Request) {},
		"wrong password":   func(r *http.Request) { r.SetBasicAuth(dataplanetest.User, "wrong") },
		"wrong user":       func(r *http.Request) { r.SetBasicAuth("root", dataplanetest.Password) },
		"empty basic auth": func(r *http.Request) { r.SetBasicAuth("", "") },
	} {
		req, _ := http.NewRequest(http.MethodPost, base, strings.NewReader("global\n"))
		auth(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, resp.StatusCode)
		}
	}
	after, _, err := inst.Client.RawConfiguration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before != after {
		t.Error("an unauthenticated request changed the configuration")
	}
}

func TestInvalidConfigurationIsRefusedAndTrafficKeepsFlowing(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	backend := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	port := dataplanetest.FreePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ctx := context.Background()

	push(t, inst.Client, relayConfig(port, backend, 0))
	if got, err := dataplanetest.Greeting(addr); err != nil || got != "app" {
		t.Fatalf("before: greeting %q, %v", got, err)
	}
	stored, version, _ := inst.Client.RawConfiguration(ctx)

	bad := append(relayConfig(port, backend, 0), []byte("backend be2\n    server s2 127.0.0.1:1 weight 999\n")...)
	_, err := inst.Client.PushConfiguration(ctx, bad, client.Push{Version: version, ForceReload: true})
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Fatalf("invalid configuration: err %v, want a 400", err)
	}
	if !strings.Contains(apiErr.Message, "weight") || !strings.Contains(apiErr.Message, "ALERT") {
		t.Errorf("the refusal does not carry HAProxy's message: %s", apiErr.Message)
	}
	if now, v, _ := inst.Client.RawConfiguration(ctx); now != stored || v != version {
		t.Error("a refused configuration replaced the stored one")
	}
	if got, err := dataplanetest.Greeting(addr); err != nil || got != "app" {
		t.Errorf("after the refusal: greeting %q, %v", got, err)
	}

	other := dataplanetest.StartBackend(t, "other", "127.0.0.1")
	push(t, inst.Client, relayConfig(port, other, 0))
	if got, err := dataplanetest.Greeting(addr); err != nil || got != "other" {
		t.Errorf("the next valid configuration: greeting %q, %v", got, err)
	}
}

func TestVersionMismatchIsAConflict(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	backend := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	ctx := context.Background()
	v, _ := inst.Client.Version(ctx)
	_, err := inst.Client.PushConfiguration(ctx, relayConfig(dataplanetest.FreePort(t, "127.0.0.1"), backend, 0), client.Push{Version: v + 5})
	if !errors.Is(err, client.ErrVersionConflict) {
		t.Errorf("push against a stale version: %v, want a version conflict", err)
	}
}

// TestStructuralAppliesUnderLoadDropNothing reloads 20 times while a
// client opens connections continuously; none may fail, and a connection
// opened before the first reload still echoes after the last.
func TestStructuralAppliesUnderLoadDropNothing(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	backend := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	port := dataplanetest.FreePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	push(t, inst.Client, relayConfig(port, backend, 0))

	long, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	greet := make([]byte, 4)
	if _, err := io.ReadFull(long, greet); err != nil {
		t.Fatal(err)
	}

	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(8 * time.Millisecond) // up to 1,000 connections/s over eight workers
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if name, err := dataplanetest.Greeting(addr); err != nil || name != "app" {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	start := time.Now()
	for i := 1; i <= 20; i++ {
		push(t, inst.Client, relayConfig(port, backend, i)) // a new frontend each time: structural
	}
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()

	if failed.Load() != 0 {
		t.Errorf("%d of %d connections failed during 20 reloads", failed.Load(), ok.Load()+failed.Load())
	}
	rate := float64(ok.Load()+failed.Load()) / elapsed.Seconds()
	t.Logf("%d connections in %s (%.0f/s) across 20 reloads", ok.Load(), elapsed.Round(time.Millisecond), rate)

	assertEchoes(t, long, "the connection opened before the reloads")
}

// assertEchoes checks that an established connection still relays both
// ways.
func assertEchoes(t *testing.T, conn net.Conn, what string) {
	t.Helper()
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	echo := make([]byte, 5)
	if _, err := io.ReadFull(conn, echo); err != nil || string(echo) != "ping\n" {
		t.Errorf("%s: echo %q, %v", what, echo, err)
	}
}

func servedSubject(t *testing.T, addr string) (string, *tls.Conn) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "app.example.com"})
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, conn
}

// TestReplacedCertificateIsServedWithoutDroppingConnections uploads a
// certificate through storage, serves it, then replaces it: new
// connections see the new one and an established one keeps working.
func TestReplacedCertificateIsServedWithoutDroppingConnections(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	backend := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	port := dataplanetest.FreePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ctx := context.Background()

	if err := inst.Client.CreateCertificate(ctx, "app.pem", dataplanetest.SelfSigned(t, "first.example.com")); err != nil {
		t.Fatal(err)
	}
	cfg := testGlobals + fmt.Sprintf(`frontend fe
    bind "${TCPM_BIND_ADDR}:%d" ssl crt app.pem
    default_backend be
backend be
    server s1 %s
`, port, backend.Addr)
	push(t, inst.Client, []byte(cfg))
	subject, established := servedSubject(t, addr)
	defer established.Close()
	if subject != "first.example.com" {
		t.Fatalf("served subject %q, want first.example.com", subject)
	}
	line := make([]byte, 4)
	if _, err := io.ReadFull(established, line); err != nil || string(line) != "app\n" {
		t.Fatalf("greeting over TLS: %q, %v", line, err)
	}
	reloadsAfterPush := func() int { n, _ := inst.Server.ReloadCount(); return n }()

	if err := inst.Client.ReplaceCertificate(ctx, "app.pem", dataplanetest.SelfSigned(t, "second.example.com")); err != nil {
		t.Fatal(err)
	}
	subject, fresh := servedSubject(t, addr)
	fresh.Close()
	if subject != "second.example.com" {
		t.Errorf("after replacing: served subject %q, want second.example.com", subject)
	}
	if n, _ := inst.Server.ReloadCount(); n != reloadsAfterPush {
		t.Errorf("replacing the certificate reloaded HAProxy (%d → %d)", reloadsAfterPush, n)
	}
	assertEchoes(t, established, "the established TLS connection after the replacement")
	certs, err := inst.Client.Certificates(ctx)
	if err != nil || len(certs) != 1 || !strings.Contains(certs[0].Subject, "second.example.com") {
		t.Errorf("storage lists %+v, %v", certs, err)
	}
}

// TestQueuedReloadsCoalesce: configurations pushed without force_reload
// inside the reload delay share one reload, reported by the reloads
// endpoint, and the last one is what runs.
func TestQueuedReloadsCoalesce(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1", func(o *dataplane.Options) { o.ReloadDelay = 4 * time.Second })
	backend := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	port := dataplanetest.FreePort(t, "127.0.0.1")
	ctx := context.Background()
	before, err := inst.Server.ReloadCount()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for i := 0; i < 5; i++ {
		v, err := inst.Client.Version(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res, err := inst.Client.PushConfiguration(ctx, relayConfig(port, backend, i), client.Push{Version: v})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != http.StatusAccepted || res.ReloadID == "" {
			t.Fatalf("push %d: status %d, reload %q; want 202 with a Reload-ID", i, res.Status, res.ReloadID)
		}
		ids[res.ReloadID] = true
	}
	if len(ids) != 1 {
		t.Errorf("five queued pushes got reloads %v, want one shared reload", ids)
	}
	for id := range ids {
		dataplanetest.Eventually(t, 10*time.Second, "the queued reload succeeds", func() bool {
			rl, err := inst.Client.Reload(ctx, id)
			return err == nil && rl.Status == "succeeded"
		})
	}
	if after, _ := inst.Server.ReloadCount(); after != before+1 {
		t.Errorf("HAProxy reloaded %d times for five queued pushes, want 1", after-before)
	}
	if got, err := dataplanetest.Greeting(net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil || got != "app" {
		t.Errorf("after the coalesced reload: %q, %v", got, err)
	}
}
