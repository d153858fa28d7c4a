package translate

import (
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
)

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
	// The listeners on each port: a candidate's conflicts are with those
	// alone (scanning every listener made a full translation quadratic,
	// 50 million comparisons at 10,000 mappings).
	byPort := map[int32][]*listener{}
	for _, c := range candidates {
		l := byKey[c.listener]
		if l == nil {
			l = &listener{key: c.listener, address: c.address, port: c.spec.Port}
			byKey[c.listener] = l
			listeners = append(listeners, l)
			byPort[l.port] = append(byPort[l.port], l)
		}
		if conflict := ownerConflict(l, c, byPort[l.port]); conflict != "" {
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
			cfg := &t.result.Config
			fe, be, maps := len(cfg.Frontends), len(cfg.Backends), len(cfg.Maps)
			t.addListener(l)
			on := t.result.SectionsOn[l.port]
			for _, f := range cfg.Frontends[fe:] {
				t.result.PortOf[f.Name] = l.port
				on = append(on, f.Name)
			}
			for _, b := range cfg.Backends[be:] {
				// A listen section's backend has its frontend's name:
				// one section, named once.
				if _, merged := t.result.PortOf[b.Name]; !merged {
					on = append(on, b.Name)
				}
				t.result.PortOf[b.Name] = l.port
			}
			for _, m := range cfg.Maps[maps:] {
				t.result.PortOf[m.Name] = l.port
				on = append(on, m.Name)
			}
			t.result.SectionsOn[l.port] = on
		}
	}

	cfg := &t.result.Config
	sort.Slice(cfg.Frontends, func(i, j int) bool { return cfg.Frontends[i].Name < cfg.Frontends[j].Name })
	sort.Slice(cfg.Backends, func(i, j int) bool { return cfg.Backends[i].Name < cfg.Backends[j].Name })
	describeProxies(cfg)
	sort.Slice(cfg.Certificates, func(i, j int) bool { return cfg.Certificates[i].File < cfg.Certificates[j].File })
	sort.Slice(cfg.Maps, func(i, j int) bool { return cfg.Maps[i].Name < cfg.Maps[j].Name })
	if resolvesByName(cfg.Backends) {
		cfg.Resolvers = &model.Resolvers{Name: DNSResolvers}
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
// onPort are the listeners on l's port, in the order they were made.
func ownerConflict(l *listener, c *candidate, onPort []*listener) string {
	ns := c.m.Namespace
	if l.holder != "" && l.holder != ns {
		return fmt.Sprintf("%s is held by namespace %s", l.where(), l.holder)
	}
	for _, o := range onPort {
		if o == l || o.holder == "" || (o.address != "" && l.address != "") {
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

// addListener turns one listener's groups into frontends, one backend
// per mapping, and the maps that route between them.
func (t *translation) addListener(l *listener) {
	cfg := &t.result.Config
	fe := model.Frontend{
		Name: model.FrontendName(l.key),
		Bind: model.Bind{Address: l.address, Port: l.port, AcceptProxy: l.groups[0].first().acceptProxy},
	}
	first := l.groups[0].first()
	// On a TLS port, hosts come and go: its mappings' backends are slots
	// of a pool the port keeps, so a new host finds one ready.
	var slots map[*candidate]string
	if first.kind != cleartext {
		slots = t.pool(l)
	}
	sortGroups(l.groups)
	var all []string
	for _, g := range l.groups {
		from := len(cfg.Backends)
		var names []string
		for _, c := range g.members {
			be := t.backend(g, c)
			if slot, ok := slots[c]; ok {
				be.Name, be.Pool = slot, true
			}
			c.result.Frontend, c.result.Backend = fe.Name, be.Name
			all = append(all, be.Sources...)
			cfg.Backends = append(cfg.Backends, &be)
			names = append(names, be.Name)
		}
		shareLimits(cfg.Backends[from:], names)
	}
	fe.Sources = sources(all)

	if first.kind == cleartext {
		g := l.groups[0]
		if len(g.members) == 1 && share(g, g.first()) > 0 {
			// Nothing to choose between: no map to load or keep, and
			// the port and its one backend are a single proxy, named
			// after the mapping's backend, whose name outlives a
			// canary joining the port.
			fe.Name, fe.DefaultBackend, fe.Listen = first.result.Backend, first.result.Backend, true
			first.result.Frontend = fe.Name
		} else {
			t.pick(&fe, "", l.groups, nil)
		}
		cfg.Frontends = append(cfg.Frontends, &fe)
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
		t.pick(&fe, model.FetchTerminatedSNI, l.groups, nil)
		cfg.Frontends = append(cfg.Frontends, &fe)
		return
	}

	// Several TLS setups on one port: read the SNI from the ClientHello,
	// pass some connections through and hand the others to an internal
	// frontend per TLSContext that terminates with its own settings.
	fe.InspectSNI = true
	t.pick(&fe, model.FetchClientHelloSNI, l.groups, func(g *group) string {
		if c := g.first(); c.kind == terminated {
			return model.LoopBackendName(l.key, ctxIndex[c.ctx.key])
		}
		return ""
	})
	cfg.Frontends = append(cfg.Frontends, &fe)

	for i, ci := range contexts {
		socket := model.TerminatorSocket(l.key, i)
		bind := ci.bind
		term := model.Frontend{
			Name: model.TerminatorName(l.key, i),
			Bind: model.Bind{Socket: socket, AcceptProxy: true, TLS: &bind},
		}
		var mine []*group
		term.Sources = []string{contextRef(ci)}
		for _, g := range l.groups {
			if c := g.first(); c.kind == terminated && c.ctx.key == ci.key {
				mine = append(mine, g)
				term.Sources = append(term.Sources, mappingRefs(g)...)
			}
		}
		term.Sources = sources(term.Sources)
		t.pick(&term, model.FetchTerminatedSNI, mine, nil)
		cfg.Frontends = append(cfg.Frontends, &term)
		cfg.Backends = append(cfg.Backends, &model.Backend{
			Name: model.LoopBackendName(l.key, i),
			Servers: []model.Server{{
				Name: "terminator", Socket: socket, Weight: 1, SendProxy: true,
			}},
			Sources: term.Sources,
		})
	}
}

// pick makes fe route groups through maps: hosts to group numbers (when
// fetch reads an SNI), slot ranges to backends. whole, when it names a
// backend for a group, sends all the group's connections there (a loop to
// a terminator) instead of spreading them over its members.
func (t *translation) pick(fe *model.Frontend, fetch string, groups []*group, whole func(*group) string) {
	p := &model.Pick{Fetch: fetch, WeightMap: model.WeightMapName(fe.Name)}
	weights := model.Map{Name: p.WeightMap}
	var hosts *model.Map
	if fetch != "" {
		p.HostMap = model.HostMapName(fe.Name)
		hosts = &model.Map{Name: p.HostMap}
	}
	numbers := groupNumbers(groups)
	for _, g := range groups {
		n := numbers[g.host]
		if g.host != "" {
			hosts.Entries = append(hosts.Entries, model.MapEntry{Key: g.host, Value: strconv.FormatInt(n, 10)})
		}
		if whole != nil {
			if be := whole(g); be != "" {
				weights.Entries = append(weights.Entries, slotRange(n, 0, model.PickRange, be))
				continue
			}
		}
		weights.Entries = append(weights.Entries, spread(g, n)...)
	}
	sort.Slice(weights.Entries, func(i, j int) bool {
		return rangeStart(weights.Entries[i].Key) < rangeStart(weights.Entries[j].Key)
	})
	t.result.Config.Maps = append(t.result.Config.Maps, weights)
	if hosts != nil {
		sort.Slice(hosts.Entries, func(i, j int) bool { return hosts.Entries[i].Key < hosts.Entries[j].Key })
		t.result.Config.Maps = append(t.result.Config.Maps, *hosts)
	}
	fe.Pick = p
}

// minPool is the smallest pool of backends a TLS port keeps.
const minPool = 8

// poolSize is how many backend slots a TLS port with n mappings keeps:
// the power of two that holds them, at least minPool, so the pool grows
// (one reload) only when it is full, and then doubles.
func poolSize(n int) int {
	p := minPool
	for p < n {
		p *= 2
	}
	return p
}

// pool gives every mapping of a TLS listener a backend slot and adds the
// free slots: empty backends with the settings and server template of a
// mapping that sets none, so a new host with those settings takes one at
// runtime (servers added, map entries set) and a removed host leaves one
// behind, neither reloading. A mapping's slot is a hash of its name,
// probed forward in creation order, so it keeps its slot while others
// come and go (except, rarely, behind a removed one it had collided
// with). Not in age order: within a second, that puts the mappings
// already accepted first, and the operator's own status writes would
// then move slots; recording a translation's verdicts must translate the
// same.
func (t *translation) pool(l *listener) map[*candidate]string {
	var members []*candidate
	for _, g := range l.groups {
		members = append(members, g.members...)
	}
	sort.SliceStable(members, func(i, j int) bool { return createdBefore(members[i].m, members[j].m) })
	size := poolSize(len(members))
	used := make([]bool, size)
	out := make(map[*candidate]string, len(members))
	for _, c := range members {
		f := fnv.New32a()
		f.Write([]byte(c.key))
		k := int(f.Sum32() % uint32(size))
		for used[k] {
			k = (k + 1) % size
		}
		used[k] = true
		out[c] = model.SlotBackendName(l.key, k)
	}
	// A free slot is the listener's: what HAProxy says of it concerns
	// the listener's mappings.
	var refs []string
	for _, g := range l.groups {
		refs = append(refs, mappingRefs(g)...)
	}
	refs = sources(refs)
	for k, taken := range used {
		if !taken {
			t.result.Config.Backends = append(t.result.Config.Backends, freeSlot(model.SlotBackendName(l.key, k), refs))
		}
	}
	return out
}

// freeSlot is an unused backend of a pool: what a mapping that sets
// nothing but its port, host and Service gets.
func freeSlot(name string, refs []string) *model.Backend {
	return &model.Backend{Name: name, Pool: true, Balance: model.BalanceRoundRobin, Template: &model.Server{Weight: 1, Dynamic: true}, Sources: refs}
}

// maxGroupNumber bounds group numbers, so that a slot key,
// group*PickRange+slot, stays far inside HAProxy's 64-bit integers.
const maxGroupNumber = 1 << 20

// groupNumbers gives every group of a frontend its number: 0 for the
// mappings without a host, a hash of the host for the others, so a host
// keeps its number (and its weight map entries) while other hosts come
// and go. Two hosts whose hashes meet take the next free numbers, in host
// order.
func groupNumbers(groups []*group) map[string]int64 {
	hosts := make([]string, 0, len(groups))
	for _, g := range groups {
		if g.host != "" {
			hosts = append(hosts, g.host)
		}
	}
	sort.Strings(hosts)
	out := map[string]int64{"": 0}
	used := map[int64]bool{0: true}
	for _, h := range hosts {
		f := fnv.New32a()
		f.Write([]byte(h))
		n := int64(f.Sum32()%(maxGroupNumber-1)) + 1
		for used[n] {
			n = n%(maxGroupNumber-1) + 1
		}
		used[n] = true
		out[h] = n
	}
	return out
}

// spread gives each member of group number n a range of slots as wide as
// its share of the group. Members without endpoints get none while
// another member has some, so their share goes to the others (as when
// all their servers are down); shares are rounded to whole slots by
// largest remainder, so the ranges fill [0, PickRange) exactly.
func spread(g *group, n int64) []model.MapEntry {
	type part struct {
		c     *candidate
		share float64
		slots int
	}
	var parts []part
	anyServing := false
	for _, c := range g.members {
		if serving(c) {
			anyServing = true
		}
	}
	total := 0.0
	for _, c := range g.members {
		sh := share(g, c)
		if sh <= 0 || (anyServing && !serving(c)) {
			continue
		}
		parts = append(parts, part{c: c, share: sh})
		total += sh
	}
	if total <= 0 {
		return nil
	}
	left := model.PickRange
	for i := range parts {
		parts[i].slots = int(math.Floor(parts[i].share / total * model.PickRange))
		left -= parts[i].slots
	}
	order := make([]int, len(parts))
	for i := range order {
		order[i] = i
	}
	frac := func(i int) float64 {
		return parts[i].share/total*model.PickRange - float64(parts[i].slots)
	}
	sort.SliceStable(order, func(a, b int) bool { return frac(order[a]) > frac(order[b]) })
	for _, i := range order[:left] {
		parts[i].slots++
	}
	var out []model.MapEntry
	start := 0
	for _, p := range parts {
		if p.slots == 0 {
			continue
		}
		out = append(out, slotRange(n, start, p.slots, p.c.result.Backend))
		start += p.slots
	}
	return out
}

// serving says whether a mapping has somewhere to send connections.
func serving(c *candidate) bool {
	return c.target.IP != "" || c.target.DNSName != "" || len(c.target.Endpoints) > 0
}

// slotRange is the weight map entry sending width slots of group n, from
// slot start, to backend.
func slotRange(n int64, start, width int, backend string) model.MapEntry {
	lo := n*model.PickRange + int64(start)
	return model.MapEntry{Key: fmt.Sprintf("%d:%d", lo, lo+int64(width)-1), Value: backend}
}

// rangeStart is the first slot of a weight map key "lo:hi".
func rangeStart(key string) int64 {
	lo, _, _ := strings.Cut(key, ":")
	n, _ := strconv.ParseInt(lo, 10, 64)
	return n
}

// sortGroups puts exact hosts before wildcards, each alphabetically, and
// the default group last, so the oldest mapping order within a group is
// kept and the output is stable.
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

// backend builds one mapping's backend: its servers, balanced equally;
// the frontend's weight map gives the mapping its share of its group.
func (t *translation) backend(g *group, c *candidate) model.Backend {
	be := model.Backend{Name: model.BackendName(c.m.Namespace, c.m.Name), IdleTimeout: c.idle, Sources: []string{RefTCPMapping + "/" + c.key},
		ConnectTimeout: c.connect, Retries: c.retries, Redispatch: c.redispatch, Balance: c.balance, Check: c.check,
		Members: []model.Member{{Mapping: c.key, Share: share(g, c)}}}
	if be.Balance == model.BalanceSource {
		be.HashType = model.HashConsistent
	}
	be.Limits = groupLimits(g)
	if be.Limits != nil && be.Limits.AccessLog != nil {
		// The backend is this mapping's alone.
		be.Limits.AccessLog.Mapping = c.key
	}
	be.Servers, be.Template = servers(c)
	t.addUpstreamFiles(c)
	return be
}

// servers are a mapping's servers and, for a Service's endpoints, the
// template every one of them is made from.
func servers(c *candidate) ([]model.Server, *model.Server) {
	tgt := c.target
	base := model.Server{Weight: 1, TLS: tgt.TLS, SendProxy: c.spec.SendProxyProtocol == "v2", SendProxyV1: c.spec.SendProxyProtocol == "v1"}
	base.MaxConn = serverMaxConn(c)
	if up := c.upstream; up != nil && tgt.TLS {
		base.Verify, base.CAFile, base.VerifyHost = up.verify, up.caFile, up.verifyHost
		base.SNI, base.ClientCertificate = up.sni, up.clientCert
	}
	switch {
	case tgt.IP != "":
		base.Name = model.ServerName(c.m.Namespace, c.m.Name, 1)
		base.Address, base.Port = tgt.IP, tgt.Port
		return []model.Server{base}, nil
	case tgt.DNSName != "":
		base.Name = model.ServerName(c.m.Namespace, c.m.Name, 1)
		base.Address, base.Port = tgt.DNSName, tgt.Port
		// Both families: no restriction, IPv6 first, as the seed says.
		switch {
		case c.ipv4 && c.ipv6:
			base.Resolve = &model.Resolve{Resolvers: DNSResolvers, Prefer: "ipv6"}
		case c.ipv6:
			base.Resolve = &model.Resolve{Resolvers: DNSResolvers, Family: "ipv6", Prefer: "ipv6"}
		default:
			base.Resolve = &model.Resolve{Resolvers: DNSResolvers, Family: "ipv4", Prefer: "ipv4"}
		}
		return []model.Server{base}, nil
	}
	// Endpoints of a Service come and go at runtime: each server is
	// named by its address, so it keeps its name (and its health) while
	// others change.
	tmpl := base
	tmpl.Dynamic = true
	out := make([]model.Server, len(tgt.Endpoints))
	for i, ep := range tgt.Endpoints {
		s := base
		s.Name = model.EndpointServerName(c.m.Namespace, c.m.Name, ep.IP, ep.Port)
		s.Address, s.Port, s.Dynamic = ep.IP, ep.Port, true
		out[i] = s
	}
	return out, &tmpl
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
