package dataplane_test

import (
	"bufio"
	"context"
	"encoding/json"
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

func i64(v int64) *int64 { return &v }

// TestServerAddedAtRuntimeTakesTrafficAndDeletedOneDoesNot adds a server
// to a backend the configuration leaves empty, through POST
// runtime/servers, sees it serve, then deletes it while a connection is
// open: the connection ends, new ones do not reach it, no reload ran.
func TestServerAddedAtRuntimeTakesTrafficAndDeletedOneDoesNot(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	ctx := context.Background()
	port := dataplanetest.FreePort(t, "127.0.0.1")
	push(t, inst.Client, []byte(testGlobals+fmt.Sprintf(`frontend fe
    bind "${TCPM_BIND_ADDR}:%d"
    default_backend be
backend be
    balance roundrobin
backend st
    balance static-rr
`, port)))
	reloads, err := inst.Server.ReloadCount()
	if err != nil {
		t.Fatal(err)
	}
	front := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	app := dataplanetest.StartBackend(t, "added", "127.0.0.1")
	add := models.RuntimeAddServer{Name: "d1", Address: "127.0.0.1", Port: i64(int64(app.Addr.Port)), Weight: i64(7), Check: "enabled", Inter: i64(100)}
	if err := inst.Client.AddRuntimeServer(ctx, "be", add); err != nil {
		t.Fatal(err)
	}
	if got, err := dataplanetest.Greeting(front); err != nil || got != "added" {
		t.Fatalf("right after the add: %q, %v; want the added server", got, err)
	}
	if w := inst.Runtime(t, "get weight be/d1"); w != "7 (initial 7)" {
		t.Errorf("weight %q; want 7", w)
	}
	srv, err := inst.Client.RuntimeServer(ctx, "be", "d1")
	if err != nil || srv.AdminState != "ready" || srv.Address != "127.0.0.1" || srv.Port == nil || *srv.Port != int64(app.Addr.Port) {
		t.Errorf("runtime server %+v, %v", srv, err)
	}
	dataplanetest.Eventually(t, 5*time.Second, "the health check marks d1 up", func() bool {
		return strings.Contains(inst.Runtime(t, "show servers state be"), " d1 127.0.0.1 2 ")
	})

	for name, c := range map[string]struct {
		backend string
		srv     models.RuntimeAddServer
		status  int
	}{
		"the same name again":       {"be", add, http.StatusConflict},
		"an unknown backend":        {"nope", models.RuntimeAddServer{Name: "x", Address: "127.0.0.1"}, http.StatusNotFound},
		"a static balance":          {"st", models.RuntimeAddServer{Name: "x", Address: "127.0.0.1"}, http.StatusBadRequest},
		"no address":                {"be", models.RuntimeAddServer{Name: "x"}, http.StatusBadRequest},
		"a value HAProxy refuses":   {"be", models.RuntimeAddServer{Name: "x", Address: "127.0.0.1", Verify: "sometimes"}, http.StatusBadRequest},
		"a toggle that is not one":  {"be", models.RuntimeAddServer{Name: "x", Address: "127.0.0.1", Check: "yes"}, http.StatusBadRequest},
		"an address with a command": {"be", models.RuntimeAddServer{Name: "x", Address: "127.0.0.1;shutdown"}, http.StatusBadRequest},
	} {
		if err := inst.Client.AddRuntimeServer(ctx, c.backend, c.srv); !client.IsStatus(err, c.status) {
			t.Errorf("%s: %v; want %d", name, err, c.status)
		}
	}
	if _, err := inst.Client.RuntimeServer(ctx, "be", "x"); !client.IsStatus(err, http.StatusNotFound) {
		t.Errorf("a refused add left server x behind: %v", err)
	}

	// Drain, then back to ready, through PUT.
	got, err := inst.Client.ReplaceRuntimeServer(ctx, "be", "d1", models.RuntimeServer{AdminState: "drain"})
	if err != nil || got.AdminState != "drain" {
		t.Errorf("drain: %+v, %v", got, err)
	}
	if got, err = inst.Client.ReplaceRuntimeServer(ctx, "be", "d1", models.RuntimeServer{AdminState: "ready"}); err != nil || got.AdminState != "ready" {
		t.Errorf("ready: %+v, %v", got, err)
	}
	resp, body := call(t, inst, http.MethodPut, "/v2/services/haproxy/runtime/servers/d1?backend=be", []byte(`{"admin_state":"asleep"}`), http.Header{"Content-Type": {"application/json"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an unknown state: %d %s", resp.StatusCode, body)
	}

	conn, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if line, err := r.ReadString('\n'); err != nil || line != "added\n" {
		t.Fatalf("greeting %q, %v", line, err)
	}
	if err := inst.Client.DeleteRuntimeServer(ctx, "be", "d1"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Error("the deleted server's connection is still open")
	}
	if got, err := dataplanetest.Greeting(front); err == nil {
		t.Errorf("a connection reached %q after the delete", got)
	}
	if _, err := inst.Client.RuntimeServer(ctx, "be", "d1"); !client.IsStatus(err, http.StatusNotFound) {
		t.Errorf("deleted server: %v; want 404", err)
	}
	resp, body = call(t, inst, http.MethodDelete, "/v2/services/haproxy/runtime/servers/d1?backend=be", nil, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleting it again: %d %s; want 404", resp.StatusCode, body)
	}
	errorMessage(t, body)
	if after, err := inst.Server.ReloadCount(); err != nil || after != reloads {
		t.Errorf("reloads %d → %d (%v); runtime servers need none", reloads, after, err)
	}
}

// sniConfig routes TLS connections on port by SNI through the stored map
// sni.map, and picks w.map's backend for a random 0 or 1 on wport.
func sniConfig(port, wport int, a, b, def *dataplanetest.Backend) []byte {
	return []byte(testGlobals + fmt.Sprintf(`frontend sni
    bind "${TCPM_BIND_ADDR}:%d"
    tcp-request inspect-delay 2s
    tcp-request content accept if { req.ssl_hello_type 1 }
    use_backend %%[req.ssl_sni,lower,map("${TCPM_MAP_DIR}/sni.map",be_default)]
frontend weighted
    bind "${TCPM_BIND_ADDR}:%d"
    use_backend %%[rand(2),map_int("${TCPM_MAP_DIR}/w.map",be_default)]
backend be_a
    server a %s
backend be_b
    server b %s
backend be_default
    server d %s
`, port, wport, a.Addr, b.Addr, def.Addr))
}

// TestMapEntriesChangedAtRuntimeRouteConnections stores two map files,
// pushes a configuration that routes by them (SNI → backend, a random
// number → backend), then changes entries through runtime/maps_entries:
// routing follows at once, without a reload. force_sync writes the
// entries to the file, so a reload keeps them.
func TestMapEntriesChangedAtRuntimeRouteConnections(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	ctx := context.Background()
	c := inst.Client
	port, wport := dataplanetest.FreePort(t, "127.0.0.1"), dataplanetest.FreePort(t, "127.0.0.1")
	a := dataplanetest.StartBackend(t, "a", "127.0.0.1")
	b := dataplanetest.StartBackend(t, "b", "127.0.0.1")
	def := dataplanetest.StartBackend(t, "default", "127.0.0.1")

	stored, err := c.StoreMap(ctx, "sni.map", []byte("a.example be_a\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	mapDir := filepath.Join(inst.Dir, "maps")
	if stored.File != filepath.Join(mapDir, "sni.map") {
		t.Errorf("stored at %q; want %s", stored.File, filepath.Join(mapDir, "sni.map"))
	}
	if _, err := c.StoreMap(ctx, "w.map", []byte("0 be_a\n1 be_a\n"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StoreMap(ctx, "w.map", []byte("0 be_a\n"), false); !client.IsStatus(err, http.StatusConflict) {
		t.Errorf("creating w.map twice: %v; want 409", err)
	}
	push(t, c, sniConfig(port, wport, a, b, def))
	reloads, err := inst.Server.ReloadCount()
	if err != nil {
		t.Fatal(err)
	}
	front := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	route := func(sni string) string {
		got, err := dataplanetest.SNIGreeting(front, dataplanetest.ClientHello(t, sni))
		if err != nil {
			return err.Error()
		}
		return got
	}
	if got := route("b.example"); got != "default" {
		t.Fatalf("b.example before its entry: %q", got)
	}
	if err := c.AddMapEntry(ctx, "sni.map", "b.example", "be_b"); err != nil {
		t.Fatal(err)
	}
	if got := route("b.example"); got != "b" {
		t.Errorf("b.example after add: %q; want b", got)
	}
	if err := c.AddMapEntry(ctx, "sni", "b.example", "be_a"); !client.IsStatus(err, http.StatusConflict) {
		t.Errorf("adding b.example twice (map named without .map): %v; want 409", err)
	}
	if err := c.SetMapEntry(ctx, "sni.map", "a.example", "be_b"); err != nil {
		t.Fatal(err)
	}
	if got := route("a.example"); got != "b" {
		t.Errorf("a.example after set: %q; want b", got)
	}
	if err := c.SetMapEntry(ctx, "sni.map", "zz.example", "be_b"); !client.IsStatus(err, http.StatusNotFound) {
		t.Errorf("setting a missing key: %v; want 404", err)
	}
	if err := c.PutMapEntry(ctx, "sni.map", "c.example", "be_a"); err != nil {
		t.Fatal(err)
	}
	entries, err := c.MapEntries(ctx, "sni.map")
	if err != nil {
		t.Fatal(err)
	}
	var kv []string
	for _, e := range entries {
		kv = append(kv, e.Key+"="+e.Value)
	}
	if strings.Join(kv, " ") != "a.example=be_b b.example=be_b c.example=be_a" {
		t.Errorf("entries %v", kv)
	}
	if e, err := c.MapEntry(ctx, "sni.map", "c.example"); err != nil || e.Value != "be_a" {
		t.Errorf("entry c.example: %+v, %v", e, err)
	}
	if _, err := c.MapEntry(ctx, "sni.map", "c.exampl"); !client.IsStatus(err, http.StatusNotFound) {
		t.Errorf("a key that is a prefix of one: %v; want 404", err)
	}
	if err := c.DeleteMapEntry(ctx, "sni.map", "b.example"); err != nil {
		t.Fatal(err)
	}
	if got := route("b.example"); got != "default" {
		t.Errorf("b.example after delete: %q; want default", got)
	}
	resp, body := call(t, inst, http.MethodDelete, "/v2/services/haproxy/runtime/maps_entries/b.example?map=sni.map", nil, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleting it again: %d %s; want 404", resp.StatusCode, body)
	}
	for name, path := range map[string]string{
		"a map not loaded":   "/v2/services/haproxy/runtime/maps_entries?map=other.map",
		"a name with a path": "/v2/services/haproxy/runtime/maps_entries?map=..%2Fsni.map",
	} {
		resp, body := call(t, inst, http.MethodGet, path, nil, nil)
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
		errorMessage(t, body)
	}

	// The weighted frontend: all to a, then one of the two numbers to b.
	wfront := net.JoinHostPort("127.0.0.1", strconv.Itoa(wport))
	if split := dataplanetest.Split(wfront, 20); split["a"] != 20 {
		t.Fatalf("before the change: %v; want all on a", split)
	}
	resp, body = call(t, inst, http.MethodPut, "/v2/services/haproxy/runtime/maps_entries/1?map=w.map&force_sync=true",
		[]byte(`{"value":"be_b"}`), http.Header{"Content-Type": {"application/json"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set 1 → be_b: %d %s", resp.StatusCode, body)
	}
	if split := dataplanetest.Split(wfront, 200); split["a"] < 60 || split["b"] < 60 {
		t.Errorf("after the change: %v; want about half on each", split)
	}
	if file, err := c.MapFile(ctx, "w.map"); err != nil || string(file) != "0 be_a\n1 be_b\n" {
		t.Errorf("w.map after force_sync: %q, %v", file, err)
	}

	// Loaded maps, a payload of entries, clearing.
	maps, err := c.RuntimeMaps(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range maps {
		names = append(names, m.StorageName)
	}
	if strings.Join(names, " ") != "sni.map w.map" {
		t.Errorf("runtime maps %v", names)
	}
	resp, body = call(t, inst, http.MethodGet, "/v2/services/haproxy/runtime/maps/sni.map", nil, nil)
	var m models.Map
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &m) != nil || m.File != stored.File {
		t.Errorf("runtime map sni.map: %d %s", resp.StatusCode, body)
	}
	resp, body = call(t, inst, http.MethodPut, "/v2/services/haproxy/runtime/maps/sni.map",
		[]byte(`[{"key":"d.example","value":"be_b"},{"key":"e.example","value":"be_a"}]`), http.Header{"Content-Type": {"application/json"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("payload: %d %s", resp.StatusCode, body)
	}
	if got := route("d.example"); got != "b" {
		t.Errorf("d.example after the payload: %q; want b", got)
	}
	resp, body = call(t, inst, http.MethodDelete, "/v2/services/haproxy/runtime/maps/sni.map", nil, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("clear: %d %s", resp.StatusCode, body)
	}
	if got := route("d.example"); got != "default" {
		t.Errorf("d.example after clear: %q; want default", got)
	}
	if after, err := inst.Server.ReloadCount(); err != nil || after != reloads {
		t.Errorf("reloads %d → %d (%v); map changes need none", reloads, after, err)
	}

	// A reload reads the files: w.map was synced, sni.map was not.
	v, err := c.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PushConfiguration(ctx, sniConfig(port, wport, a, b, def), client.Push{Version: v, ForceReload: true}); err != nil {
		t.Fatal(err)
	}
	if got := route("a.example"); got != "a" {
		t.Errorf("a.example after a reload: %q; want a (the file's entry)", got)
	}
	if split := dataplanetest.Split(wfront, 200); split["b"] < 60 {
		t.Errorf("after a reload: %v; the synced entry 1 → be_b is lost", split)
	}
}

// TestMapStorage creates, lists, reads, replaces and deletes map files
// through storage/maps; a file the configuration loads is not deleted.
func TestMapStorage(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	ctx := context.Background()
	c := inst.Client
	if _, err := c.StoreMap(ctx, "hosts.map", []byte("a.example be_a\n"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StoreMap(ctx, "unused.map", []byte("# nothing yet\n"), false); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"bad name.map": "a b\n", "x.txt": "a b\n", "keyonly.map": "a\n"} {
		if _, err := c.StoreMap(ctx, name, []byte(content), false); !client.IsStatus(err, http.StatusBadRequest) {
			t.Errorf("storing %q: %v; want 400", name, err)
		}
	}
	maps, err := c.Maps(ctx)
	if err != nil || len(maps) != 2 || maps[0].StorageName != "hosts.map" || maps[0].File != filepath.Join(inst.Dir, "maps", "hosts.map") {
		t.Fatalf("maps %+v, %v", maps, err)
	}
	port := dataplanetest.FreePort(t, "127.0.0.1")
	push(t, c, []byte(testGlobals+fmt.Sprintf(`frontend fe
    bind "${TCPM_BIND_ADDR}:%d"
    use_backend %%[str(a.example),map("${TCPM_MAP_DIR}/hosts.map",be_a)]
backend be_a
`, port)))
	stored, err := c.StoreMap(ctx, "hosts.map", []byte("a.example be_a\nb.example be_a\n"), true)
	if err != nil || stored.ReloadID != "" {
		t.Errorf("replace with skip_reload: %+v, %v", stored, err)
	}
	if got, err := c.MapFile(ctx, "hosts.map"); err != nil || string(got) != "a.example be_a\nb.example be_a\n" {
		t.Errorf("content %q, %v", got, err)
	}
	if _, err := c.StoreMap(ctx, "missing.map", []byte("a b\n"), true); !client.IsStatus(err, http.StatusNotFound) {
		t.Errorf("replacing a missing file: %v; want 404", err)
	}
	if err := c.DeleteMap(ctx, "hosts.map"); !client.IsStatus(err, http.StatusBadRequest) {
		t.Errorf("deleting a loaded map: %v; want 400", err)
	}
	if err := c.DeleteMap(ctx, "unused.map"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(inst.Dir, "maps", "unused.map")); !os.IsNotExist(err) {
		t.Errorf("unused.map still on disk: %v", err)
	}
	resp, body := call(t, inst, http.MethodDelete, "/v2/services/haproxy/storage/maps/unused.map", nil, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleting it again: %d %s", resp.StatusCode, body)
	}
}

// BenchmarkMapEntryThroughTheAPI measures one POST runtime/maps_entries
// (existence check and add) on a map of 5,000 entries, over HTTP.
func BenchmarkMapEntryThroughTheAPI(b *testing.B) {
	inst := dataplanetest.Start(b, "127.0.0.1")
	ctx := context.Background()
	var content strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&content, "h%d.example be\n", i)
	}
	if _, err := inst.Client.StoreMap(ctx, "sni.map", []byte(content.String()), false); err != nil {
		b.Fatal(err)
	}
	v, err := inst.Client.Version(ctx)
	if err != nil {
		b.Fatal(err)
	}
	cfg := testGlobals + fmt.Sprintf(`frontend fe
    bind "${TCPM_BIND_ADDR}:%d"
    use_backend %%[req.ssl_sni,lower,map("${TCPM_MAP_DIR}/sni.map",be)]
backend be
`, dataplanetest.FreePort(b, "127.0.0.1"))
	if _, err := inst.Client.PushConfiguration(ctx, []byte(cfg), client.Push{Version: v, ForceReload: true}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := inst.Client.AddMapEntry(ctx, "sni.map", fmt.Sprintf("new%d.example", i), "be"); err != nil {
			b.Fatal(err)
		}
	}
}
