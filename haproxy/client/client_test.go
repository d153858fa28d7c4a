package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
)

// These tests pin the client's wire behaviour against answers the
// specification allows and the official API gives; the real servers are
// exercised by operator/apply/compat.

func serve(t *testing.T, h http.HandlerFunc) *client.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := client.New(srv.URL, "u", "p", nil)
	c.Backoff = time.Millisecond
	return c
}

func TestVersionWithoutVersionInTheBody(t *testing.T) {
	for _, c := range []struct {
		name   string
		header string
	}{{"from the header", "7"}, {"from the version endpoint", ""}} {
		t.Run(c.name, func(t *testing.T) {
			cl := serve(t, func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/v2/services/haproxy/configuration/raw":
					if c.header != "" {
						w.Header().Set("Configuration-Version", c.header)
					}
					_, _ = w.Write([]byte(`{"data":"global\n"}`))
				case "/v2/services/haproxy/configuration/version":
					_, _ = w.Write([]byte("7\n"))
				}
			})
			text, v, err := cl.RawConfiguration(context.Background())
			if err != nil || v != 7 || text != "global\n" {
				t.Errorf("got %q, %d, %v; want version 7", text, v, err)
			}
		})
	}
}

func TestCertificateCreateAcceptsAQueuedReloadAndSendsNoUndefinedParameter(t *testing.T) {
	cl := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			t.Errorf("create sent parameters %q; the specification defines only force_reload", r.URL.RawQuery)
		}
		if _, _, err := r.FormFile("file_upload"); err != nil {
			t.Errorf("no file_upload: %v", err)
		}
		w.Header().Set("Reload-ID", "2026-01-01-3")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"storage_name":"a.pem","file":"/etc/haproxy/ssl/a.pem"}`))
	})
	got, err := cl.StoreCertificate(context.Background(), "a.pem", []byte("pem"), false)
	if err != nil || got.ReloadID != "2026-01-01-3" || got.File != "/etc/haproxy/ssl/a.pem" {
		t.Errorf("got %+v, %v; want the reload ID and the stored file's path", got, err)
	}
}

// TestGeneralFilesRoundTrip stores, lists, reads and deletes a general-use
// file as the official API's storage/general answers: 201 with the file's
// path, raw content on GET, 204 on PUT with skip_reload and on DELETE.
func TestGeneralFilesRoundTrip(t *testing.T) {
	files := map[string][]byte{}
	cl := serve(t, func(w http.ResponseWriter, r *http.Request) {
		const base = "/v2/services/haproxy/storage/general"
		name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, base), "/")
		switch {
		case r.Method == http.MethodPost && name == "":
			f, h, err := r.FormFile("file_upload")
			if err != nil {
				t.Errorf("no file_upload: %v", err)
				return
			}
			b, _ := io.ReadAll(f)
			files[h.Filename] = b
			w.WriteHeader(http.StatusCreated)
			_, _ = fmt.Fprintf(w, `{"storage_name":%q,"file":"/etc/haproxy/general/%s"}`, h.Filename, h.Filename)
		case r.Method == http.MethodGet && name == "":
			var list []string
			for n := range files {
				list = append(list, fmt.Sprintf(`{"storage_name":%q,"file":"/etc/haproxy/general/%s"}`, n, n))
			}
			_, _ = w.Write([]byte("[" + strings.Join(list, ",") + "]"))
		case r.Method == http.MethodGet:
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(files[name])
		case r.Method == http.MethodPut:
			if r.URL.Query().Get("skip_reload") != "true" || r.Header.Get("Content-Type") != "text/plain" {
				t.Errorf("PUT %s?%s as %s, want text/plain with skip_reload", name, r.URL.RawQuery, r.Header.Get("Content-Type"))
			}
			files[name], _ = io.ReadAll(r.Body)
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodDelete:
			delete(files, name)
			w.WriteHeader(http.StatusNoContent)
		}
	})
	ctx := context.Background()
	got, err := cl.StoreGeneralFile(ctx, "ns_ctx.ca.pem", []byte("ca one"), false)
	if err != nil || got.File != "/etc/haproxy/general/ns_ctx.ca.pem" {
		t.Fatalf("create: %+v, %v", got, err)
	}
	if _, err := cl.StoreGeneralFile(ctx, "ns_ctx.ca.pem", []byte("ca two"), true); err != nil {
		t.Fatalf("replace: %v", err)
	}
	list, err := cl.GeneralFiles(ctx)
	if err != nil || len(list) != 1 || list[0].File != "/etc/haproxy/general/ns_ctx.ca.pem" {
		t.Fatalf("list: %+v, %v", list, err)
	}
	content, err := cl.GeneralFile(ctx, "ns_ctx.ca.pem")
	if err != nil || string(content) != "ca two" {
		t.Fatalf("read: %q, %v", content, err)
	}
	if err := cl.DeleteGeneralFile(ctx, "ns_ctx.ca.pem"); err != nil || len(files) != 0 {
		t.Fatalf("delete: %v, left %v", err, files)
	}
}

func TestWaitReloadReportsAFailureWithHAProxysWords(t *testing.T) {
	var polls atomic.Int32
	cl := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if polls.Add(1) < 3 {
			_, _ = w.Write([]byte(`{"id":"2026-01-01-1","status":"in_progress"}`))
			return
		}
		_, _ = w.Write([]byte(`{"id":"2026-01-01-1","status":"failed","response":"[ALERT] cannot bind"}`))
	})
	cl.PollInterval = time.Millisecond
	err := cl.WaitReload(context.Background(), "2026-01-01-1")
	var rl *client.ReloadError
	if !errors.As(err, &rl) || !strings.Contains(rl.Response, "cannot bind") {
		t.Errorf("got %v; want a *client.ReloadError with the response", err)
	}
}

func TestPushReadsAJSONStringOrTextBody(t *testing.T) {
	for _, c := range []struct{ contentType, body string }{
		{"application/json", `"global\n"`},
		{"text/plain", "global\n"},
	} {
		cl := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", c.contentType)
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(c.body))
		})
		res, err := cl.PushConfiguration(context.Background(), []byte("global\n"), client.Push{Version: 1, ForceReload: true, ReturnStored: true})
		if err != nil || res.Stored != "global\n" {
			t.Errorf("%s: got %q, %v", c.contentType, res.Stored, err)
		}
	}
}

// TestPushPrefersAMinimalAnswer: unless the stored text is asked for, a
// push says it prefers no body back, and a body sent all the same is not
// decoded.
func TestPushPrefersAMinimalAnswer(t *testing.T) {
	for _, returnStored := range []bool{false, true} {
		var prefer string
		cl := serve(t, func(w http.ResponseWriter, r *http.Request) {
			prefer = r.Header.Get("Prefer")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`"global\n"`))
		})
		res, err := cl.PushConfiguration(context.Background(), []byte("global\n"), client.Push{Version: 1, ReturnStored: returnStored})
		if err != nil {
			t.Fatal(err)
		}
		wantPrefer, wantStored := "return=minimal", ""
		if returnStored {
			wantPrefer, wantStored = "", "global\n"
		}
		if prefer != wantPrefer || res.Stored != wantStored {
			t.Errorf("ReturnStored %v: sent Prefer %q, got Stored %q; want %q and %q", returnStored, prefer, res.Stored, wantPrefer, wantStored)
		}
	}
}

func TestAFrozenInstanceCostsOneRequestTimeout(t *testing.T) {
	var requests atomic.Int32
	release := make(chan struct{})
	defer close(release)
	cl := serve(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	cl.RequestTimeout = 200 * time.Millisecond
	start := time.Now()
	_, err := cl.Version(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v; want a deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a frozen instance held the caller %s", d)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("a timed-out request was sent %d times, want once", n)
	}
}

func TestOnlyIdempotentRequestsAreRetried(t *testing.T) {
	var gets, posts atomic.Int32
	cl := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			gets.Add(1)
		} else {
			posts.Add(1)
		}
		// Drop the connection without an answer.
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	if _, err := cl.Version(context.Background()); err == nil {
		t.Error("GET with no answer: no error")
	}
	if _, err := cl.PushConfiguration(context.Background(), []byte("x\n"), client.Push{Version: 1}); err == nil {
		t.Error("POST with no answer: no error")
	}
	if gets.Load() != client.DefaultAttempts || posts.Load() != 1 {
		t.Errorf("GET sent %d times, POST %d times; want %d and 1", gets.Load(), posts.Load(), client.DefaultAttempts)
	}
}
