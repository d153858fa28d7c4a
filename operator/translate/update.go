package translate

import (
	"reflect"
	"slices"
	"sort"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

// Update translates s as Translate would, but evaluates and builds again
// only the mappings on ports, keeping the rest of prev as it is: a weight,
// an endpoint or an SNI host costs what its port costs, not what 10,000
// mappings do.
//
// prev must be Translate's (or Update's) result for a snapshot that
// differs from s only in TCPMappings whose current or last accepted port
// is in ports (added, removed or changed), and in Services and
// EndpointSlices that only mappings on ports use. Under that condition the
// result equals Translate(s), but for References, which may keep those of
// removed mappings until the next full translation.
//
// It returns false when the change reaches beyond those ports' sections
// (a certificate file comes or goes, a mapping is built on a port not in
// ports): the caller then translates in full.
func Update(prev Result, s snapshot.Snapshot, ports []int32) (Result, bool) {
	if prev.PortOf == nil || prev.SectionsOn == nil {
		return Result{}, false
	}
	affected := make(map[int32]bool, len(ports))
	for _, p := range ports {
		affected[p] = true
	}
	// Only the mappings on the changed ports, and the Services they may
	// name, are looked at: under the contract above, everything else is
	// as prev saw it.
	var candidates []*v1alpha1.TCPMapping
	services := map[string]bool{}
	for _, m := range s.TCPMappings {
		if m.DeletionTimestamp != nil || !onPorts(m, affected) {
			continue
		}
		candidates = append(candidates, m)
		services[serviceName(m.Spec.Service)] = true
		if la := m.Status.LastAccepted; la != nil {
			services[serviceName(la.Spec.Service)] = true
		}
	}
	idx := newIndexOf(s, services)
	t := &translation{idx: idx, hap: &s.HAProxy, policy: newPolicy(&s.HAProxy, s.ReferenceGrants, s.NoReferenceGrantCRD)}
	t.contexts = map[string]*contextInfo{}
	t.refs = map[string]bool{}
	t.result.ReferenceGrants = t.policy.condition()

	sel := newSelection(t.hap)
	var mappings []*v1alpha1.TCPMapping
	for _, m := range candidates {
		if sel.selects(idx, m) {
			mappings = append(mappings, m)
		}
	}
	sort.SliceStable(mappings, func(i, j int) bool { return older(mappings[i], mappings[j]) })
	t.translateMappings(mappings)
	sub := t.result
	for _, port := range sub.PortOf {
		if !affected[port] {
			return Result{}, false
		}
	}
	if moved(prev, s, sub, affected, sel, idx) {
		return Result{}, false
	}

	out := prev
	out.HAProxy, out.ReferenceGrants = sub.HAProxy, sub.ReferenceGrants
	if sameSections(prev, sub, affected) {
		// The usual case (a weight, an endpoint, an SNI host in a pooled
		// backend): the changed ports have the same sections as before,
		// which take their places in a copy of prev's.
		out.Config.Frontends = replaceSections(prev.Config.Frontends, sub.Config.Frontends, model.FrontendNameOf)
		out.Config.Backends = replaceSections(prev.Config.Backends, sub.Config.Backends, model.BackendNameOf)
		out.Config.Maps = replaceSections(prev.Config.Maps, sub.Config.Maps, model.MapNameOf)
	} else {
		keep := func(name string) bool {
			port, ok := prev.PortOf[name]
			return ok && !affected[port]
		}
		out.Config.Frontends = mergeSections(prev.Config.Frontends, sub.Config.Frontends, keep, func(f *model.Frontend) string { return f.Name })
		out.Config.Backends = mergeSections(prev.Config.Backends, sub.Config.Backends, keep, func(b *model.Backend) string { return b.Name })
		out.Config.Maps = mergeSections(prev.Config.Maps, sub.Config.Maps, keep, func(m model.Map) string { return m.Name })
		out.PortOf = make(map[string]int32, len(prev.PortOf))
		for name, port := range prev.PortOf {
			if !affected[port] {
				out.PortOf[name] = port
			}
		}
		for name, port := range sub.PortOf {
			out.PortOf[name] = port
		}
		out.SectionsOn = make(map[int32][]string, len(prev.SectionsOn)+len(sub.SectionsOn))
		for port, names := range prev.SectionsOn {
			if !affected[port] {
				out.SectionsOn[port] = names
			}
		}
		for port, names := range sub.SectionsOn {
			out.SectionsOn[port] = names
		}
	}
	if !sameFiles(prev, sub.Config, affected) {
		return Result{}, false
	}
	out.Config.Resolvers = nil
	if resolvesByName(out.Config.Backends) {
		out.Config.Resolvers = &model.Resolvers{Name: DNSResolvers}
	}
	out.Mappings = mergeMappings(prev.Mappings, sub.Mappings, affected)
	// TLSContexts are judged on their own and their Secrets, which did not
	// change: prev's verdicts stand.
	out.References = prev.References
	for r := range t.refs {
		if _, found := slices.BinarySearch(prev.References, r); !found {
			out.References = t.references(prev.References)
			break
		}
	}
	return out, true
}

// OnPorts reports whether a mapping's verdict was reached on one of
// ports: Update reaches it again when one of them changes.
func (r *MappingResult) OnPorts(ports map[int32]bool) bool {
	return ports[r.ports[0]] || ports[r.ports[1]]
}

// moved reports whether a mapping prev had on a changed port is neither
// there now nor gone, but served on a port not in affected: the caller
// did not name it, and Update cannot tell what else changed.
func moved(prev Result, s snapshot.Snapshot, sub Result, affected map[int32]bool, sel selection, idx *index) bool {
	type name struct{ namespace, name string }
	redone := make(map[name]bool, len(sub.Mappings))
	for i := range sub.Mappings {
		redone[name{sub.Mappings[i].Namespace, sub.Mappings[i].Name}] = true
	}
	var left map[name]bool
	for i := range prev.Mappings {
		r := prev.Mappings[i]
		if r.OnPorts(affected) && !redone[name{r.Namespace, r.Name}] {
			if left == nil {
				left = map[name]bool{}
			}
			left[name{r.Namespace, r.Name}] = true
		}
	}
	if left == nil {
		return false
	}
	for _, m := range s.TCPMappings {
		if left[name{m.Namespace, m.Name}] && m.DeletionTimestamp == nil && sel.selects(idx, m) {
			return true
		}
	}
	return false
}

// sameSections reports whether the sections on the affected ports are
// the same, by name and port, in prev and in fresh (which has sections on
// those ports only).
func sameSections(prev, fresh Result, affected map[int32]bool) bool {
	n := 0
	for port := range affected {
		n += len(prev.SectionsOn[port])
	}
	if n != len(fresh.PortOf) {
		return false
	}
	for name, port := range fresh.PortOf {
		if was, ok := prev.PortOf[name]; !ok || was != port {
			return false
		}
	}
	return true
}

// replaceSections is a copy of prev in which fresh's items, which prev
// has by name, take the places of prev's; both lists are in name order.
func replaceSections[T any](prev, fresh []T, name func(*T) string) []T {
	if len(fresh) == 0 {
		return prev
	}
	out := slices.Clone(prev)
	for i := range fresh {
		n := name(&fresh[i])
		at, _ := model.Find(out, n, name)
		out[at] = fresh[i]
	}
	return out
}

// resolvesByName reports whether a server of backends is resolved by
// name. It reads the servers in place and stops at the first: a weight
// change among 10,000 backends copies none of them.
func resolvesByName(backends []*model.Backend) bool {
	for _, b := range backends {
		for j := range b.Servers {
			if b.Servers[j].Resolve != nil {
				return true
			}
		}
	}
	return false
}

// mergeMappings is prev's verdicts on mappings that were not on the
// affected ports, and fresh's, in namespace/name order.
func mergeMappings(prev, fresh []*MappingResult, affected map[int32]bool) []*MappingResult {
	out := make([]*MappingResult, 0, len(prev)+len(fresh))
	i := 0
	for _, r := range prev {
		if r.OnPorts(affected) {
			continue
		}
		for i < len(fresh) && keyLess(fresh[i].Namespace, fresh[i].Name, r.Namespace, r.Name) {
			out = append(out, fresh[i])
			i++
		}
		out = append(out, r)
	}
	out = append(out, fresh[i:]...)
	if len(out) == 0 {
		return nil
	}
	return out
}

// onPorts reports whether m is, or may be, programmed on one of ports:
// its current spec, or the last accepted one that stands in for it.
func onPorts(m *v1alpha1.TCPMapping, ports map[int32]bool) bool {
	if ports[m.Spec.Port] {
		return true
	}
	return m.Status.LastAccepted != nil && ports[m.Status.LastAccepted.Spec.Port]
}

// mergeSections is prev's items that keep allows and fresh's, in name
// order; both lists are in name order.
func mergeSections[T any](prev, fresh []T, keep func(string) bool, name func(T) string) []T {
	out := make([]T, 0, len(prev)+len(fresh))
	i := 0
	for _, p := range prev {
		n := name(p)
		if !keep(n) {
			continue
		}
		for i < len(fresh) && name(fresh[i]) < n {
			out = append(out, fresh[i])
			i++
		}
		out = append(out, p)
	}
	out = append(out, fresh[i:]...)
	if len(out) == 0 {
		return nil
	}
	return out
}

// sameFiles reports whether the affected ports' sections load the same
// certificate files, with the same content, in prev and in fresh: then
// the configuration's certificate files are prev's.
func sameFiles(prev Result, fresh model.Config, affected map[int32]bool) bool {
	before := map[string]bool{}
	for port := range affected {
		for _, name := range prev.SectionsOn[port] {
			if i, ok := model.Find(prev.Config.Frontends, name, model.FrontendNameOf); ok {
				frontendFiles(prev.Config.Frontends[i], before)
			}
			if i, ok := model.Find(prev.Config.Backends, name, model.BackendNameOf); ok {
				backendFiles(prev.Config.Backends[i], before)
			}
		}
	}
	after := map[string]bool{}
	for _, f := range fresh.Frontends {
		frontendFiles(f, after)
	}
	for _, b := range fresh.Backends {
		backendFiles(b, after)
	}
	if !reflect.DeepEqual(before, after) {
		return false
	}
	have := make(map[string]*model.Certificate, len(prev.Config.Certificates))
	for i := range prev.Config.Certificates {
		have[prev.Config.Certificates[i].File] = &prev.Config.Certificates[i]
	}
	for i := range fresh.Certificates {
		c := &fresh.Certificates[i]
		if h := have[c.File]; h == nil || !reflect.DeepEqual(*h, *c) {
			return false
		}
	}
	return true
}

func frontendFiles(f *model.Frontend, into map[string]bool) {
	if tls := f.Bind.TLS; tls != nil {
		for _, name := range []string{tls.Certificate, tls.CAFile, tls.CRLFile} {
			if name != "" {
				into[name] = true
			}
		}
	}
}

func backendFiles(b *model.Backend, into map[string]bool) {
	add := func(s *model.Server) {
		if s == nil {
			return
		}
		if s.CAFile != "" && s.CAFile != model.SystemCAFile {
			into[s.CAFile] = true
		}
		if s.ClientCertificate != "" {
			into[s.ClientCertificate] = true
		}
	}
	for i := range b.Servers {
		add(&b.Servers[i])
	}
	add(b.Template)
}
