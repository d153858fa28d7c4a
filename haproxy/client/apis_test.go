package client_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxytech/client-native/v5/models"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
)

func TestMain(m *testing.M) {
	dataplanetest.RunReloadHelper()
	os.Exit(m.Run())
}

// api is a Data Plane API the runtime methods run against: this
// project's dataplane, or the official dataplaneapi when DATAPLANEAPI_BIN
// names its binary.
type api struct {
	c *client.Client
	// globals is the start of every configuration pushed to it: its own
	// runtime socket.
	globals string
	// bindAddr is where frontends listen.
	bindAddr string
	// shutsSessions: DELETE runtime/servers ends the server's connections.
	shutsSessions bool
}

func apis(t *testing.T) map[string]func(t *testing.T) api {
	out := map[string]func(t *testing.T) api{
		"dataplane": func(t *testing.T) api {
			inst := dataplanetest.Start(t, "127.0.0.1")
			return api{c: inst.Client, bindAddr: "${TCPM_BIND_ADDR}", shutsSessions: true, globals: `global
    presetenv TCPM_RUN_DIR /var/run/haproxy-tcp
    stats socket "${TCPM_RUN_DIR}/haproxy.sock" mode 600 level admin expose-fd listeners
`}
		},
	}
	if bin := os.Getenv("DATAPLANEAPI_BIN"); bin != "" {
		out["official"] = func(t *testing.T) api {
			o := dataplanetest.StartOfficial(t, bin)
			return api{c: o.Client, bindAddr: "127.0.0.1", globals: fmt.Sprintf(`global
    master-worker
    stats socket %s/run/haproxy.sock mode 600 level admin expose-fd listeners
`, o.Dir)}
		}
	} else {
		t.Log("DATAPLANEAPI_BIN is not set: only this project's dataplane is tested")
	}
	return out
}

const apiDefaults = `defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
`

func pushNow(t *testing.T, c *client.Client, cfg string) {
	t.Helper()
	ctx := context.Background()
	v, err := c.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PushConfiguration(ctx, []byte(cfg), client.Push{Version: v, ForceReload: true}); err != nil {
		t.Fatal(err)
	}
}

// TestRuntimeServersOnEveryAPI adds a server at runtime through
// AddRuntimeServer and removes it through DeleteRuntimeServer: it serves
// in between, and not after.
func TestRuntimeServersOnEveryAPI(t *testing.T) {
	for name, start := range apis(t) {
		t.Run(name, func(t *testing.T) {
			a := start(t)
			ctx := context.Background()
			port := dataplanetest.FreePort(t, "127.0.0.1")
			pushNow(t, a.c, a.globals+apiDefaults+fmt.Sprintf(`frontend fe
    bind %s:%d
    default_backend be
backend be
    balance roundrobin
`, a.bindAddr, port))
			app := dataplanetest.StartBackend(t, "added", "127.0.0.1")
			front := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			weight, appPort := int64(7), int64(app.Addr.Port)
			if err := a.c.AddRuntimeServer(ctx, "be", models.RuntimeAddServer{Name: "d1", Address: "127.0.0.1", Port: &appPort, Weight: &weight}); err != nil {
				t.Fatal(err)
			}
			dataplanetest.Eventually(t, 5*time.Second, "the added server serves", func() bool {
				got, err := dataplanetest.Greeting(front)
				return err == nil && got == "added"
			})
			srv, err := a.c.RuntimeServer(ctx, "be", "d1")
			if err != nil || srv.AdminState != "ready" || srv.Port == nil || *srv.Port != appPort {
				t.Errorf("runtime server %+v, %v", srv, err)
			}
			servers, err := a.c.RuntimeServers(ctx, "be")
			if err != nil || len(servers) != 1 {
				t.Errorf("runtime servers %+v, %v", servers, err)
			}
			if err := a.c.AddRuntimeServer(ctx, "be", models.RuntimeAddServer{Name: "d1", Address: "127.0.0.1", Port: &appPort}); !client.IsStatus(err, http.StatusConflict) {
				t.Errorf("adding d1 twice: %v; want 409", err)
			}
			if err := a.c.AddRuntimeServer(ctx, "nope", models.RuntimeAddServer{Name: "d1", Address: "127.0.0.1", Port: &appPort}); !client.IsStatus(err, http.StatusNotFound) {
				t.Errorf("adding to an unknown backend: %v; want 404", err)
			}
			// A connection in progress: this dataplane shuts it down; the
			// official API cannot, so the delete waits for it to end.
			conn, err := net.Dial("tcp", front)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || line != "added\n" {
				t.Fatalf("greeting %q, %v", line, err)
			}
			if !a.shutsSessions {
				dctx, cancel := context.WithTimeout(ctx, time.Second)
				err := a.c.DeleteRuntimeServer(dctx, "be", "d1")
				cancel()
				if err == nil || !strings.Contains(err.Error(), "connections") {
					t.Errorf("delete with a connection open: %v; want a refusal naming the connections", err)
				}
				conn.Close()
			}
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := a.c.DeleteRuntimeServer(dctx, "be", "d1"); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Read(make([]byte, 1)); err == nil {
				t.Error("the deleted server's connection is still open")
			}
			if got, err := dataplanetest.Greeting(front); err == nil {
				t.Errorf("a connection reached %q after the delete", got)
			}
			if _, err := a.c.RuntimeServer(ctx, "be", "d1"); !client.IsStatus(err, http.StatusNotFound) {
				t.Errorf("deleted server: %v; want 404", err)
			}
			if err := a.c.DeleteRuntimeServer(ctx, "be", "d1"); err != nil {
				t.Errorf("deleting it again: %v; want nil", err)
			}
		})
	}
}

// TestRuntimeMapsOnEveryAPI stores a map, loads it by the path the API
// answered, and routes by SNI through entries changed at runtime.
func TestRuntimeMapsOnEveryAPI(t *testing.T) {
	for name, start := range apis(t) {
		t.Run(name, func(t *testing.T) {
			a := start(t)
			ctx := context.Background()
			stored, err := a.c.StoreMap(ctx, "sni.map", []byte("a.example be_a\n"), false)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(stored.File) != "sni.map" || !filepath.IsAbs(stored.File) {
				t.Fatalf("stored at %q; want an absolute path ending in sni.map", stored.File)
			}
			maps, err := a.c.Maps(ctx)
			if err != nil || len(maps) != 1 || maps[0].StorageName != "sni.map" || maps[0].File != stored.File {
				t.Errorf("maps %+v, %v", maps, err)
			}
			port := dataplanetest.FreePort(t, "127.0.0.1")
			b1 := dataplanetest.StartBackend(t, "a", "127.0.0.1")
			b2 := dataplanetest.StartBackend(t, "b", "127.0.0.1")
			def := dataplanetest.StartBackend(t, "default", "127.0.0.1")
			pushNow(t, a.c, a.globals+apiDefaults+fmt.Sprintf(`frontend sni
    bind %s:%d
    tcp-request inspect-delay 2s
    tcp-request content accept if { req.ssl_hello_type 1 }
    use_backend %%[req.ssl_sni,lower,map(%s,be_default)]
backend be_a
    server a %s
backend be_b
    server b %s
backend be_default
    server d %s
`, a.bindAddr, port, stored.File, b1.Addr, b2.Addr, def.Addr))
			front := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			route := func(sni string) string {
				got, err := dataplanetest.SNIGreeting(front, dataplanetest.ClientHello(t, sni))
				if err != nil {
					return err.Error()
				}
				return got
			}
			if got := route("a.example"); got != "a" {
				t.Fatalf("a.example from the file: %q", got)
			}
			if err := a.c.AddMapEntry(ctx, "sni.map", "b.example", "be_b"); err != nil {
				t.Fatal(err)
			}
			if got := route("b.example"); got != "b" {
				t.Errorf("b.example after add: %q; want b", got)
			}
			if err := a.c.AddMapEntry(ctx, "sni.map", "b.example", "be_a"); !client.IsStatus(err, http.StatusConflict) {
				t.Errorf("adding b.example twice: %v; want 409", err)
			}
			if err := a.c.SetMapEntry(ctx, "sni.map", "a.example", "be_b"); err != nil {
				t.Fatal(err)
			}
			if got := route("a.example"); got != "b" {
				t.Errorf("a.example after set: %q; want b", got)
			}
			if err := a.c.PutMapEntry(ctx, "sni.map", "c.example", "be_a"); err != nil {
				t.Fatal(err)
			}
			if got := route("c.example"); got != "a" {
				t.Errorf("c.example after put: %q; want a", got)
			}
			entries, err := a.c.MapEntries(ctx, "sni.map")
			var kv []string
			for _, e := range entries {
				kv = append(kv, e.Key+"="+e.Value)
			}
			if err != nil || strings.Join(kv, " ") != "a.example=be_b b.example=be_b c.example=be_a" {
				t.Errorf("entries %v, %v", kv, err)
			}
			if e, err := a.c.MapEntry(ctx, "sni.map", "c.example"); err != nil || e.Value != "be_a" {
				t.Errorf("entry c.example: %+v, %v", e, err)
			}
			if err := a.c.DeleteMapEntry(ctx, "sni.map", "b.example"); err != nil {
				t.Fatal(err)
			}
			if got := route("b.example"); got != "default" {
				t.Errorf("b.example after delete: %q; want default", got)
			}
			if err := a.c.DeleteMapEntry(ctx, "sni.map", "b.example"); err != nil {
				t.Errorf("deleting it again: %v; want nil", err)
			}
			loaded, err := a.c.RuntimeMaps(ctx, false)
			if err != nil || len(loaded) != 1 || loaded[0].File != stored.File {
				t.Errorf("runtime maps %+v, %v", loaded, err)
			}
			if _, err := a.c.StoreMap(ctx, "sni.map", []byte("a.example be_b\nc.example be_a\n"), true); err != nil {
				t.Errorf("replace the file: %v", err)
			}
			if got, err := a.c.MapFile(ctx, "sni.map"); err != nil || string(got) != "a.example be_b\nc.example be_a\n" {
				t.Errorf("file %q, %v", got, err)
			}
		})
	}
}
