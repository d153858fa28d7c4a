package dataplane

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
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
func (s *Server) runActions(actions []action) error {
	for _, a := range actions {
		if err := s.runAction(a); err != nil {
			return fmt.Errorf("%s %s: %w", a.Name, strings.Join(a.Args, " "), err)
		}
	}
	return nil
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

func (s *Server) getRuntimeServers(w http.ResponseWriter, r *http.Request) {
	backend := r.URL.Query().Get("backend")
	if backend == "" {
		writeError(w, http.StatusBadRequest, "backend is required")
		return
	}
	servers, err := s.rt.GetServersState(backend)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, servers)
}
