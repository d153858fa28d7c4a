package translate

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
)

// maxServerWeight is HAProxy's largest server weight; a member with 100%
// of a group and one server gets it, so shares keep their precision.
const maxServerWeight = 256

// minSlots is the smallest number of server slots a Kubernetes Service gets,
// so a few endpoints can come and go without a reload.
const minSlots = 4

// DNSResolvers names the resolvers section servers resolved by name use.
const DNSResolvers = model.Prefix + "-dns"

// group is the mappings that share one address, port and host: they split
// its connections by weight.
type group struct {
	host    string
	members []*candidate
}

func (g *group) first() *candidate { return g.members[0] }

// listener is the mappings on one address and port.
type listener struct {
	key     string
	address string
	port    int32
	groups  []*group // in order of their oldest member
	// holder is the namespace of the oldest mapping accepted on the
	// listener ("" while there is none): the listener is that
	// namespace's, and no other namespace may join it.
	holder string
	// holderKey is that mapping, named only to its own namespace.
	holderKey string
}

// where names the listener in messages.
func (l *listener) where() string {
	if l.address == "" {
		return fmt.Sprintf("port %d", l.port)
	}
	return fmt.Sprintf("address %s port %d", l.address, l.port)
}

func (l *listener) group(host string) *group {
	for _, g := range l.groups {
		if g.host == host {
			return g
		}
	}
	g := &group{host: host}
	l.groups = append(l.groups, g)
	return g
}

// build resolves conflicts and weights among candidates (oldest first) and
// fills the configuration with what is left.
func (t *translation) build(candidates []*candidate) {
	var listeners []*listener
	byKey := map[string]*listener{}
	for _, c := range candidates {
		l := byKey[c.listener]
		if l == nil {
			l = &listener{key: c.listener, address: c.address, port: c.spec.Port}
			byKey[c.listener] = l
			listeners = append(listeners, l)
		}
		if conflict := ownerConflict(l, c, listeners); conflict != "" {
			c.reject(v1alpha1.ReasonConflict, conflict)
			continue
		}
		if conflict := proxyConflict(l, c); conflict != "" {
			c.reject(v1alpha1.ReasonConflict, conflict)
			continue
		}
		if conflict := listenerConflict(l, c); conflict != "" {
			c.reject(v1alpha1.ReasonConflict, conflict)
			continue
		}
		g := l.group(c.host)
		if len(g.members) > 0 {
			if conflict := groupConflict(g.first(), c, l.where()); conflict != "" {
				c.reject(v1alpha1.ReasonConflict, conflict)
				continue
			}
		}
		g.members = append(g.members, c)
		if l.holder == "" {
			l.holder, l.holderKey = c.m.Namespace, c.key
		}
	}

	for _, l := range listeners {
		var kept []*group
		for _, g := range l.groups {
			if len(g.members) > 0 && checkWeights(g, l.where()) {
				kept = append(kept, g)
			}
		}
		l.groups = kept
		if len(kept) > 0 {
			t.addListener(l)
		}
	}

	cfg := &t.result.Config
	sort.Slice(cfg.Frontends, func(i, j int) bool { return cfg.Frontends[i].Name < cfg.Frontends[j].Name })
	sort.Slice(cfg.Backends, func(i, j int) bool { return cfg.Backends[i].Name < cfg.Backends[j].Name })
	describeProxies(cfg)
	sort.Slice(cfg.Certificates, func(i, j int) bool { return cfg.Certificates[i].File < cfg.Certificates[j].File })
	for _, b := range cfg.Backends {
		for _, s := range b.Servers {
			if s.Resolve != nil {
				cfg.Resolvers = &model.Resolvers{Name: DNSResolvers}
			}
		}
	}
}

func describe(c *candidate) string {
	switch c.kind {
	case cleartext:
		return "relays cleartext TCP"
	case passthrough:
		return "passes TLS through"
	default:
		return "terminates TLS"
	}
}

// ownerConflict: a listener belongs to the namespace of its oldest
// accepted mapping, and a listener on all addresses overlaps every
// specific address on its port, so the newer of two overlapping ones
// yields. A message about another namespace names only that namespace:
// its mappings, hosts and services are not this tenant's business.
func ownerConflict(l *listener, c *candidate, all []*listener) string {
	ns := c.m.Namespace
	if l.holder != "" && l.holder != ns {
		return fmt.Sprintf("%s is held by namespace %s", l.where(), l.holder)
	}
	for _, o := range all {
		if o == l || o.port != l.port || o.holder == "" || (o.address != "" && l.address != "") {
			continue
		}
		if o.holder != ns {
			return fmt.Sprintf("port %d is held by namespace %s", l.port, o.holder)
		}
		return fmt.Sprintf("%s overlaps %s, used by TCPMapping %s, which is older; all addresses and a specific address cannot share a port",
			l.where(), o.where(), o.holderKey)
	}
	return ""
}

// proxyConflict: whether a port reads a PROXY protocol header is decided
// for every connection before it is routed, so the mappings of a listener
// must agree; the oldest one decides.
func proxyConflict(l *listener, c *candidate) string {
	if len(l.groups) == 0 {
		return ""
	}
	winner := l.groups[0].first()
	if winner.acceptProxy == c.acceptProxy {
		return ""
	}
	return fmt.Sprintf("%s has acceptProxyProtocol %t from TCPMapping %s, which is older; it holds for every connection on the port, and this mapping has %t",
		l.where(), winner.acceptProxy, winner.key, c.acceptProxy)
}

// listenerConflict: a cleartext mapping owns its port; TLS mappings
// (terminated or passthrough) can share one.
func listenerConflict(l *listener, c *candidate) string {
	if len(l.groups) == 0 {
		return ""
	}
	winner := l.groups[0].first()
	if (winner.kind == cleartext) == (c.kind == cleartext) {
		return ""
	}
	if winner.kind == cleartext {
		return fmt.Sprintf("%s is owned by TCPMapping %s, which is older and relays cleartext TCP; this mapping %s",
			l.where(), winner.key, describe(c))
	}
	return fmt.Sprintf("%s is used by TCPMapping %s, which is older and %s; a cleartext mapping needs a port of its own",
		l.where(), winner.key, describe(winner))
}

// groupConflict: the mappings sharing a host on a port must agree on how
// the connection is handled, since one connection cannot be both.
func groupConflict(winner, c *candidate, listenerWhere string) string {
	where := listenerWhere
	if c.host != "" {
		where = fmt.Sprintf("host %s on %s", c.host, listenerWhere)
	}
	switch {
	case winner.kind != c.kind:
		return fmt.Sprintf("%s is served by TCPMapping %s, which is older and %s; this mapping %s",
			where, winner.key, describe(winner), describe(c))
	case winner.kind == terminated && winner.ctx.key != c.ctx.key:
		return fmt.Sprintf("%s uses TLSContext %s of TCPMapping %s, which is older; a host gets one certificate, and this mapping names TLSContext %s",
			where, winner.ctx.key, winner.key, c.ctx.key)
	case winner.idle != c.idle:
		return fmt.Sprintf("%s has idleTimeoutMs %s from TCPMapping %s, which is older; mappings that share traffic must agree, and this one has %s",
			where, idleString(winner), winner.key, idleString(c))
	case winner.connect != c.connect:
		return fmt.Sprintf("%s has connectTimeoutMs %s from TCPMapping %s, which is older; mappings that share traffic must agree, and this one has %s",
			where, msString(winner.connect), winner.key, msString(c.connect))
	case retriesString(winner) != retriesString(c):
		return fmt.Sprintf("%s has retries %s from TCPMapping %s, which is older; mappings that share traffic must agree, and this one has %s",
			where, retriesString(winner), winner.key, retriesString(c))
	case winner.balance != c.balance:
		return fmt.Sprintf("%s has loadBalancer %s from TCPMapping %s, which is older; mappings that share traffic must agree, and this one has %s",
			where, winner.balance, winner.key, c.balance)
	case checkString(winner) != checkString(c):
		return fmt.Sprintf("%s has healthCheck %s from TCPMapping %s, which is older; mappings that share traffic must agree, and this one has %s",
			where, checkString(winner), winner.key, checkString(c))
	case winner.redispatch != c.redispatch:
		return fmt.Sprintf("%s has redispatch %t from TCPMapping %s, which is older; mappings that share traffic must agree, and this one has %t",
			where, winner.redispatch, winner.key, c.redispatch)
	case limitsConflict(winner, c, where) != "":
		return limitsConflict(winner, c, where)
	}
	return ""
}

func msString(d time.Duration) string {
	if d == 0 {
		return "unset"
	}
	return fmt.Sprint(d.Milliseconds())
}

// checkString shows a candidate's health check with its defaults.
func checkString(c *candidate) string {
	if c.check == nil {
		return "unset"
	}
	return fmt.Sprintf("intervalMs %d, rise %d, fall %d, send %q, expect %q, errorLimit %d", c.check.Interval.Milliseconds(), c.check.Rise, c.check.Fall, c.check.Send, c.check.Expect, c.check.ErrorLimit)
}

func retriesString(c *candidate) string {
	if c.retries == nil {
		return "unset"
	}
	return fmt.Sprint(*c.retries)
}

func idleString(c *candidate) string {
	if c.idle == 0 {
		return "unset"
	}
	return fmt.Sprint(c.idle.Milliseconds())
}

// checkWeights rejects a whole group whose weights sum over 100.
func checkWeights(g *group, listenerWhere string) bool {
	sum := int32(0)
	var parts []string
	for _, c := range g.members {
		if w := c.spec.Weight; w != nil {
			sum += *w
			parts = append(parts, fmt.Sprintf("%s (%d)", c.key, *w))
		}
	}
	if sum > 100 {
		where := listenerWhere
		if g.host != "" {
			where = fmt.Sprintf("host %s on %s", g.host, listenerWhere)
		}
		msg := fmt.Sprintf("weights of TCPMappings %s for %s sum to %d, over 100", strings.Join(parts, ", "), where, sum)
		for _, c := range g.members {
			c.reject(v1alpha1.ReasonInvalidWeights, msg)
		}
		return false
	}
	return true
}

// share is a member's percentage of its group.
func share(g *group, c *candidate) float64 {
	if w := c.spec.Weight; w != nil {
		return float64(*w)
	}
	sum, unweighted := int32(0), 0
	for _, m := range g.members {
		if m.spec.Weight != nil {
			sum += *m.spec.Weight
		} else {
			unweighted++
		}
	}
	return float64(100-sum) / float64(unweighted)
}

// addListener turns one listener's groups into frontends and backends.
func (t *translation) addListener(l *listener) {
	cfg := &t.result.Config
	fe := model.Frontend{
		Name: model.FrontendName(l.key),
		Bind: model.Bind{Address: l.address, Port: l.port, AcceptProxy: l.groups[0].first().acceptProxy},
	}
	sortGroups(l.groups)
	var all []string
	for _, g := range l.groups {
		be := t.backend(l, g)
		for _, c := range g.members {
			c.result.Frontend, c.result.Backend = fe.Name, be.Name
		}
		all = append(all, be.Sources...)
		cfg.Backends = append(cfg.Backends, be)
	}
	fe.Sources = sources(all)

	first := l.groups[0].first()
	if first.kind == cleartext {
		fe.DefaultBackend = model.BackendName(l.key, "")
		cfg.Frontends = append(cfg.Frontends, fe)
		return
	}

	// The TLS contexts terminated on this port, in a stable order.
	var contexts []*contextInfo
	ctxIndex := map[string]int{}
	passthroughs := 0
	for _, g := range l.groups {
		c := g.first()
		if c.kind == passthrough {
			passthroughs++
			continue
		}
		if _, seen := ctxIndex[c.ctx.key]; !seen {
			ctxIndex[c.ctx.key] = -1
			contexts = append(contexts, c.ctx)
		}
	}
	sort.Slice(contexts, func(i, j int) bool { return contexts[i].key < contexts[j].key })
	for i, ci := range contexts {
		ctxIndex[ci.key] = i
		t.addCertificate(ci)
	}

	if passthroughs == 0 && len(contexts) == 1 {
		// One certificate and nothing to pass through: terminate on the
		// public socket itself.
		bind := contexts[0].bind
		fe.Bind.TLS = &bind
		fe.Sources = sources(fe.Sources, contextRef(contexts[0]))
		fe.Routes, fe.DefaultBackend = routes(l, model.FetchTerminatedSNI, func(*group) bool { return true })
		cfg.Frontends = append(cfg.Frontends, fe)
		return
	}

	// Several TLS setups on one port: read the SNI from the ClientHello,
	// pass some connections through and hand the others to an internal
	// frontend per TLSContext that terminates with its own settings.
	fe.InspectSNI = true
	for _, g := range l.groups {
		c := g.first()
		target := model.BackendName(l.key, g.host)
		if c.kind == terminated {
			target = model.LoopBackendName(l.key, ctxIndex[c.ctx.key])
		}
		if g.host == "" {
			fe.DefaultBackend = target
			continue
		}
		fe.Routes = append(fe.Routes, model.Route{Fetch: model.FetchClientHelloSNI, Host: g.host, Backend: target})
	}
	cfg.Frontends = append(cfg.Frontends, fe)

	for i, ci := range contexts {
		socket := model.TerminatorSocket(l.key, i)
		bind := ci.bind
		term := model.Frontend{
			Name: model.TerminatorName(l.key, i),
			Bind: model.Bind{Socket: socket, AcceptProxy: true, TLS: &bind},
		}
		mine := func(g *group) bool {
			c := g.first()
			return c.kind == terminated && c.ctx.key == ci.key
		}
		term.Routes, term.DefaultBackend = routes(l, model.FetchTerminatedSNI, mine)
		term.Sources = []string{contextRef(ci)}
		for _, g := range l.groups {
			if mine(g) {
				term.Sources = append(term.Sources, mappingRefs(g)...)
			}
		}
		term.Sources = sources(term.Sources)
		cfg.Frontends = append(cfg.Frontends, term)
		cfg.Backends = append(cfg.Backends, model.Backend{
			Name: model.LoopBackendName(l.key, i),
			Servers: []model.Server{{
				Name: "terminator", Socket: socket, Weight: 1, SendProxy: true,
			}},
			Sources: term.Sources,
		})
	}
}

// routes lists the SNI routes of the groups keep selects, and the default
// backend among them.
func routes(l *listener, fetch string, keep func(*group) bool) ([]model.Route, string) {
	var out []model.Route
	def := ""
	for _, g := range l.groups {
		if !keep(g) {
			continue
		}
		if g.host == "" {
			def = model.BackendName(l.key, "")
			continue
		}
		out = append(out, model.Route{Fetch: fetch, Host: g.host, Backend: model.BackendName(l.key, g.host)})
	}
	return out, def
}

// sortGroups puts exact hosts before wildcards, each alphabetically, and
// the default group last, so the first matching route is the most specific.
func sortGroups(groups []*group) {
	rank := func(h string) int {
		switch {
		case h == "":
			return 2
		case strings.HasPrefix(h, "*."):
			return 1
		}
		return 0
	}
	sort.SliceStable(groups, func(i, j int) bool {
		ri, rj := rank(groups[i].host), rank(groups[j].host)
		if ri != rj {
			return ri < rj
		}
		return groups[i].host < groups[j].host
	})
}

func (t *translation) addCertificate(ci *contextInfo) {
	cfg := &t.result.Config
	for _, c := range cfg.Certificates {
		if c.File == ci.bind.Certificate {
			return
		}
	}
	src := []string{contextRef(ci)}
	cfg.Certificates = append(cfg.Certificates, model.Certificate{File: ci.bind.Certificate, Kind: model.CertificateKindCert, PEM: ci.certPEM, Keep: ci.keepStored, Sources: src})
	if ci.bind.CAFile != "" {
		cfg.Certificates = append(cfg.Certificates, model.Certificate{File: ci.bind.CAFile, Kind: model.CertificateKindCA, PEM: ci.caPEM, Sources: src})
	}
	if ci.bind.CRLFile != "" {
		cfg.Certificates = append(cfg.Certificates, model.Certificate{File: ci.bind.CRLFile, Kind: model.CertificateKindCRL, PEM: ci.crlPEM, Sources: src})
	}
}

// backend builds one weight group's backend: every member's servers, each
// weighted so the member receives its share.
func (t *translation) backend(l *listener, g *group) model.Backend {
	first := g.first()
	be := model.Backend{Name: model.BackendName(l.key, g.host), IdleTimeout: first.idle, Sources: sources(mappingRefs(g)),
		ConnectTimeout: first.connect, Retries: first.retries, Redispatch: first.redispatch, Balance: first.balance, Check: first.check}
	if be.Balance == model.BalanceSource {
		be.HashType = model.HashConsistent
	}
	be.Limits = groupLimits(g)
	for _, c := range g.members {
		sh := share(g, c)
		be.Members = append(be.Members, model.Member{Mapping: c.key, Share: sh})
		be.Servers = append(be.Servers, servers(c, sh)...)
		t.addUpstreamFiles(c)
	}
	return be
}

// serverWeight spreads a member's share over its n servers on HAProxy's
// 0–256 scale; a member with a share keeps at least weight 1.
func serverWeight(share float64, n int) int32 {
	if share <= 0 || n == 0 {
		return 0
	}
	w := int32(math.Round(share * maxServerWeight / 100 / float64(n)))
	if w < 1 {
		w = 1
	}
	return w
}

// slots is how many server lines a Service with n endpoints gets: a power
// of two, at least minSlots, so endpoints can be added at runtime.
func slots(n int) int {
	s := minSlots
	for s < n {
		s *= 2
	}
	return s
}

func servers(c *candidate, sh float64) []model.Server {
	tgt := c.target
	base := model.Server{TLS: tgt.TLS, SendProxy: c.spec.SendProxyProtocol == "v2", SendProxyV1: c.spec.SendProxyProtocol == "v1"}
	base.MaxConn = serverMaxConn(c)
	if up := c.upstream; up != nil && tgt.TLS {
		base.Verify, base.CAFile, base.VerifyHost = up.verify, up.caFile, up.verifyHost
		base.SNI, base.ClientCertificate = up.sni, up.clientCert
	}
	switch {
	case tgt.IP != "":
		base.Name = model.ServerName(c.m.Namespace, c.m.Name, 1)
		base.Address, base.Port = tgt.IP, tgt.Port
		base.Weight = serverWeight(sh, 1)
		return []model.Server{base}
	case tgt.DNSName != "":
		base.Name = model.ServerName(c.m.Namespace, c.m.Name, 1)
		base.Address, base.Port = tgt.DNSName, tgt.Port
		base.Weight = serverWeight(sh, 1)
		// Both families: no restriction, IPv6 first, as the seed says.
		switch {
		case c.ipv4 && c.ipv6:
			base.Resolve = &model.Resolve{Resolvers: DNSResolvers, Prefer: "ipv6"}
		case c.ipv6:
			base.Resolve = &model.Resolve{Resolvers: DNSResolvers, Family: "ipv6", Prefer: "ipv6"}
		default:
			base.Resolve = &model.Resolve{Resolvers: DNSResolvers, Family: "ipv4", Prefer: "ipv4"}
		}
		return []model.Server{base}
	}
	n := len(tgt.Endpoints)
	w := serverWeight(sh, n)
	out := make([]model.Server, slots(n))
	for i := range out {
		s := base
		s.Name = model.ServerName(c.m.Namespace, c.m.Name, i+1)
		if i < n {
			s.Address, s.Port, s.Weight = tgt.Endpoints[i].IP, tgt.Endpoints[i].Port, w
		} else {
			s.Spare = true
		}
		out[i] = s
	}
	return out
}

// mappingRefs names a group's mappings as Sources entries.
func mappingRefs(g *group) []string {
	out := make([]string, 0, len(g.members))
	for _, c := range g.members {
		out = append(out, RefTCPMapping+"/"+c.key)
	}
	return out
}

func contextRef(ci *contextInfo) string { return RefTLSContext + "/" + ci.key }

// sources sorts refs and drops duplicates, so Sources are stable.
func sources(refs []string, more ...string) []string {
	all := append(append([]string(nil), refs...), more...)
	sort.Strings(all)
	out := all[:0]
	for i, r := range all {
		if i == 0 || r != all[i-1] {
			out = append(out, r)
		}
	}
	return out
}
