package runtime

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// server names the command's target, after checking both words.
func server(what, backend, name string) (string, error) {
	if err := checkArgs(what, backend, name); err != nil {
		return "", err
	}
	if strings.Contains(backend, "/") || strings.Contains(name, "/") {
		return "", invalid("%s: backend %q and server %q may not contain '/'", what, backend, name)
	}
	return backend + "/" + name, nil
}

// weightArg is a weight "set server ... weight" takes: 0 to 256, or a
// percentage of the initial weight.
var weightArg = regexp.MustCompile(`^[0-9]{1,3}%?$`)

// SetServerWeight sets a server's weight (0–256, or "N%" of its initial
// weight).
func (c *Client) SetServerWeight(ctx context.Context, backend, name, weight string) error {
	srv, err := server("set server weight", backend, name)
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(strings.TrimSuffix(weight, "%"))
	if !weightArg.MatchString(weight) || (!strings.HasSuffix(weight, "%") && n > 256) {
		return invalid("set server %s weight: %q is not a weight (0-256 or N%%)", srv, weight)
	}
	_, err = c.run(ctx, "set server "+srv+" weight "+weight, "", empty)
	return err
}

// getWeight matches "get weight"'s answer: "<current> (initial <n>)".
var getWeight = regexp.MustCompile(`^([0-9]+) \(initial ([0-9]+)\)$`)

// ServerWeight is a server's current and initial (configured) weight.
func (c *Client) ServerWeight(ctx context.Context, backend, name string) (current, initial int, err error) {
	srv, err := server("get weight", backend, name)
	if err != nil {
		return 0, 0, err
	}
	msg, err := c.run(ctx, "get weight "+srv, "", getWeight.MatchString)
	if err != nil {
		return 0, 0, err
	}
	m := getWeight.FindStringSubmatch(msg)
	current, _ = strconv.Atoi(m[1])
	initial, _ = strconv.Atoi(m[2])
	return current, initial, nil
}

// addrChanged matches the answers of "set server ... addr" that mean it
// took effect (HAProxy reports them as warnings, and an invalid address
// as a warning too).
var addrChanged = regexp.MustCompile(`^(IP changed from |no need to change the addr)`)

// SetServerAddr sets a server's address, and its port when port > 0.
func (c *Client) SetServerAddr(ctx context.Context, backend, name, addr string, port int) error {
	srv, err := server("set server addr", backend, name)
	if err != nil {
		return err
	}
	if err := checkArgs("set server "+srv+" addr", addr); err != nil {
		return err
	}
	if port < 0 || port > 65535 {
		return invalid("set server %s addr: port %d out of range", srv, port)
	}
	cmd := "set server " + srv + " addr " + addr
	if port > 0 {
		cmd += " port " + strconv.Itoa(port)
	}
	_, err = c.run(ctx, cmd, "", func(msg string) bool {
		return addrChanged.MatchString(msg) && !strings.Contains(msg, "Invalid")
	})
	return err
}

// Administrative states "set server ... state" takes.
const (
	StateReady = "ready"
	StateDrain = "drain"
	StateMaint = "maint"
)

// SetServerState sets a server's administrative state: ready, drain or
// maint.
func (c *Client) SetServerState(ctx context.Context, backend, name, state string) error {
	srv, err := server("set server state", backend, name)
	if err != nil {
		return err
	}
	switch state {
	case StateReady, StateDrain, StateMaint:
	default:
		return invalid("set server %s state: %q is not ready, drain or maint", srv, state)
	}
	_, err = c.run(ctx, "set server "+srv+" state "+state, "", empty)
	return err
}

// Operational states "set server ... health" takes.
const (
	HealthUp       = "up"
	HealthStopping = "stopping"
	HealthDown     = "down"
)

// SetServerHealth forces a server's operational state: up, stopping or
// down (until the next health check result, when checks run).
func (c *Client) SetServerHealth(ctx context.Context, backend, name, health string) error {
	srv, err := server("set server health", backend, name)
	if err != nil {
		return err
	}
	switch health {
	case HealthUp, HealthStopping, HealthDown:
	default:
		return invalid("set server %s health: %q is not up, stopping or down", srv, health)
	}
	_, err = c.run(ctx, "set server "+srv+" health "+health, "", empty)
	return err
}

// SetServerCheckPort sets the port health checks use (1–65535); the
// server must have checks.
func (c *Client) SetServerCheckPort(ctx context.Context, backend, name string, port int) error {
	srv, err := server("set server check-port", backend, name)
	if err != nil {
		return err
	}
	if port < 1 || port > 65535 {
		return invalid("set server %s check-port: port %d out of range", srv, port)
	}
	_, err = c.run(ctx, "set server "+srv+" check-port "+strconv.Itoa(port), "", empty)
	return err
}

// SetServerAgentAddr sets the agent check's address.
func (c *Client) SetServerAgentAddr(ctx context.Context, backend, name, addr string) error {
	srv, err := server("set server agent-addr", backend, name)
	if err != nil {
		return err
	}
	if err := checkArgs("set server "+srv+" agent-addr", addr); err != nil {
		return err
	}
	_, err = c.run(ctx, "set server "+srv+" agent-addr "+addr, "", empty)
	return err
}

// SetServerAgentSend sets the string the agent check sends (one word).
func (c *Client) SetServerAgentSend(ctx context.Context, backend, name, send string) error {
	srv, err := server("set server agent-send", backend, name)
	if err != nil {
		return err
	}
	if err := checkArgs("set server "+srv+" agent-send", send); err != nil {
		return err
	}
	_, err = c.run(ctx, "set server "+srv+" agent-send "+send, "", empty)
	return err
}

// simple runs "<verb> <backend>/<server>" commands that answer nothing.
func (c *Client) simple(ctx context.Context, verb, backend, name string) error {
	srv, err := server(verb, backend, name)
	if err != nil {
		return err
	}
	_, err = c.run(ctx, verb+" "+srv, "", empty)
	return err
}

// EnableAgentCheck resumes a configured agent check.
func (c *Client) EnableAgentCheck(ctx context.Context, backend, name string) error {
	return c.simple(ctx, "enable agent", backend, name)
}

// DisableAgentCheck stops an agent check.
func (c *Client) DisableAgentCheck(ctx context.Context, backend, name string) error {
	return c.simple(ctx, "disable agent", backend, name)
}

// EnableHealthCheck starts a server's configured health checks (dynamic
// servers added with "check" start without them).
func (c *Client) EnableHealthCheck(ctx context.Context, backend, name string) error {
	return c.simple(ctx, "enable health", backend, name)
}

// DisableHealthCheck stops a server's health checks.
func (c *Client) DisableHealthCheck(ctx context.Context, backend, name string) error {
	return c.simple(ctx, "disable health", backend, name)
}

// EnableServer takes a server out of maintenance (as state ready).
func (c *Client) EnableServer(ctx context.Context, backend, name string) error {
	return c.simple(ctx, "enable server", backend, name)
}

// DisableServer puts a server into maintenance.
func (c *Client) DisableServer(ctx context.Context, backend, name string) error {
	return c.simple(ctx, "disable server", backend, name)
}

// ShutdownSessions closes every connection a server carries.
func (c *Client) ShutdownSessions(ctx context.Context, backend, name string) error {
	return c.simple(ctx, "shutdown sessions server", backend, name)
}

// SetFrontendMaxConn sets a frontend's maxconn (≥ 0).
func (c *Client) SetFrontendMaxConn(ctx context.Context, frontend string, maxconn int) error {
	if err := checkArgs("set maxconn frontend", frontend); err != nil {
		return err
	}
	if maxconn < 0 {
		return invalid("set maxconn frontend %s: %d is negative", frontend, maxconn)
	}
	_, err := c.run(ctx, "set maxconn frontend "+frontend+" "+strconv.Itoa(maxconn), "", empty)
	return err
}

// AddServer creates server name in backend at runtime (HAProxy 2.6 "add
// server"): args are the server line's words after the name, address
// first ("127.0.0.1:8080", "weight", "10", "check", ...). HAProxy creates
// it in maintenance, with health checks off; EnableHealthCheck and
// EnableServer start it. The backend needs a dynamic balance algorithm;
// "default-server" lines do not apply. A name in use matches ErrExists,
// an unknown backend ErrNotFound.
func (c *Client) AddServer(ctx context.Context, backend, name string, args []string) error {
	srv, err := server("add server", backend, name)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return invalid("add server %s: no address", srv)
	}
	if err := checkArgs("add server "+srv, args...); err != nil {
		return err
	}
	_, err = c.run(ctx, "add server "+srv+" "+strings.Join(args, " "), "", exactly("New server registered."))
	return err
}

// DeleteServer deletes a server HAProxy runs ("del server"). HAProxy
// deletes only a server in maintenance without connections; RemoveServer
// does what it takes.
func (c *Client) DeleteServer(ctx context.Context, backend, name string) error {
	srv, err := server("del server", backend, name)
	if err != nil {
		return err
	}
	_, err = c.run(ctx, "del server "+srv, "", exactly("Server deleted."))
	return err
}

// ErrStillConnected is what DeleteServer's error matches while the server
// still carries connections (HAProxy: "Server still has connections
// attached to it, cannot remove it.").
var ErrStillConnected = errors.New("server still has connections")

// RemoveServer deletes a server now: it is put into maintenance (no new
// connections), its remaining connections are shut down, then it is
// deleted, retrying while HAProxy still counts connections (they close
// asynchronously) until ctx ends. A server already gone is not an error.
func (c *Client) RemoveServer(ctx context.Context, backend, name string) error {
	if err := c.SetServerState(ctx, backend, name, StateMaint); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	if err := c.ShutdownSessions(ctx, backend, name); err != nil {
		return err
	}
	wait := 2 * time.Millisecond
	for {
		err := c.DeleteServer(ctx, backend, name)
		if err == nil || errors.Is(err, ErrNotFound) {
			return nil
		}
		if !errors.Is(err, ErrStillConnected) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ctx.Err(), err)
		case <-time.After(wait):
		}
		if wait *= 2; wait > 100*time.Millisecond {
			wait = 100 * time.Millisecond
		}
	}
}

// ServerState is one server of "show servers state".
type ServerState struct {
	BackendID, Backend string
	ID, Name           string
	Addr               string
	// Port is 0 when the server has none.
	Port int
	// OpState: 0 stopped, 1 starting, 2 running, 3 stopping.
	OpState int
	// AdminState is HAProxy's administrative flag set (SRV_ADMF_*).
	AdminState int
	// UserWeight is the current weight, InitialWeight the configured one.
	UserWeight, InitialWeight int
	CheckPort                 int
	AgentAddr                 string
	AgentPort                 int
	UseSSL                    bool
	FQDN                      string
}

// Admin is the administrative state as the Data Plane API names it:
// maint (forced, inherited or resolution maintenance: HAProxy's
// SRV_ADMF_MAINT), drain, or ready. The configuration's "disabled" flag
// (0x04) only records how the server started: one set ready since keeps
// it and serves.
func (s ServerState) Admin() string {
	switch {
	case s.AdminState&(0x01|0x02|0x20) != 0:
		return StateMaint
	case s.AdminState&(0x08|0x10) != 0:
		return StateDrain
	}
	return StateReady
}

// Operational is the operational state as the Data Plane API names it:
// down (stopped), up (starting or running), stopping.
func (s ServerState) Operational() string {
	switch s.OpState {
	case 0:
		return HealthDown
	case 3:
		return HealthStopping
	}
	return HealthUp
}

// ServersState lists a backend's servers ("show servers state"); an
// unknown backend matches ErrNotFound.
func (c *Client) ServersState(ctx context.Context, backend string) ([]ServerState, error) {
	if err := checkArgs("show servers state", backend); err != nil {
		return nil, err
	}
	cmd := "show servers state " + backend
	out, err := c.listing(ctx, cmd)
	if err != nil {
		return nil, err
	}
	servers, err := ParseServersState(out)
	if err != nil {
		return nil, fmt.Errorf("runtime API %q: %w", cmd, err)
	}
	return servers, nil
}

// ServerState is one server's state; an unknown backend or server matches
// ErrNotFound.
func (c *Client) ServerState(ctx context.Context, backend, name string) (ServerState, error) {
	servers, err := c.ServersState(ctx, backend)
	if err != nil {
		return ServerState{}, err
	}
	for _, s := range servers {
		if s.Name == name {
			return s, nil
		}
	}
	return ServerState{}, &CommandError{Command: "show servers state " + backend, Message: "no server " + name, kind: ErrNotFound}
}

// ParseServersState reads the answer of "show servers state": the format
// version line (only version 1 is known), a "# " header naming the
// columns, then one line per server.
func ParseServersState(out string) ([]ServerState, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "1" {
		return nil, fmt.Errorf("unknown servers state format: %q", firstLine(out))
	}
	var cols []string
	servers := []ServerState{}
	for _, line := range lines[1:] {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			cols = strings.Fields(strings.TrimPrefix(line, "#"))
			continue
		}
		if cols == nil {
			return nil, fmt.Errorf("server line before the header: %q", line)
		}
		f := strings.Fields(line)
		if len(f) != len(cols) {
			return nil, fmt.Errorf("server line has %d fields, the header %d: %q", len(f), len(cols), line)
		}
		v := map[string]string{}
		for i, c := range cols {
			v[c] = f[i]
		}
		var s ServerState
		var perr error
		num := func(col string) int {
			x, ok := v[col]
			if !ok || x == "-" {
				return 0
			}
			n, err := strconv.Atoi(x)
			if err != nil && perr == nil {
				perr = fmt.Errorf("column %s: %q is not a number in %q", col, x, line)
			}
			return n
		}
		text := func(col string) string {
			if x := v[col]; x != "-" {
				return x
			}
			return ""
		}
		for _, need := range []string{"be_id", "be_name", "srv_id", "srv_name", "srv_addr", "srv_op_state", "srv_admin_state", "srv_uweight", "srv_iweight"} {
			if _, ok := v[need]; !ok {
				return nil, fmt.Errorf("servers state has no column %s", need)
			}
		}
		s.BackendID, s.Backend, s.ID, s.Name, s.Addr = v["be_id"], v["be_name"], v["srv_id"], v["srv_name"], v["srv_addr"]
		s.OpState, s.AdminState = num("srv_op_state"), num("srv_admin_state")
		s.UserWeight, s.InitialWeight = num("srv_uweight"), num("srv_iweight")
		s.Port, s.CheckPort, s.AgentPort = num("srv_port"), num("srv_check_port"), num("srv_agent_port")
		s.AgentAddr, s.FQDN = text("srv_agent_addr"), text("srv_fqdn")
		s.UseSSL = v["srv_use_ssl"] == "1"
		if perr != nil {
			return nil, perr
		}
		servers = append(servers, s)
	}
	if cols == nil {
		return nil, errors.New("servers state has no header")
	}
	return servers, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
