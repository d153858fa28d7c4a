package dataplane_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/haproxytech/client-native/v5/models"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
)

// Tests of what the dataplane answers on the wire, beyond the
// specification check every answer gets (see TestMain).

func TestInfoAndHealthAnswer(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	resp, body := call(t, inst, http.MethodGet, "/v2/info", nil, nil)
	var info models.Info
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &info) != nil || info.API == nil || info.API.Version == "" {
		t.Errorf("info: %d %s", resp.StatusCode, body)
	}
	resp, body = call(t, inst, http.MethodGet, "/v2/health", nil, nil)
	var health models.Health
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &health) != nil || health.Haproxy != "up" {
		t.Errorf("health: %d %s", resp.StatusCode, body)
	}
}

func TestUnknownPathsAndMethodsAnswerWithTheErrorModel(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	resp, body := call(t, inst, http.MethodGet, "/v2/services/haproxy/no-such-thing", nil, nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(errorMessage(t, body), "no-such-thing") {
		t.Errorf("unknown path: %d %s", resp.StatusCode, body)
	}
	resp, body = call(t, inst, http.MethodDelete, "/v2/services/haproxy/configuration/raw", nil, nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "POST") {
		t.Errorf("wrong method: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	errorMessage(t, body)
	resp, body = call(t, inst, http.MethodGet, "/v2/services/haproxy/reloads/2000-01-01-999", nil, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown reload: %d %s", resp.StatusCode, body)
	}
	errorMessage(t, body)
}

// postRaw posts a configuration with the given query and returns the
// answer, its body decoded as the JSON string the specification has.
func postRaw(t *testing.T, inst *dataplanetest.Instance, query string, cfg []byte, header http.Header) (*http.Response, string) {
	t.Helper()
	if header == nil {
		header = http.Header{}
	}
	header.Set("Content-Type", "text/plain")
	resp, body := call(t, inst, http.MethodPost, "/v2/services/haproxy/configuration/raw?"+query, cfg, header)
	if resp.StatusCode >= 300 {
		return resp, errorMessage(t, body)
	}
	var s string
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("POST raw?%s → %d: body is not a JSON string: %q", query, resp.StatusCode, body)
	}
	return resp, s
}

func TestPostRawAnswersPerSpecification(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	backend := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	port := dataplanetest.FreePort(t, "127.0.0.1")
	ctx := context.Background()
	version := func() int64 {
		v, err := inst.Client.Version(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v0 := version()

	t.Run("force_reload answers 201 with the stored configuration", func(t *testing.T) {
		resp, stored := postRaw(t, inst, "force_reload=true&version="+strconv.FormatInt(v0, 10), relayConfig(port, backend, 0), nil)
		if resp.StatusCode != http.StatusCreated || !strings.Contains(stored, "# _version="+strconv.FormatInt(v0+1, 10)) {
			t.Errorf("%d %q", resp.StatusCode, stored)
		}
		if resp.Header.Get("Configuration-Version") != strconv.FormatInt(v0+1, 10) || resp.Header.Get("Configuration-Checksum") == "" {
			t.Errorf("headers %v", resp.Header)
		}
	})
	t.Run("a queued reload answers 202 with a Reload-ID", func(t *testing.T) {
		resp, stored := postRaw(t, inst, "version="+strconv.FormatInt(version(), 10), relayConfig(port, backend, 1), nil)
		if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Reload-ID") == "" || !strings.Contains(stored, "frontend extra-0") {
			t.Errorf("%d %v %q", resp.StatusCode, resp.Header, stored)
		}
	})
	t.Run("a client preferring a minimal answer gets an empty string", func(t *testing.T) {
		header := http.Header{"Prefer": {"respond-async, return=minimal"}, "Content-Type": {"text/plain"}}
		resp, body := call(t, inst, http.MethodPost, "/v2/services/haproxy/configuration/raw?skip_reload=true&version="+strconv.FormatInt(version(), 10), relayConfig(port, backend, 1), header)
		if resp.StatusCode != http.StatusCreated || strings.TrimSpace(string(body)) != `""` || resp.Header.Get("Preference-Applied") != "return=minimal" {
			t.Errorf("%d, Preference-Applied %q, body %q", resp.StatusCode, resp.Header.Get("Preference-Applied"), body)
		}
		if resp.Header.Get("Configuration-Version") != strconv.FormatInt(version(), 10) {
			t.Errorf("version header %q, stored version %d", resp.Header.Get("Configuration-Version"), version())
		}
	})
	t.Run("skip_version keeps the version", func(t *testing.T) {
		before := version()
		resp, _ := postRaw(t, inst, "skip_version=true&skip_reload=true", relayConfig(port, backend, 1), nil)
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Configuration-Version") != strconv.FormatInt(before, 10) {
			t.Errorf("%d, version header %q, want %d", resp.StatusCode, resp.Header.Get("Configuration-Version"), before)
		}
		if after := version(); after != before {
			t.Errorf("version %d → %d", before, after)
		}
	})
	t.Run("only_validate answers 202 and stores nothing", func(t *testing.T) {
		stored, before, _ := inst.Client.RawConfiguration(ctx)
		resp, msg := postRaw(t, inst, "only_validate=true", relayConfig(port, backend, 5), nil)
		if resp.StatusCode != http.StatusAccepted || strings.Contains(msg, "frontend") {
			t.Errorf("valid: %d %q", resp.StatusCode, msg)
		}
		resp, msg = postRaw(t, inst, "only_validate=true", []byte("frontend broken\n    bind :notaport\n"), nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "ALERT") {
			t.Errorf("invalid: %d %q", resp.StatusCode, msg)
		}
		if now, v, _ := inst.Client.RawConfiguration(ctx); now != stored || v != before {
			t.Error("only_validate changed the stored configuration")
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for query, want := range map[string]int{
			"":                               http.StatusBadRequest, // no version
			"version=abc":                    http.StatusBadRequest,
			"version=1&skip_reload=maybe":    http.StatusBadRequest,
			"version=" + strconv.Itoa(1<<30): http.StatusConflict,
		} {
			resp, msg := postRaw(t, inst, query, relayConfig(port, backend, 0), nil)
			if resp.StatusCode != want {
				t.Errorf("POST raw?%s: %d %q, want %d", query, resp.StatusCode, msg, want)
			}
		}
		v := strconv.FormatInt(version(), 10)
		for name, tc := range map[string]struct{ query, actions string }{
			"an unknown action":             {"skip_reload=true&version=" + v, "DeleteEverything be s1"},
			"a raw runtime command":         {"skip_reload=true&version=" + v, "set server be/s1 weight 50"},
			"wrong argument count":          {"skip_reload=true&version=" + v, "SetServerWeight be s1"},
			"runtime actions with a reload": {"version=" + v, "SetServerWeight be s1 50"},
		} {
			resp, msg := postRaw(t, inst, tc.query, relayConfig(port, backend, 1), http.Header{"X-Runtime-Actions": {tc.actions}})
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: %d %q, want 400", name, resp.StatusCode, msg)
			}
		}
	})
}

func TestRuntimeServersAnswerAnArrayOr404(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	backend := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	push(t, inst.Client, append(relayConfig(dataplanetest.FreePort(t, "127.0.0.1"), backend, 0), []byte("backend empty\n")...))
	resp, body := call(t, inst, http.MethodGet, "/v2/services/haproxy/runtime/servers?backend=be", nil, nil)
	var servers models.RuntimeServers
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &servers) != nil || len(servers) != 1 || servers[0].Name != "s1" {
		t.Errorf("known backend: %d %s", resp.StatusCode, body)
	}
	resp, body = call(t, inst, http.MethodGet, "/v2/services/haproxy/runtime/servers?backend=empty", nil, nil)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("backend without servers: %d %s, want []", resp.StatusCode, body)
	}
	resp, body = call(t, inst, http.MethodGet, "/v2/services/haproxy/runtime/servers?backend=no-such-backend", nil, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown backend: %d %s, want 404", resp.StatusCode, body)
	}
	errorMessage(t, body)
}
