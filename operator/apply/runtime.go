package apply

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/haproxytech/client-native/v5/models"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
)

// runtimeServer is what HAProxy can change about one server without a
// reload.
type runtimeServer struct {
	Backend, Name string
	// AddrRuntime is set when the address is an IP and port (not a UNIX
	// socket or a DNS name), so SetServerAddr can change it.
	AddrRuntime bool
	Addr        string
	Port        int32
	Weight      int32
	// Maint is a server in maintenance: one retired at runtime (its
	// endpoint went away); otherwise ready.
	Maint bool
	// add is how to create the server at runtime (HAProxy's add server);
	// nil when it cannot be (a static server, or a view read from text).
	add *addSpec
}

// addSpec is what creating a dynamic server takes: the server and its
// backend's health check. The request is built only when the server is
// added; a view, which is mostly compared, holds a fraction of its size
// (13 MB less at 10,000 mappings).
type addSpec struct {
	check  *model.HealthCheck
	server model.Server
}

func (a *addSpec) request() *models.RuntimeAddServer { return addServer(a.check, a.server) }

// runtimeView is every server of a configuration, by backend, each
// backend's in configuration order.
type runtimeView map[string][]runtimeServer

// backendView is the runtime view of one backend's servers.
func backendView(b *model.Backend) []runtimeServer {
	if len(b.Servers) == 0 {
		return nil
	}
	v := make([]runtimeServer, 0, len(b.Servers))
	for _, s := range b.Servers {
		rs := runtimeServer{Backend: b.Name, Name: s.Name, Weight: s.Weight}
		if s.Socket == "" && s.Resolve == nil {
			// Only the weight of the others changes at runtime.
			rs.AddrRuntime, rs.Addr, rs.Port = true, s.Address, s.Port
		}
		if s.Dynamic {
			rs.add = &addSpec{check: b.Check, server: s}
		}
		v = append(v, rs)
	}
	return v
}

// addServer is how HAProxy's add server creates s: with every option of
// its line, since add server (2.6) applies no default-server line.
func addServer(check *model.HealthCheck, s model.Server) *models.RuntimeAddServer {
	a := &models.RuntimeAddServer{
		Name: s.Name, Address: s.Address, Port: ptrInt64(int64(s.Port)), Weight: ptrInt64(int64(s.Weight)),
	}
	if s.MaxConn != 0 {
		a.Maxconn = ptrInt64(int64(s.MaxConn))
	}
	switch {
	case s.SendProxy:
		a.SendProxyV2 = "enabled"
	case s.SendProxyV1:
		a.SendProxy = "enabled"
	}
	if s.TLS {
		a.Ssl = "enabled"
		a.Verify = s.Verify
		if a.Verify == "" {
			a.Verify = model.VerifyRequired
		}
		a.SslCafile, a.Verifyhost, a.SslCertificate = s.CAFile, s.VerifyHost, s.ClientCertificate
		if s.SNI != "" {
			a.Sni = "str(" + s.SNI + ")"
		}
	}
	if check != nil {
		a.Check = "enabled"
		a.Inter = ptrInt64(check.Interval.Milliseconds())
		a.Rise, a.Fall = ptrInt64(int64(check.Rise)), ptrInt64(int64(check.Fall))
		if check.ErrorLimit != 0 {
			a.Observe, a.ErrorLimit, a.OnError = "layer4", ptrInt64(int64(check.ErrorLimit)), "mark-down"
		}
	}
	return a
}

func ptrInt64(v int64) *int64 { return &v }

// runtimePlan is how running becomes desired without a reload.
type runtimePlan struct {
	// actions go with the push (X-Runtime-Actions).
	actions []client.Action
	// add are the servers to create once the push went through.
	add []runtimeServer
	// changes are what then runs, per backend that changes: desired,
	// and the servers retired (none: the backend has no servers left).
	// They are made to the running view the plan was worked out from,
	// in place (applyTo): a weight change among 10,000 backends copies
	// none of the others.
	changes map[string][]runtimeServer
}

// applyTo makes the plan's changes to running, the view it was worked
// out from, and returns it: what runs once the plan is carried out.
func (p runtimePlan) applyTo(running runtimeView) runtimeView {
	if running == nil {
		running = runtimeView{}
	}
	for b, servers := range p.changes {
		if len(servers) > 0 {
			running[b] = servers
		} else {
			delete(running, b)
		}
	}
	return running
}

// runtimeActions turns running into desired with the actions
// X-Runtime-Actions takes and the servers to add. A server leaving
// service is put in maintenance first (a server HAProxy runs that desired
// lacks is retired so: its connections end on their own, and it is gone
// at the next reload); one entering it is made ready last, once its
// address and weight are set. It is not possible (false) when a server
// desired is missing and cannot be added, or a static one would go.
// Backends go in name order.
func runtimeActions(running, desired runtimeView) (runtimePlan, bool) {
	backends := make(map[string]bool, len(desired))
	for b := range desired {
		backends[b] = true
	}
	for b := range running {
		backends[b] = true
	}
	return runtimeActionsIn(running, desired, slices.Collect(maps.Keys(backends)))
}

// runtimeActionsIn is runtimeActions where running and desired differ
// only in backends: the others run as desired.
func runtimeActionsIn(running, desired runtimeView, backends []string) (runtimePlan, bool) {
	plan := runtimePlan{changes: make(map[string][]runtimeServer, len(backends))}
	backends = slices.Clone(backends)
	slices.Sort(backends)
	for _, b := range slices.Compact(backends) {
		next, ok := backendActions(b, running[b], desired[b], &plan)
		if !ok {
			return plan, false
		}
		plan.changes[b] = next
	}
	return plan, true
}

// backendActions adds to plan what turns one backend's running servers
// into the desired ones, and returns what then runs.
func backendActions(backend string, running, desired []runtimeServer, plan *runtimePlan) ([]runtimeServer, bool) {
	was := make(map[string]*runtimeServer, len(running))
	for i := range running {
		was[running[i].Name] = &running[i]
	}
	wanted := make(map[string]bool, len(desired))
	for _, d := range desired {
		wanted[d.Name] = true
		r, ok := was[d.Name]
		if !ok {
			if d.add == nil {
				return nil, false
			}
			plan.add = append(plan.add, d)
			continue
		}
		if r.AddrRuntime != d.AddrRuntime {
			return nil, false
		}
		if d.Maint && !r.Maint {
			plan.actions = append(plan.actions, client.Action{"SetServerState", backend, d.Name, "maint"})
		}
		if d.AddrRuntime && (d.Addr != r.Addr || d.Port != r.Port) {
			plan.actions = append(plan.actions, client.Action{"SetServerAddr", backend, d.Name, d.Addr, strconv.Itoa(int(d.Port))})
		}
		if d.Weight != r.Weight {
			plan.actions = append(plan.actions, client.Action{"SetServerWeight", backend, d.Name, strconv.Itoa(int(d.Weight))})
		}
		if !d.Maint && r.Maint {
			plan.actions = append(plan.actions, client.Action{"SetServerState", backend, d.Name, "ready"})
		}
	}
	next := slices.Clone(desired)
	for _, r := range running {
		if wanted[r.Name] {
			continue
		}
		if !r.AddrRuntime {
			return nil, false
		}
		if !r.Maint {
			plan.actions = append(plan.actions, client.Action{"SetServerState", backend, r.Name, "maint"})
		}
		r.Maint, r.add = true, nil
		next = append(next, r)
	}
	return next, true
}

// makesReady says whether actions bring a server out of maintenance.
func makesReady(actions []client.Action) bool {
	for _, a := range actions {
		if len(a) == 4 && a[0] == "SetServerState" && a[3] == "ready" {
			return true
		}
	}
	return false
}

// canAdd says whether inst can carry out plan: servers to add need an API
// that adds them.
func (st *instanceState) canAdd(inst Instance, plan runtimePlan) bool {
	if len(plan.add) == 0 {
		return true
	}
	_, ok := inst.(ServerInstance)
	return ok
}

// addServers creates servers at runtime. A name HAProxy already runs (a
// server retired before this applier knew it) is deleted and added anew,
// so it gets the address and options asked for.
func (st *instanceState) addServers(ctx context.Context, i Instance, add []runtimeServer, out *Outcome) error {
	if len(add) == 0 {
		return nil
	}
	inst := i.(ServerInstance) // canAdd planned nothing otherwise
	for _, s := range add {
		a := *s.add.request()
		if st.literal {
			// The API hands file names to HAProxy as written.
			for _, f := range []*string{&a.SslCafile, &a.SslCertificate} {
				if *f != "" && !strings.HasPrefix(*f, "/") {
					*f = StorageName(*f)
				}
			}
		}
		err := inst.AddRuntimeServer(ctx, s.Backend, a)
		var apiErr *client.APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict {
			if err = inst.DeleteRuntimeServer(ctx, s.Backend, s.Name); err == nil {
				err = inst.AddRuntimeServer(ctx, s.Backend, a)
			}
		}
		if err != nil {
			return fmt.Errorf("add server %s/%s: %w", s.Backend, s.Name, err)
		}
		out.ServersAdded = append(out.ServersAdded, s.Backend+"/"+s.Name)
	}
	return nil
}

// dynamicBackends names the backends of want whose servers come and go at
// runtime (they have a Template); nil without a model.
func dynamicBackends(want target) map[string]bool {
	if !want.hasModel {
		return nil
	}
	return want.digested().dynamic
}
