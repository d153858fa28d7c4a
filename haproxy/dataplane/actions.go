package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/haproxytech/client-native/v5/models"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/runtime"
)

// action is one entry of X-Runtime-Actions: a client-native runtime method
// name and its arguments.
type action struct {
	Name string
	Args []string
}

// arity is how many arguments each accepted action takes.
var arity = map[string]int{
	"SetServerWeight":    3,
	"SetServerAddr":      4,
	"SetServerState":     3,
	"SetServerCheckPort": 3,
	"SetFrontendMaxConn": 2,
	"EnableAgentCheck":   2,
	"DisableAgentCheck":  2,
	"SetServerAgentAddr": 3,
	"SetServerAgentSend": 3,
}

// parseActions reads "Action arg ...;Action arg ...". Raw runtime commands
// are refused: only the named actions are accepted.
func parseActions(header string) ([]action, error) {
	var out []action
	for _, part := range strings.Split(header, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		f := strings.Split(part, " ")
		n, known := arity[f[0]]
		if !known {
			return nil, fmt.Errorf("X-Runtime-Actions: unknown action %q", f[0])
		}
		args := f[1:]
		if f[0] == "SetServerAgentSend" && len(args) > n {
			args = append(args[:n-1], strings.Join(args[n-1:], " "))
		}
		if len(args) != n {
			return nil, fmt.Errorf("X-Runtime-Actions: %s takes %d arguments, got %d", f[0], n, len(args))
		}
		out = append(out, action{Name: f[0], Args: args})
	}
	return out, nil
}

// runActions applies actions in order through the runtime API. When one
// fails, the ones already applied are undone (in reverse order) where
// HAProxy lets us read the previous value back; the error says what
// failed and what could not be undone.
func (s *Server) runActions(ctx context.Context, actions []action) error {
	var undo []func() error
	var undoNames []string
	for _, a := range actions {
		u, uerr := s.undoFor(ctx, a)
		if err := s.runAction(ctx, a); err != nil {
			err = fmt.Errorf("runtime action %s %s failed: %w", a.Name, strings.Join(a.Args, " "), err)
			var notUndone []string
			for i := len(undo) - 1; i >= 0; i-- {
				if undo[i] == nil {
					notUndone = append(notUndone, undoNames[i])
					continue
				}
				if uerr := undo[i](); uerr != nil {
					notUndone = append(notUndone, fmt.Sprintf("%s (%v)", undoNames[i], uerr))
				}
			}
			if len(notUndone) > 0 {
				return fmt.Errorf("%w; these applied actions could not be undone: %s", err, strings.Join(notUndone, "; "))
			}
			if len(undo) > 0 {
				return fmt.Errorf("%w; the %d actions applied before it were undone", err, len(undo))
			}
			return err
		}
		if uerr != nil {
			u = nil
		}
		undo = append(undo, u)
		undoNames = append(undoNames, a.Name+" "+strings.Join(a.Args, " "))
	}
	return nil
}

// undoFor reads what a puts back if a later action fails: the weight,
// administrative state or address before it. Actions whose previous value
// HAProxy does not report get nil. Undoing runs even when ctx has ended:
// a half-applied list is worse than a late answer.
func (s *Server) undoFor(ctx context.Context, a action) (func() error, error) {
	arg := a.Args
	later := context.WithoutCancel(ctx)
	switch a.Name {
	case "SetServerWeight":
		weight, _, err := s.rt.ServerWeight(ctx, arg[0], arg[1])
		if err != nil {
			return nil, fmt.Errorf("read weight: %w", err)
		}
		return func() error { return s.rt.SetServerWeight(later, arg[0], arg[1], strconv.Itoa(weight)) }, nil
	case "SetServerState":
		srv, err := s.rt.ServerState(ctx, arg[0], arg[1])
		if err != nil {
			return nil, fmt.Errorf("read state: %w", err)
		}
		state := srv.Admin()
		return func() error { return s.rt.SetServerState(later, arg[0], arg[1], state) }, nil
	case "SetServerAddr":
		srv, err := s.rt.ServerState(ctx, arg[0], arg[1])
		if err != nil {
			return nil, fmt.Errorf("read address: %w", err)
		}
		addr, port := srv.Addr, srv.Port
		return func() error { return s.rt.SetServerAddr(later, arg[0], arg[1], addr, port) }, nil
	}
	return nil, fmt.Errorf("%s cannot be read back", a.Name)
}

func (s *Server) runAction(ctx context.Context, a action) error {
	arg := a.Args
	switch a.Name {
	case "SetServerWeight":
		return s.rt.SetServerWeight(ctx, arg[0], arg[1], arg[2])
	case "SetServerAddr":
		port, err := strconv.Atoi(arg[3])
		if err != nil {
			return fmt.Errorf("port %q: %w", arg[3], err)
		}
		return s.rt.SetServerAddr(ctx, arg[0], arg[1], arg[2], port)
	case "SetServerState":
		return s.rt.SetServerState(ctx, arg[0], arg[1], arg[2])
	case "SetServerCheckPort":
		port, err := strconv.Atoi(arg[2])
		if err != nil {
			return fmt.Errorf("port %q: %w", arg[2], err)
		}
		return s.rt.SetServerCheckPort(ctx, arg[0], arg[1], port)
	case "SetFrontendMaxConn":
		n, err := strconv.Atoi(arg[1])
		if err != nil {
			return fmt.Errorf("maxconn %q: %w", arg[1], err)
		}
		return s.rt.SetFrontendMaxConn(ctx, arg[0], n)
	case "EnableAgentCheck":
		return s.rt.EnableAgentCheck(ctx, arg[0], arg[1])
	case "DisableAgentCheck":
		return s.rt.DisableAgentCheck(ctx, arg[0], arg[1])
	case "SetServerAgentAddr":
		return s.rt.SetServerAgentAddr(ctx, arg[0], arg[1], arg[2])
	case "SetServerAgentSend":
		return s.rt.SetServerAgentSend(ctx, arg[0], arg[1], arg[2])
	}
	return fmt.Errorf("unknown action")
}

// getRuntimeServers lists a backend's servers as HAProxy runs them: an
// array (empty for a backend without servers), or 404 with the error
// model for a backend HAProxy does not have.
func (s *Server) getRuntimeServers(w http.ResponseWriter, r *http.Request) {
	backend := r.URL.Query().Get("backend")
	if backend == "" {
		writeError(w, http.StatusBadRequest, "query parameter backend: required")
		return
	}
	state, err := s.rt.ServersState(r.Context(), backend)
	if errors.Is(err, runtime.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("backend %s not found", backend))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("read the servers of %s: %v", backend, err))
		return
	}
	servers := models.RuntimeServers{}
	for _, st := range state {
		servers = append(servers, runtimeServer(st))
	}
	writeJSON(w, http.StatusOK, servers)
}

// runtimeServer is the specification's runtime_server for a server of
// "show servers state".
func runtimeServer(st runtime.ServerState) *models.RuntimeServer {
	out := &models.RuntimeServer{
		ID: st.ID, Name: st.Name, Address: st.Addr,
		AdminState: st.Admin(), OperationalState: st.Operational(),
	}
	if st.Port > 0 {
		p := int64(st.Port)
		out.Port = &p
	}
	return out
}
