package dataplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxytech/client-native/v5/models"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
)

// call sends one request to the instance's API with the test credentials
// and returns the answer and its body.
func call(t *testing.T, inst *dataplanetest.Instance, method, path string, body []byte, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, inst.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(dataplanetest.User, dataplanetest.Password)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// errorMessage is the message of an error-model body.
func errorMessage(t *testing.T, body []byte) string {
	t.Helper()
	var e models.Error
	if err := json.Unmarshal(body, &e); err != nil || e.Message == nil {
		t.Fatalf("body is not the error model: %q (%v)", body, err)
	}
	return *e.Message
}

// unbindableConfig is relayConfig plus a listener HAProxy cannot open.
func unbindableConfig(port int, backend *dataplanetest.Backend, bind string) []byte {
	cfg := relayConfig(port, backend, 0)
	return append(cfg, []byte(fmt.Sprintf("frontend tcpm-fe-unbindable\n    bind %s\n    default_backend be\n", bind))...)
}

// assertUnchanged checks that the stored configuration and version are
// the ones given and that the listener still answers.
func assertUnchanged(t *testing.T, inst *dataplanetest.Instance, stored string, version int64, addr string) {
	t.Helper()
	ctx := context.Background()
	now, v, err := inst.Client.RawConfiguration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if now != stored || v != version {
		t.Errorf("stored configuration changed: version %d → %d", version, v)
	}
	if cur, err := inst.Client.Version(ctx); err != nil || cur != version {
		t.Errorf("configuration/version %d (%v), want %d", cur, err, version)
	}
	if got, err := dataplanetest.Greeting(addr); err != nil || got != "app" {
		t.Errorf("the previous listener: greeting %q, %v", got, err)
	}
}

// TestForcedReloadThatCannotBindIsRolledBack pushes a listener on
// 192.0.2.55, an address the host does not have, and one on a port
// already in use: HAProxy cannot start the new worker, the answer is an
// error carrying HAProxy's own line, the previous file and version stay
// stored and the previous listeners keep answering.
func TestForcedReloadThatCannotBindIsRolledBack(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	backend := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	port := dataplanetest.FreePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	push(t, inst.Client, relayConfig(port, backend, 0))
	ctx := context.Background()
	stored, version, err := inst.Client.RawConfiguration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	for name, bind := range map[string]string{
		"an address the host does not have": "192.0.2.55:3600",
		"a port already in use":             busy.Addr().String(),
	} {
		t.Run(name, func(t *testing.T) {
			reloadsBefore, _ := inst.Server.ReloadCount()
			start := time.Now()
			_, err := inst.Client.PushConfiguration(ctx, unbindableConfig(port, backend, bind), client.Push{Version: version, ForceReload: true})
			took := time.Since(start)
			var apiErr *client.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusInternalServerError {
				t.Fatalf("push: %v, want a 500", err)
			}
			if !strings.Contains(apiErr.Message, "[ALERT]") || !strings.Contains(apiErr.Message, "cannot bind socket") || !strings.Contains(apiErr.Message, bind) {
				t.Errorf("the error does not carry HAProxy's line: %s", apiErr.Message)
			}
			if took > 10*time.Second {
				t.Errorf("the failure took %s to report, want a few seconds", took)
			}
			t.Logf("failed reload reported in %s: %s", took.Round(time.Millisecond), apiErr.Message)
			assertUnchanged(t, inst, stored, version, addr)
			if n, _ := inst.Server.ReloadCount(); n != reloadsBefore+1 {
				t.Errorf("reload count %d → %d", reloadsBefore, n)
			}
			rls, err := inst.Client.Reloads(ctx)
			if err != nil || len(rls) == 0 || rls[len(rls)-1].Status != "failed" || !strings.Contains(rls[len(rls)-1].Response, "cannot bind socket") {
				t.Errorf("reloads: %+v, %v; want the last failed with HAProxy's line", rls, err)
			}
		})
	}

	assertNextPushApplies(t, inst, port, addr, version)
}

// assertNextPushApplies pushes a good configuration after a refused one
// and checks that it is stored as the next version and relays.
func assertNextPushApplies(t *testing.T, inst *dataplanetest.Instance, port int, addr string, version int64) {
	t.Helper()
	other := dataplanetest.StartBackend(t, "other", "127.0.0.1")
	res := push(t, inst.Client, relayConfig(port, other, 0))
	if res.Version != version+1 {
		t.Errorf("the next push stored version %d, want %d", res.Version, version+1)
	}
	if got, err := dataplanetest.Greeting(addr); err != nil || got != "other" {
		t.Errorf("after the next push: greeting %q, %v", got, err)
	}
}

// TestQueuedReloadThatCannotBindIsRolledBack: the same failure through a
// queued reload is recorded as failed, with HAProxy's line, and rolled
// back.
func TestQueuedReloadThatCannotBindIsRolledBack(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	backend := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	port := dataplanetest.FreePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	push(t, inst.Client, relayConfig(port, backend, 0))
	ctx := context.Background()
	stored, version, err := inst.Client.RawConfiguration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := inst.Client.PushConfiguration(ctx, unbindableConfig(port, backend, "192.0.2.55:3600"), client.Push{Version: version})
	if err != nil || res.Status != http.StatusAccepted || res.ReloadID == "" {
		t.Fatalf("queued push: %+v, %v; want 202 with a Reload-ID", res, err)
	}
	var rl *models.Reload
	dataplanetest.Eventually(t, 10*time.Second, "the queued reload ends", func() bool {
		rl, err = inst.Client.Reload(ctx, res.ReloadID)
		return err == nil && rl.Status != "in_progress"
	})
	if rl.Status != "failed" || !strings.Contains(rl.Response, "cannot bind socket") || !strings.Contains(rl.Response, "192.0.2.55:3600") {
		t.Errorf("reload %s: status %q, response %q; want failed with HAProxy's line", rl.ID, rl.Status, rl.Response)
	}
	assertUnchanged(t, inst, stored, version, addr)
}

// TestRefusedPostWithRuntimeActionsChangesNothing: a POST whose
// configuration haproxy -c refuses, or whose runtime actions fail part
// way, leaves the servers as they were and stores nothing.
func TestRefusedPostWithRuntimeActionsChangesNothing(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	backend := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	port := dataplanetest.FreePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	push(t, inst.Client, relayConfig(port, backend, 0))
	ctx := context.Background()
	stored, version, err := inst.Client.RawConfiguration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	invalid := append(relayConfig(port, backend, 0), []byte("backend broken\n    server s2 127.0.0.1:1 weight 999\n")...)

	for name, tc := range map[string]struct {
		cfg     []byte
		actions []client.Action
	}{
		"haproxy -c refuses the configuration": {
			cfg:     invalid,
			actions: []client.Action{{"SetServerState", "be", "s1", "maint"}, {"SetServerWeight", "be", "s1", "7"}},
		},
		"a server line HAProxy cannot read, in a push that only moves servers": {
			// Checked from the changed backend alone first; refused there,
			// the whole text is checked, so the messages cite its lines.
			cfg:     bytes.Replace(relayConfig(port, backend, 0), []byte("server s1 "+backend.Addr.String()), []byte("server s1 127.0.0.1:99999999"), 1),
			actions: []client.Action{{"SetServerWeight", "be", "s1", "7"}},
		},
		"a later runtime action fails": {
			cfg: relayConfig(port, backend, 0),
			actions: []client.Action{
				{"SetServerState", "be", "s1", "maint"}, {"SetServerWeight", "be", "s1", "7"},
				{"SetServerWeight", "be", "no-such-server", "7"},
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := inst.Client.PushConfiguration(ctx, tc.cfg, client.Push{Version: version, SkipReload: true, Actions: tc.actions})
			var apiErr *client.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
				t.Fatalf("push: %v, want a 400", err)
			}
			if strings.Contains(apiErr.Message, "check-part") {
				t.Errorf("the refusal cites a part of the text, not the text sent: %s", apiErr.Message)
			}
			servers, err := inst.Client.RuntimeServers(ctx, "be")
			if err != nil || len(servers) != 1 || servers[0].AdminState != "ready" {
				t.Errorf("runtime servers after the refusal: %+v, %v; want s1 ready", servers, err)
			}
			if w := inst.Runtime(t, "get weight be/s1"); !strings.HasPrefix(w, "1 ") {
				t.Errorf("weight of be/s1 after the refusal: %q, want 1", w)
			}
			assertUnchanged(t, inst, stored, version, addr)
		})
	}
}

// testHTTP is the HTTP client of the tests' direct requests.
var testHTTP = &http.Client{Timeout: time.Minute}
