package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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

type serverKey struct{ backend, name string }

// runtimeView is every server of a configuration in configuration order.
type runtimeView []runtimeServer

func (v runtimeView) index() map[serverKey]runtimeServer {
	m := make(map[serverKey]runtimeServer, len(v))
	for _, s := range v {
		m[serverKey{s.Backend, s.Name}] = s
	}
	return m
}

// viewOf is the runtime view of a model, as render writes it.
func viewOf(cfg *model.Config) runtimeView {
	n := 0
	for i := range cfg.Backends {
		n += len(cfg.Backends[i].Servers)
	}
	v := make(runtimeView, 0, n)
	for _, b := range cfg.Backends {
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

// structureDigest identifies a model with everything runtime actions can
// change left out: two models with the same digest render to texts that
// differ only in server addresses and weights and in which dynamic
// servers (a Service's endpoints) each backend has, and load the same map
// files, whose entries may differ. Secrets count through their digest;
// certificate contents are synchronised on their own.
//
// The model is hashed one section at a time through one encoder, not
// copied and marshalled whole: at 10,000 mappings that was megabytes per
// reconcile.
func structureDigest(cfg *model.Config) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	// Encoding plain data into a hash cannot fail.
	put := func(kind string, v any) {
		h.Write([]byte(kind))
		_ = enc.Encode(v)
	}
	c := *cfg
	if c.Stats != nil {
		st := *c.Stats
		h.Write([]byte("stats password\x00"))
		h.Write(st.Password.Reveal())
		h.Write([]byte{0})
		st.Password = nil
		c.Stats = &st
	}
	c.Frontends, c.Backends, c.Maps, c.Certificates = nil, nil, nil, nil
	put("config", &c)
	for i := range cfg.Frontends {
		// Sources name objects for messages; render does not write them.
		f := cfg.Frontends[i]
		f.Sources = nil
		put("frontend", &f)
	}
	var static []model.Server
	for i := range cfg.Backends {
		b := cfg.Backends[i]
		// Which mapping holds a pool's backend, and its share, are not
		// written in the text.
		b.Members, b.Sources = nil, nil
		// Dynamic servers come and go at runtime: the backend's Template
		// is their structure.
		static = static[:0]
		for _, s := range b.Servers {
			if s.Dynamic {
				continue
			}
			s.Weight = 0
			if s.Socket == "" && s.Resolve == nil {
				s.Address, s.Port = "", 0
			}
			static = append(static, s)
		}
		b.Servers = static
		put("backend", &b)
	}
	// Map entries change at runtime; which files are loaded does not.
	for i := range cfg.Maps {
		put("map", cfg.Maps[i].Name)
	}
	for i := range cfg.Certificates {
		put("certificate", cfg.Certificates[i].File)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// runtimePlan is how running becomes desired without a reload.
type runtimePlan struct {
	// actions go with the push (X-Runtime-Actions).
	actions []client.Action
	// add are the servers to create once the push went through.
	add []runtimeServer
	// next is what then runs: desired, and the servers retired.
	next runtimeView
}

// runtimeActions turns running into desired with the actions
// X-Runtime-Actions takes and the servers to add. A server leaving
// service is put in maintenance first (a server HAProxy runs that desired
// lacks is retired so: its connections end on their own, and it is gone
// at the next reload); one entering it is made ready last, once its
// address and weight are set. It is not possible (false) when a server
// desired is missing and cannot be added, or a static one would go.
func runtimeActions(running, desired runtimeView) (runtimePlan, bool) {
	var plan runtimePlan
	was := running.index()
	wanted := make(map[serverKey]bool, len(desired))
	for _, d := range desired {
		k := serverKey{d.Backend, d.Name}
		wanted[k] = true
		r, ok := was[k]
		if !ok {
			if d.add == nil {
				return plan, false
			}
			plan.add = append(plan.add, d)
			continue
		}
		if r.AddrRuntime != d.AddrRuntime {
			return plan, false
		}
		if d.Maint && !r.Maint {
			plan.actions = append(plan.actions, client.Action{"SetServerState", d.Backend, d.Name, "maint"})
		}
		if d.AddrRuntime && (d.Addr != r.Addr || d.Port != r.Port) {
			plan.actions = append(plan.actions, client.Action{"SetServerAddr", d.Backend, d.Name, d.Addr, strconv.Itoa(int(d.Port))})
		}
		if d.Weight != r.Weight {
			plan.actions = append(plan.actions, client.Action{"SetServerWeight", d.Backend, d.Name, strconv.Itoa(int(d.Weight))})
		}
		if !d.Maint && r.Maint {
			plan.actions = append(plan.actions, client.Action{"SetServerState", d.Backend, d.Name, "ready"})
		}
	}
	plan.next = append(plan.next, desired...)
	for _, r := range running {
		if wanted[serverKey{r.Backend, r.Name}] {
			continue
		}
		if !r.AddrRuntime {
			return plan, false
		}
		if !r.Maint {
			plan.actions = append(plan.actions, client.Action{"SetServerState", r.Backend, r.Name, "maint"})
		}
		r.Maint, r.add = true, nil
		plan.next = append(plan.next, r)
	}
	return plan, true
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
