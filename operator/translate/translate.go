// Package translate turns a snapshot of Kubernetes resources into the HAProxy
// model one HAProxy resource should run, and into a verdict for every
// TCPMapping and TLSContext it serves. It is a pure function: no client, no
// network, no clock, no logging. Everything it decides is visible in its
// result, so it is tested with tables and golden files alone.
package translate

import (
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

// Condition is the outcome of one check: true, or false with a machine
// reason and a sentence naming the objects involved.
type Condition struct {
	Status  bool   `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// MappingResult is the verdict on one TCPMapping.
type MappingResult struct {
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	Generation int64  `json:"generation,omitempty"`
	// InEffectGeneration is the generation whose spec the configuration
	// carries: Generation when it is accepted, the last accepted one while
	// a newer one is rejected (Accepted is then False with reason
	// PreviousGenerationInEffect), 0 when none. Objects read from files
	// have generation 0: Programmable says whether one is in effect.
	InEffectGeneration int64     `json:"inEffectGeneration,omitempty"`
	Accepted           Condition `json:"accepted"`
	// ResolvedRefs is about the references of the generation in effect,
	// or of the current one when none is.
	ResolvedRefs Condition `json:"resolvedRefs"`
	// UpstreamTLSVerified, for an https:// service whose TLS settings
	// resolved, says whether the upstream's certificate is verified;
	// False (reason InsecureSkipVerify) is a warning, not a rejection.
	UpstreamTLSVerified *Condition `json:"upstreamTLSVerified,omitempty"`
	// Frontend and Backend carry the mapping when it is programmable.
	Frontend string `json:"frontend,omitempty"`
	Backend  string `json:"backend,omitempty"`
	// ports are the mapping's spec port and the port of its last accepted
	// spec when it was translated: Update redoes the verdict when either
	// changes.
	ports [2]int32
}

// Programmable reports whether a generation of the mapping (the current
// one, or the last accepted one) is part of the configuration.
func (r MappingResult) Programmable() bool {
	return (r.Accepted.Status || r.Accepted.Reason == v1alpha1.ReasonPreviousGenerationInEffect) && r.ResolvedRefs.Status
}

// Verdict is the verdict on the mapping namespace/name, nil when the
// translation has none. Mappings are in namespace/name order: a lookup
// among 10,000 builds no index.
func (r *Result) Verdict(namespace, name string) *MappingResult {
	i := sort.Search(len(r.Mappings), func(i int) bool {
		m := r.Mappings[i]
		return !keyLess(m.Namespace, m.Name, namespace, name)
	})
	if i < len(r.Mappings) && r.Mappings[i].Namespace == namespace && r.Mappings[i].Name == name {
		return r.Mappings[i]
	}
	return nil
}

// RecordsSpecAsAccepted reports whether the status that records this
// verdict names the mapping's spec at generation as its last accepted
// one: the current generation is in effect (objects read from files,
// generation 0, have no generations to record).
func (r MappingResult) RecordsSpecAsAccepted(generation int64) bool {
	return r.Programmable() && r.InEffectGeneration == generation && generation != 0
}

// TLSContextResult is the verdict on one TLSContext.
type TLSContextResult struct {
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	Generation int64  `json:"generation,omitempty"`
	// InEffectGeneration is the generation whose settings the
	// configuration carries, as for MappingResult.
	InEffectGeneration int64      `json:"inEffectGeneration,omitempty"`
	Accepted           Condition  `json:"accepted"`
	ResolvedRefs       Condition  `json:"resolvedRefs"`
	NotAfter           *time.Time `json:"notAfter,omitempty"`
	DNSNames           []string   `json:"dnsNames,omitempty"`
}

// Result is the configuration for one HAProxy and the verdicts on what it
// serves.
type Result struct {
	Config model.Config `json:"config"`
	// HAProxy is the verdict on the HAProxy resource's own settings.
	HAProxy Condition `json:"haproxy"`
	// ReferenceGrants says how references into other namespaces are
	// judged: False when the ReferenceGrant CRD is missing and the policy
	// needs grants.
	ReferenceGrants Condition `json:"referenceGrants"`
	// Mappings are shared with the results Update derives from this
	// one, which keep the verdicts of mappings off the changed ports:
	// copying pointers, not verdicts, a change costs what its port does.
	// A verdict is never changed once in a Result.
	Mappings    []*MappingResult   `json:"mappings"`
	TLSContexts []TLSContextResult `json:"tlsContexts,omitempty"`
	// References are the objects the configuration depends on, found or
	// not, as Kind/namespace/name: a change to one of them calls for a new
	// translation.
	References []string `json:"references,omitempty"`
	// PortOf names, for every frontend, backend and map of Config, the
	// port whose listener it serves: Update replaces a port's sections
	// without touching the others'.
	PortOf map[string]int32 `json:"-"`
	// SectionsOn is PortOf the other way round: the names of each port's
	// frontends, backends and maps, so that what a change to a few ports
	// touches is found without reading every section.
	SectionsOn map[int32][]string `json:"-"`
}

// Reference kinds in Result.References.
const (
	RefService    = "Service"
	RefSecret     = "Secret"
	RefTLSContext = "TLSContext"
	// RefTCPMapping appears in the Sources of the model's sections.
	RefTCPMapping = "TCPMapping"
	// RefReferenceGrant with the name AnyGrant stands for every
	// ReferenceGrant of a namespace the configuration has a reference
	// into: ReferenceGrant/<namespace>/*.
	RefReferenceGrant = "ReferenceGrant"
	AnyGrant          = "*"
)

// Defaults applied when the HAProxy resource leaves a field empty (the API
// server fills them too; translation does not rely on it).
const (
	DefaultStatsPort     = 8404
	DefaultStatsPath     = "/stats"
	DefaultDataPlanePort = 5555
	DefaultHardStopAfter = 15 * time.Minute
	// DefaultHandshakeTimeout bounds a client's time to be routed.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultMaxReloadsPerWorker bounds how many reloads an old worker
	// survives.
	DefaultMaxReloadsPerWorker = 5
)

// Translate computes the configuration and verdicts for s.HAProxy.
func Translate(s snapshot.Snapshot) Result {
	idx := newIndex(s)
	t := &translation{idx: idx, hap: &s.HAProxy, policy: newPolicy(&s.HAProxy, s.ReferenceGrants, s.NoReferenceGrantCRD)}
	return t.run()
}

type translation struct {
	idx    *index
	hap    *v1alpha1.HAProxy
	policy *policy

	contexts map[string]*contextInfo
	refs     map[string]bool
	// listeners is the parsed spec.listeners of the HAProxy.
	listeners []portRange
	result    Result
}

func (t *translation) reference(kind, namespacedName string) {
	t.refs[kind+"/"+namespacedName] = true
}

// choice is which generation of a mapping a round of translation tries.
type choice int

const (
	useCurrent  choice = iota // the current spec
	usePrevious               // status.lastAccepted, the current one being rejected
	useNone                   // neither can be programmed
)

func (t *translation) run() Result {
	t.contexts = map[string]*contextInfo{}
	t.refs = map[string]bool{}
	t.result.ReferenceGrants = t.policy.condition()

	mappings := t.idx.selectedMappings(t.hap)
	sort.SliceStable(mappings, func(i, j int) bool { return older(mappings[i], mappings[j]) })
	t.translateMappings(mappings)
	t.contextResults()
	t.result.References = t.references(nil)
	return t.result
}

// translateMappings evaluates mappings (oldest first), builds the
// configuration from those that can be programmed and records a verdict
// on each.
func (t *translation) translateMappings(mappings []*v1alpha1.TCPMapping) {
	// Rounds: when the current generation of a mapping is rejected and an
	// older one was accepted, the older one is tried in its place, and
	// everything is built again (a weight group needs all its members at
	// once). A mapping only moves from current to previous to none, so
	// this ends; usually after one or two rounds.
	choices := make([]choice, len(mappings))
	current := make([]MappingResult, len(mappings)) // verdict on the current generation
	var results []*MappingResult
	for {
		t.result.Config = t.globalConfig()
		t.result.PortOf = map[string]int32{}
		t.result.SectionsOn = map[int32][]string{}
		results = make([]*MappingResult, len(mappings))
		tried := make([]*candidate, len(mappings))
		var candidates []*candidate
		for i, m := range mappings {
			var c *candidate
			switch choices[i] {
			case useNone:
				r := current[i]
				results[i] = &r
				continue
			case usePrevious:
				c = t.evaluate(m, &m.Status.LastAccepted.Spec, m.Status.LastAccepted.Generation)
			default:
				c = t.evaluate(m, &m.Spec, m.Generation)
			}
			tried[i], results[i] = c, c.result
			if c.result.Programmable() {
				candidates = append(candidates, c)
			}
		}
		t.build(candidates)

		changed := false
		for i, c := range tried {
			switch {
			case c == nil:
			case choices[i] == useCurrent && !c.result.Accepted.Status && t.previousUsable(mappings[i]):
				current[i], choices[i], changed = *c.result, usePrevious, true
			case choices[i] == usePrevious && !c.result.Programmable():
				choices[i], changed = useNone, true
			}
		}
		if !changed {
			break
		}
	}

	t.result.Mappings = nil
	for i, r := range results {
		m := mappings[i]
		switch {
		case choices[i] == usePrevious:
			prev := m.Status.LastAccepted.Generation
			r.InEffectGeneration = prev
			r.Accepted = fail(v1alpha1.ReasonPreviousGenerationInEffect, previousInEffect(m.Generation, current[i].Accepted, prev))
		case r.Programmable():
			r.InEffectGeneration = m.Generation
		}
		r.ports = [2]int32{m.Spec.Port, m.Spec.Port}
		if la := m.Status.LastAccepted; la != nil {
			r.ports[1] = la.Spec.Port
		}
		if v := r.UpstreamTLSVerified; v != nil && !v.Status && r.Accepted.Status {
			r.Accepted.Message += "; warning: " + v.Message
		}
		t.result.Mappings = append(t.result.Mappings, r)
	}
	sort.Slice(t.result.Mappings, func(i, j int) bool {
		a, b := t.result.Mappings[i], t.result.Mappings[j]
		return keyLess(a.Namespace, a.Name, b.Namespace, b.Name)
	})
}

// references are the objects this translation read, with more, sorted
// and without repeats.
func (t *translation) references(more []string) []string {
	out := make([]string, 0, len(t.refs)+len(more))
	for r := range t.refs {
		out = append(out, r)
	}
	for _, r := range more {
		if !t.refs[r] {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

// previousUsable reports whether a mapping has an accepted generation older
// than its current one that HAProxy did not refuse.
func (t *translation) previousUsable(m *v1alpha1.TCPMapping) bool {
	prev := m.Status.LastAccepted
	return prev != nil && prev.Generation < m.Generation &&
		t.excluded(RefTCPMapping+"/"+key(m.Namespace, m.Name), prev.Generation) == nil
}

// older orders mappings by age: creation time, then namespace/name, so the
// mapping that was there first keeps what it has. Creation times have a
// one-second grain: within one second, a mapping already accepted goes
// before one that is not, so a newcomer never displaces a running mapping.
func older(a, b *v1alpha1.TCPMapping) bool {
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	if aa, ab := wasAccepted(a), wasAccepted(b); aa != ab {
		return aa
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

// createdBefore orders mappings by creation time, then namespace/name:
// by nothing the operator writes.
func createdBefore(a, b *v1alpha1.TCPMapping) bool {
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return keyLess(a.Namespace, a.Name, b.Namespace, b.Name)
}

func wasAccepted(m *v1alpha1.TCPMapping) bool {
	if m.Status.LastAccepted != nil {
		return true
	}
	for _, c := range m.Status.Conditions {
		if c.Type == v1alpha1.ConditionAccepted {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

func ok(reason, message string) Condition {
	return Condition{Status: true, Reason: reason, Message: message}
}

func fail(reason, message string) Condition {
	return Condition{Status: false, Reason: reason, Message: message}
}
