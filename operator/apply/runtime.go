package apply

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
)

// spareAddr and sparePort are where render points spare server slots
// (templates/haproxy.cfg.tmpl): a filled slot gets its address at
// runtime, an emptied one goes back here in maintenance.
const (
	spareAddr = "127.0.0.1"
	sparePort = 1
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
	// Maint is a server in maintenance (a spare slot); otherwise ready.
	Maint bool
}

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
	var v runtimeView
	for _, b := range cfg.Backends {
		for _, s := range b.Servers {
			rs := runtimeServer{Backend: b.Name, Name: s.Name, Weight: s.Weight}
			switch {
			case s.Socket != "" || s.Resolve != nil:
				// Only the weight changes at runtime.
			case s.Spare:
				rs.AddrRuntime, rs.Addr, rs.Port, rs.Maint = true, spareAddr, sparePort, true
			default:
				rs.AddrRuntime, rs.Addr, rs.Port = true, s.Address, s.Port
			}
			v = append(v, rs)
		}
	}
	return v
}

// structureDigest identifies a model with everything runtime actions can
// change left out: two models with the same digest render to texts that
// differ only in server addresses, weights and states (and the share
// comments that follow weights), and load the same map files, whose
// entries may differ. Secrets count through their digest;
// certificate contents are synchronised on their own.
func structureDigest(cfg *model.Config) string {
	c := *cfg
	h := sha256.New()
	if c.Stats != nil {
		st := *c.Stats
		h.Write([]byte("stats password\x00"))
		h.Write(st.Password.Reveal())
		h.Write([]byte{0})
		st.Password = nil
		c.Stats = &st
	}
	c.Backends = make([]model.Backend, len(cfg.Backends))
	for i, b := range cfg.Backends {
		b.Members = append([]model.Member(nil), b.Members...)
		for j := range b.Members {
			b.Members[j].Share = 0
		}
		b.Servers = append([]model.Server(nil), b.Servers...)
		for j := range b.Servers {
			s := &b.Servers[j]
			s.Weight = 0
			if s.Socket == "" && s.Resolve == nil {
				s.Address, s.Port, s.Spare = "", 0, false
			}
		}
		c.Backends[i] = b
	}
	// Map entries change at runtime; which files are loaded does not.
	c.Maps = make([]model.Map, len(cfg.Maps))
	for i, m := range cfg.Maps {
		c.Maps[i] = model.Map{Name: m.Name}
	}
	c.Certificates = make([]model.Certificate, len(cfg.Certificates))
	for i, cert := range cfg.Certificates {
		c.Certificates[i] = model.Certificate{File: cert.File}
	}
	// json.Marshal of plain data cannot fail.
	b, _ := json.Marshal(c)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// runtimeActions turns running into desired, which must have the same
// servers (the same structure), with the actions X-Runtime-Actions
// takes. A server leaving service is put in maintenance first; one
// entering it is made ready last, once its address and weight are set.
func runtimeActions(running, desired runtimeView) ([]client.Action, bool) {
	if len(running) != len(desired) {
		return nil, false
	}
	was := running.index()
	var actions []client.Action
	for _, d := range desired {
		r, ok := was[serverKey{d.Backend, d.Name}]
		if !ok || r.AddrRuntime != d.AddrRuntime {
			return nil, false
		}
		if d.Maint && !r.Maint {
			actions = append(actions, client.Action{"SetServerState", d.Backend, d.Name, "maint"})
		}
		if d.AddrRuntime && (d.Addr != r.Addr || d.Port != r.Port) {
			actions = append(actions, client.Action{"SetServerAddr", d.Backend, d.Name, d.Addr, strconv.Itoa(int(d.Port))})
		}
		if d.Weight != r.Weight {
			actions = append(actions, client.Action{"SetServerWeight", d.Backend, d.Name, strconv.Itoa(int(d.Weight))})
		}
		if !d.Maint && r.Maint {
			actions = append(actions, client.Action{"SetServerState", d.Backend, d.Name, "ready"})
		}
	}
	return actions, true
}
