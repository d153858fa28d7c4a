package dataplane_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
)

// countingHAProxy is Debian's haproxy behind a script that records each
// haproxy -c it runs, so a test can tell which pushes were checked.
func countingHAProxy(t *testing.T) (bin string, checks func() int) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "checks")
	// Named haproxy: the dataplane recognises its master by that name.
	bin = filepath.Join(dir, "haproxy")
	script := fmt.Sprintf("#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = -c ] && echo check >>%q; done\nexec %q \"$@\"\n", log, dataplanetest.HAProxyBinary(t))
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, func() int {
		b, err := os.ReadFile(log)
		if errors.Is(err, os.ErrNotExist) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(b), "check\n")
	}
}

// TestForcedReloadIsItsOwnCheck: a forced push into a running HAProxy is
// not run through haproxy -c first; a text HAProxy refuses is still
// answered 400 with HAProxy's words, the previous listener answers
// throughout, and the next text applies.
func TestForcedReloadIsItsOwnCheck(t *testing.T) {
	bin, checks := countingHAProxy(t)
	inst := dataplanetest.Start(t, "127.0.0.1", func(o *dataplane.Options) { o.HAProxy = bin })
	backend := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	port := dataplanetest.FreePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ctx := context.Background()

	before := checks()
	push(t, inst.Client, relayConfig(port, backend, 0))
	if n := checks() - before; n != 0 {
		t.Errorf("a forced push HAProxy accepts ran haproxy -c %d times, want 0", n)
	}
	if got, err := dataplanetest.Greeting(addr); err != nil || got != "app" {
		t.Fatalf("after the push: greeting %q, %v", got, err)
	}
	stored, version, err := inst.Client.RawConfiguration(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Connections go on while HAProxy reads the text it refuses.
	var relayed, failed atomic.Int64
	stop := make(chan struct{})
	probing := make(chan struct{})
	go func() {
		defer close(probing)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if got, err := dataplanetest.Greeting(addr); err == nil && got == "app" {
				relayed.Add(1)
			} else {
				failed.Add(1)
			}
		}
	}()
	invalid := append(relayConfig(port, backend, 0), []byte("backend broken\n    server s2 127.0.0.1:1 weight 999\n")...)
	before = checks()
	_, err = inst.Client.PushConfiguration(ctx, invalid, client.Push{Version: version, ForceReload: true})
	close(stop)
	<-probing
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Fatalf("push: %v, want a 400", err)
	}
	if !strings.Contains(apiErr.Message, "haproxy refused the configuration") || !strings.Contains(apiErr.Message, "weight of server s2") {
		t.Errorf("the refusal does not carry HAProxy's line: %s", apiErr.Message)
	}
	if n := checks() - before; n != 1 {
		t.Errorf("the refused push ran haproxy -c %d times, want 1 (after the reload failed)", n)
	}
	if failed.Load() > 0 || relayed.Load() == 0 {
		t.Errorf("during the refused reload: %d connections relayed, %d failed; want none failed", relayed.Load(), failed.Load())
	}
	assertUnchanged(t, inst, stored, version, addr)
	if _, err := os.Stat(filepath.Join(inst.Dir, "haproxy.cfg.running")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the copy of the running configuration outlived the reload: %v", err)
	}

	assertNextPushApplies(t, inst, port, addr, version)

	// A queued reload still checks before it answers.
	before = checks()
	if _, err := inst.Client.PushConfiguration(ctx, invalid, client.Push{Version: version + 1}); !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Errorf("queued push of a refused text: %v, want a 400", err)
	}
	if n := checks() - before; n != 1 {
		t.Errorf("the queued push ran haproxy -c %d times, want 1", n)
	}
}

// TestStartGoesBackFromAnUncheckedReload: a dataplane that stopped in
// the middle of a forced reload left an unchecked stored text and a copy
// of what ran; the next one starts from the copy when HAProxy refuses
// the text, and from the text when it accepts it.
func TestStartGoesBackFromAnUncheckedReload(t *testing.T) {
	backend := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	for name, tc := range map[string]struct {
		refused bool
		want    string
	}{
		"a text HAProxy refuses": {refused: true, want: "app"},
		"a text HAProxy accepts": {refused: false, want: "other"},
	} {
		t.Run(name, func(t *testing.T) {
			port := dataplanetest.FreePort(t, "127.0.0.1")
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			other := dataplanetest.StartBackend(t, "other", "127.0.0.1")
			dir := t.TempDir()
			running := "# _version=4\n" + string(relayConfig(port, backend, 0))
			stored := "# _version=5\n" + string(relayConfig(port, other, 0))
			if tc.refused {
				stored += "backend broken\n    server s2 127.0.0.1:1 weight 999\n"
			}
			if err := os.WriteFile(filepath.Join(dir, "haproxy.cfg"), []byte(stored), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "haproxy.cfg.running"), []byte(running), 0o600); err != nil {
				t.Fatal(err)
			}
			inst := dataplanetest.Start(t, "127.0.0.1", func(o *dataplane.Options) { o.Dir = dir })
			if got, err := dataplanetest.Greeting(addr); err != nil || got != tc.want {
				t.Errorf("greeting %q, %v; want %q", got, err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "haproxy.cfg.running")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the copy is still there after the start: %v", err)
			}
			wantVersion := int64(5)
			if tc.refused {
				wantVersion = 4
			}
			if v, err := inst.Client.Version(context.Background()); err != nil || v != wantVersion {
				t.Errorf("version %d, %v; want %d", v, err, wantVersion)
			}
		})
	}
}
