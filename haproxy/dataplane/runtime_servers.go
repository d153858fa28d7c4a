package dataplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/go-openapi/strfmt"
	"github.com/haproxytech/client-native/v5/models"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/runtime"
)

// Dynamic servers (HAProxy 2.6 "add server"/"del server") through the
// specification's runtime/servers endpoints. They change only what
// HAProxy runs: the stored configuration is not touched, so a reload
// drops a server added here unless the configuration pushed for it lists
// the server too. Changes hold s.mu, so they wait for a reload in
// progress and reach the worker that serves after it.

// runtimeStatus is the HTTP status for a runtime API error: 404 for a
// missing object, 409 for a duplicate, 400 for anything else HAProxy
// refused or the runtime client would not send (the request asked for
// something it cannot do), 500 when
// HAProxy could not be asked.
func runtimeStatus(err error) int {
	var ce *runtime.CommandError
	switch {
	case errors.Is(err, runtime.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, runtime.ErrExists):
		return http.StatusConflict
	case errors.As(err, &ce), errors.Is(err, runtime.ErrInvalid):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// requireBackend reads the backend query parameter, answering 400 when
// it is missing.
func requireBackend(w http.ResponseWriter, r *http.Request) (string, bool) {
	backend := r.URL.Query().Get("backend")
	if backend == "" {
		writeError(w, http.StatusBadRequest, "query parameter backend: required")
		return "", false
	}
	return backend, true
}

// readJSON decodes a JSON body into v, refusing unknown fields (a field
// the specification does not define would be silently ignored).
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

func (s *Server) getRuntimeServer(w http.ResponseWriter, r *http.Request) {
	backend, ok := requireBackend(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	st, err := s.rt.ServerState(r.Context(), backend, name)
	if err != nil {
		writeError(w, runtimeStatus(err), fmt.Sprintf("server %s/%s: %v", backend, name, err))
		return
	}
	writeJSON(w, http.StatusOK, runtimeServer(st))
}

// replaceRuntimeServer sets the operational state (set server health)
// and the administrative state (set server state) the body gives; empty
// fields are left alone. The answer is the state after the change.
func (s *Server) replaceRuntimeServer(w http.ResponseWriter, r *http.Request) {
	backend, ok := requireBackend(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	var want models.RuntimeServer
	if err := readJSON(r, &want); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := want.Validate(strfmt.Default); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.rt.ServerState(ctx, backend, name)
	if err != nil {
		writeError(w, runtimeStatus(err), fmt.Sprintf("server %s/%s: %v", backend, name, err))
		return
	}
	if want.OperationalState != "" && want.OperationalState != cur.Operational() {
		if err := s.rt.SetServerHealth(ctx, backend, name, want.OperationalState); err != nil {
			writeError(w, runtimeStatus(err), fmt.Sprintf("server %s/%s: %v", backend, name, err))
			return
		}
	}
	if want.AdminState != "" && want.AdminState != cur.Admin() {
		if err := s.rt.SetServerState(ctx, backend, name, want.AdminState); err != nil {
			writeError(w, runtimeStatus(err), fmt.Sprintf("server %s/%s: %v", backend, name, err))
			return
		}
	}
	st, err := s.rt.ServerState(ctx, backend, name)
	if err != nil {
		writeError(w, runtimeStatus(err), fmt.Sprintf("server %s/%s: %v", backend, name, err))
		return
	}
	writeJSON(w, http.StatusOK, runtimeServer(st))
}

// addRuntimeServer creates a server at runtime. HAProxy creates it in
// maintenance with its checks off; unless the body asks for maintenance
// ("maintenance": "enabled"), the server is then made ready and its
// health and agent checks (when the body has them) are started, so it
// serves at once. When a step after the creation fails, the server is
// deleted again: a refused request changes nothing.
func (s *Server) addRuntimeServer(w http.ResponseWriter, r *http.Request) {
	backend, ok := requireBackend(w, r)
	if !ok {
		return
	}
	var srv models.RuntimeAddServer
	if err := readJSON(r, &srv); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := srv.Validate(strfmt.Default); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if srv.Name == "" {
		writeError(w, http.StatusBadRequest, "name: the new server must have a name")
		return
	}
	args, err := addServerArgs(&srv)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rt.AddServer(ctx, backend, srv.Name, args); err != nil {
		writeError(w, runtimeStatus(err), fmt.Sprintf("add server %s/%s: %v", backend, srv.Name, err))
		return
	}
	var steps []func() error
	if srv.Check == "enabled" {
		steps = append(steps, func() error { return s.rt.EnableHealthCheck(ctx, backend, srv.Name) })
	}
	if srv.AgentCheck == "enabled" {
		steps = append(steps, func() error { return s.rt.EnableAgentCheck(ctx, backend, srv.Name) })
	}
	if srv.Maintenance != "enabled" {
		steps = append(steps, func() error { return s.rt.EnableServer(ctx, backend, srv.Name) })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			msg := fmt.Sprintf("add server %s/%s: %v", backend, srv.Name, err)
			if derr := s.rt.RemoveServer(ctx, backend, srv.Name); derr != nil {
				msg += fmt.Sprintf("; the server could not be deleted again: %v", derr)
			}
			writeError(w, runtimeStatus(err), msg)
			return
		}
	}
	writeJSON(w, http.StatusCreated, &srv)
}

// deleteRuntimeServer deletes a server now: maintenance, its remaining
// connections shut down, then "del server" (HAProxy deletes only a server
// in maintenance without connections). A caller that wants connections
// to end on their own drains the server first (PUT admin_state drain) and
// waits. 404 when the backend or server does not exist.
func (s *Server) deleteRuntimeServer(w http.ResponseWriter, r *http.Request) {
	backend, ok := requireBackend(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	ctx := r.Context()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.rt.ServerState(ctx, backend, name); err != nil {
		writeError(w, runtimeStatus(err), fmt.Sprintf("server %s/%s: %v", backend, name, err))
		return
	}
	if err := s.rt.RemoveServer(ctx, backend, name); err != nil {
		writeError(w, runtimeStatus(err), fmt.Sprintf("delete server %s/%s: %v", backend, name, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// addServerArgs turns the specification's runtime_add_server into the
// words of "add server" after the name: the address first, then every
// option the body sets. A toggle is "enabled" or "disabled" (the
// keyword, or nothing / its "no-" form where HAProxy's default is on);
// values must be single words (the runtime API splits on blanks). What
// HAProxy 2.6 cannot set on a dynamic server it refuses itself (400).
func addServerArgs(srv *models.RuntimeAddServer) ([]string, error) {
	if srv.Address == "" {
		return nil, errors.New("address: required")
	}
	addr := srv.Address
	if srv.Port != nil {
		addr += ":" + strconv.FormatInt(*srv.Port, 10)
	}
	args := []string{addr}
	var bad error
	toggle := func(field, v, on, off string) {
		switch v {
		case "":
		case "enabled":
			args = append(args, on)
		case "disabled":
			if off != "" {
				args = append(args, off)
			}
		default:
			if bad == nil {
				bad = fmt.Errorf("%s: %q is not enabled or disabled", field, v)
			}
		}
	}
	str := func(kw, v string) {
		if v != "" {
			args = append(args, kw, v)
		}
	}
	num := func(kw string, v *int64) {
		if v != nil {
			args = append(args, kw, strconv.FormatInt(*v, 10))
		}
	}
	toggle("maintenance", srv.Maintenance, "disabled", "")
	num("weight", srv.Weight)
	toggle("check", srv.Check, "check", "")
	str("addr", srv.HealthCheckAddress)
	num("port", srv.HealthCheckPort)
	num("inter", srv.Inter)
	num("fastinter", srv.Fastinter)
	num("downinter", srv.Downinter)
	num("rise", srv.Rise)
	num("fall", srv.Fall)
	toggle("check-ssl", srv.CheckSsl, "check-ssl", "")
	str("check-sni", srv.CheckSni)
	str("check-alpn", srv.CheckAlpn)
	str("check-proto", srv.CheckProto)
	toggle("check-send-proxy", srv.CheckSendProxy, "check-send-proxy", "")
	toggle("check_via_socks4", srv.CheckViaSocks4, "check-via-socks4", "")
	toggle("agent-check", srv.AgentCheck, "agent-check", "")
	str("agent-addr", srv.AgentAddr)
	num("agent-port", srv.AgentPort)
	num("agent-inter", srv.AgentInter)
	str("agent-send", srv.AgentSend)
	str("observe", srv.Observe)
	num("error-limit", srv.ErrorLimit)
	str("on-error", srv.OnError)
	str("on-marked-down", srv.OnMarkedDown)
	str("on-marked-up", srv.OnMarkedUp)
	toggle("backup", srv.Backup, "backup", "")
	num("maxconn", srv.Maxconn)
	num("maxqueue", srv.Maxqueue)
	num("minconn", srv.Minconn)
	num("slowstart", srv.Slowstart)
	num("pool-low-conn", srv.PoolLowConn)
	num("pool-max-conn", srv.PoolMaxConn)
	num("pool-purge-delay", srv.PoolPurgeDelay)
	str("id", srv.ID)
	str("track", srv.Track)
	str("source", srv.Source)
	str("proto", srv.Proto)
	toggle("tfo", srv.Tfo, "tfo", "")
	str("ws", srv.Ws)
	toggle("send-proxy", srv.SendProxy, "send-proxy", "")
	toggle("send-proxy-v2", srv.SendProxyV2, "send-proxy-v2", "")
	toggle("send_proxy_v2_ssl", srv.SendProxyV2Ssl, "send-proxy-v2-ssl", "")
	toggle("send_proxy_v2_ssl_cn", srv.SendProxyV2SslCn, "send-proxy-v2-ssl-cn", "")
	if len(srv.ProxyV2Options) > 0 {
		opts := ""
		for i, o := range srv.ProxyV2Options {
			if i > 0 {
				opts += ","
			}
			opts += o
		}
		args = append(args, "proxy-v2-options", opts)
	}
	toggle("ssl", srv.Ssl, "ssl", "")
	str("verify", srv.Verify)
	str("verifyhost", srv.Verifyhost)
	str("sni", srv.Sni)
	str("alpn", srv.Alpn)
	str("npn", srv.Npn)
	str("ca-file", srv.SslCafile)
	str("crl-file", srv.CrlFile)
	str("crt", srv.SslCertificate)
	str("ciphers", srv.Ciphers)
	str("ciphersuites", srv.Ciphersuites)
	str("ssl-min-ver", srv.SslMinVer)
	str("ssl-max-ver", srv.SslMaxVer)
	toggle("ssl_reuse", srv.SslReuse, "ssl-reuse", "no-ssl-reuse")
	toggle("tls_tickets", srv.TLSTickets, "tls-tickets", "no-tls-tickets")
	toggle("no_sslv3", srv.NoSslv3, "no-sslv3", "")
	toggle("no_tlsv10", srv.NoTlsv10, "no-tlsv10", "")
	toggle("no_tlsv11", srv.NoTlsv11, "no-tlsv11", "")
	toggle("no_tlsv12", srv.NoTlsv12, "no-tlsv12", "")
	toggle("no_tlsv13", srv.NoTlsv13, "no-tlsv13", "")
	toggle("force_sslv3", srv.ForceSslv3, "force-sslv3", "")
	toggle("force_tlsv10", srv.ForceTlsv10, "force-tlsv10", "")
	toggle("force_tlsv11", srv.ForceTlsv11, "force-tlsv11", "")
	toggle("force_tlsv12", srv.ForceTlsv12, "force-tlsv12", "")
	toggle("force_tlsv13", srv.ForceTlsv13, "force-tlsv13", "")
	if srv.Allow0rtt {
		args = append(args, "allow-0rtt")
	}
	if bad != nil {
		return nil, bad
	}
	return args, nil
}
