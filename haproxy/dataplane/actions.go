package dataplane

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/haproxytech/client-native/v5/models"
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

// runActions applies actions in order through client-native's runtime.
// When one fails, the ones already applied are undone (in reverse order)
// where HAProxy lets us read the previous value back; the error says what
// failed and what could not be undone.
func (s *Server) runActions(actions []action) error {
	var undo []func() error
	var undoNames []string
	for _, a := range actions {
		u, uerr := s.undoFor(a)
		if err := s.runAction(a); err != nil {
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
// HAProxy does not report get nil.
func (s *Server) undoFor(a action) (func() error, error) {
	arg := a.Args
	switch a.Name {
	case "SetServerWeight":
		out, err := s.rt.ExecuteRaw(fmt.Sprintf("get weight %s/%s", arg[0], arg[1]))
		if err != nil || len(out) == 0 {
			return nil, fmt.Errorf("read weight: %v", err)
		}
		// "50 (initial 100)"
		weight, _, _ := strings.Cut(strings.TrimSpace(out[0]), " ")
		if _, err := strconv.Atoi(weight); err != nil {
			return nil, fmt.Errorf("read weight: %q", out[0])
		}
		return func() error { return s.rt.SetServerWeight(arg[0], arg[1], weight) }, nil
	case "SetServerState":
		srv, err := s.rt.GetServerState(arg[0], arg[1])
		if err != nil || srv == nil {
			return nil, fmt.Errorf("read state: %v", err)
		}
		state := "ready"
		switch srv.AdminState {
		case "maint", "drain":
			state = srv.AdminState
		}
		return func() error { return s.rt.SetServerState(arg[0], arg[1], state) }, nil
	case "SetServerAddr":
		srv, err := s.rt.GetServerState(arg[0], arg[1])
		if err != nil || srv == nil || srv.Port == nil {
			return nil, fmt.Errorf("read address: %v", err)
		}
		addr, port := srv.Address, int(*srv.Port)
		return func() error { return s.rt.SetServerAddr(arg[0], arg[1], addr, port) }, nil
	}
	return nil, fmt.Errorf("%s cannot be read back", a.Name)
}

func (s *Server) runAction(a action) error {
	arg := a.Args
	atoi := func(v string) (int, error) { return strconv.Atoi(v) }
	switch a.Name {
	case "SetServerWeight":
		return s.rt.SetServerWeight(arg[0], arg[1], arg[2])
	case "SetServerAddr":
		port, err := atoi(arg[3])
		if err != nil {
			return err
		}
		return s.rt.SetServerAddr(arg[0], arg[1], arg[2], port)
	case "SetServerState":
		return s.rt.SetServerState(arg[0], arg[1], arg[2])
	case "SetServerCheckPort":
		port, err := atoi(arg[2])
		if err != nil {
			return err
		}
		return s.rt.SetServerCheckPort(arg[0], arg[1], port)
	case "SetFrontendMaxConn":
		n, err := atoi(arg[1])
		if err != nil {
			return err
		}
		return s.rt.SetFrontendMaxConn(arg[0], n)
	case "EnableAgentCheck":
		return s.rt.EnableAgentCheck(arg[0], arg[1])
	case "DisableAgentCheck":
		return s.rt.DisableAgentCheck(arg[0], arg[1])
	case "SetServerAgentAddr":
		return s.rt.SetServerAgentAddr(arg[0], arg[1], arg[2])
	case "SetServerAgentSend":
		return s.rt.SetServerAgentSend(arg[0], arg[1], arg[2])
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
	servers, err := s.rt.GetServersState(backend)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("read the servers of %s: %v", backend, err))
		return
	}
	if len(servers) == 0 {
		// client-native reports an unknown backend as no servers; ask
		// HAProxy which it is.
		out, err := s.rt.ExecuteRaw("show servers state " + backend)
		if err != nil {
			writeError(w, http.StatusInternalServerError, fmt.Sprintf("read the servers of %s: %v", backend, err))
			return
		}
		if strings.Contains(strings.Join(out, "\n"), "Can't find backend") {
			writeError(w, http.StatusNotFound, fmt.Sprintf("backend %s not found", backend))
			return
		}
		servers = models.RuntimeServers{}
	}
	writeJSON(w, http.StatusOK, servers)
}
