package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haproxytech/client-native/v5/models"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
)

// TestAddedServerIsCreatedInMaintenanceThenSetReady: the server is
// created in maintenance and set ready with PUT admin_state ready (HAProxy
// 2.6 leaves a server created "enabled" out of the load balancing).
func TestAddedServerIsCreatedInMaintenanceThenSetReady(t *testing.T) {
	state := "maint"
	var sent []string
	cl := serve(t, func(w http.ResponseWriter, r *http.Request) {
		sent = append(sent, r.Method+" "+r.URL.Path)
		switch {
		case r.Method == http.MethodPost:
			var s models.RuntimeAddServer
			_ = json.NewDecoder(r.Body).Decode(&s)
			if r.URL.Query().Get("backend") != "be" || s.Maintenance != "enabled" {
				t.Errorf("backend %q, maintenance %q; want be, enabled", r.URL.Query().Get("backend"), s.Maintenance)
			}
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"name":"s1","address":"127.0.0.1"}`))
		case r.Method == http.MethodPut:
			var s models.RuntimeServer
			_ = json.NewDecoder(r.Body).Decode(&s)
			state = s.AdminState
			_ = json.NewEncoder(w).Encode(&models.RuntimeServer{Name: "s1", AdminState: state})
		default:
			_ = json.NewEncoder(w).Encode(&models.RuntimeServer{Name: "s1", AdminState: state})
		}
	})
	if err := cl.AddRuntimeServer(context.Background(), "be", models.RuntimeAddServer{Name: "s1", Address: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if state != "ready" {
		t.Errorf("server left %s after %v", state, sent)
	}
}

// TestDeleteRetriesWhileConnectionsRemain: an API that refuses the delete
// while HAProxy counts connections (the official one does not shut them
// down) is asked again until it succeeds.
func TestDeleteRetriesWhileConnectionsRemain(t *testing.T) {
	var deletes atomic.Int32
	cl := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodPut:
			_ = json.NewEncoder(w).Encode(&models.RuntimeServer{Name: "s1", AdminState: "maint"})
		case http.MethodDelete:
			if deletes.Add(1) < 3 {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"code":500,"message":"Server still has connections attached to it, cannot remove it."}`))
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	})
	cl.PollInterval = time.Millisecond
	if err := cl.DeleteRuntimeServer(context.Background(), "be", "s1"); err != nil {
		t.Fatal(err)
	}
	if deletes.Load() != 3 {
		t.Errorf("%d deletes; want 3", deletes.Load())
	}
	// Another refusal is returned at once.
	cl2 := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodPut {
			_ = json.NewEncoder(w).Encode(&models.RuntimeServer{Name: "s1", AdminState: "maint"})
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"code":400,"message":"no"}`))
	})
	if err := cl2.DeleteRuntimeServer(context.Background(), "be", "s1"); !client.IsStatus(err, http.StatusBadRequest) {
		t.Errorf("got %v; want the 400", err)
	}
}
