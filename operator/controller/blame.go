package controller

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/apply"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// HAProxy names what it refuses: a proxy ('tcpm-fe-3600'), a certificate
// file (…/ns_name.pem). These are HAProxy's messages, not configuration.
var (
	proxyToken = regexp.MustCompile(model.Prefix + `-[A-Za-z0-9_.:-]*[A-Za-z0-9_]`)
	fileToken  = regexp.MustCompile(`[A-Za-z0-9_.-]+\.pem`)
)

// namedIn returns the objects each HAProxy message line names, through the
// sections and files of cfg that carry them.
func namedIn(line string, cfg model.Config) []string {
	seen := map[string]bool{}
	var refs []string
	for _, tok := range append(proxyToken.FindAllString(line, -1), fileToken.FindAllString(line, -1)...) {
		for _, ref := range cfg.SourcesOf(tok) {
			if !seen[ref] {
				seen[ref] = true
				refs = append(refs, ref)
			}
		}
	}
	sort.Strings(refs)
	return refs
}

// blameLines finds the objects HAProxy's lines are about, and for each the
// lines that name it. When a line names a TLSContext, the TLSContext is
// blamed rather than the mappings that use it: TLS settings, certificates
// and CAs are the TLSContext's; its mappings then report it.
func blameLines(lines []string, cfg model.Config) map[string][]string {
	out := map[string][]string{}
	for _, line := range lines {
		refs := namedIn(line, cfg)
		var contexts []string
		for _, ref := range refs {
			if strings.HasPrefix(ref, translate.RefTLSContext+"/") {
				contexts = append(contexts, ref)
			}
		}
		if len(contexts) > 0 {
			refs = contexts
		}
		for _, ref := range refs {
			out[ref] = append(out[ref], line)
		}
	}
	return out
}

// linesAbout keeps the lines whose every named object is ref, so that a
// tenant's status never quotes a line about another tenant's objects.
func linesAbout(ref string, lines []string, cfg model.Config) []string {
	var out []string
	for _, line := range lines {
		refs := namedIn(line, cfg)
		if len(refs) == 0 {
			continue
		}
		own := true
		for _, r := range refs {
			if r != ref && !sameNamespace(r, ref) {
				own = false
			}
		}
		if own {
			out = append(out, line)
		}
	}
	return out
}

func sameNamespace(a, b string) bool {
	na := strings.SplitN(a, "/", 3)
	nb := strings.SplitN(b, "/", 3)
	return len(na) == 3 && len(nb) == 3 && na[1] == nb[1]
}

// exclusionFor is the verdict on ref, refused by HAProxy at stage, quoting
// only lines about it.
func exclusionFor(ref string, generation int64, refused *apply.RefusedError, cfg model.Config) snapshot.Exclusion {
	ex := snapshot.Exclusion{Ref: ref, Generation: generation}
	switch {
	case refused.Stage == apply.StageReload:
		ex.Reason = v1alpha1.ReasonReloadFailed
		ex.Message = "HAProxy could not start with this object's configuration (an address it cannot bind, a port already in use); the previous configuration keeps running without it"
	case strings.HasPrefix(ref, translate.RefTLSContext+"/"):
		ex.Reason = v1alpha1.ReasonInvalidTLSSettings
		ex.Message = "HAProxy refused this TLSContext's settings or files (an unknown cipher or curve, an unusable certificate, CA or CRL); it is left out of the configuration"
	default:
		ex.Reason = v1alpha1.ReasonRefusedByHAProxy
		ex.Message = "HAProxy refused this object's configuration; it is left out of the configuration"
	}
	if own := linesAbout(ref, refused.Lines, cfg); len(own) > 0 {
		ex.Message += ". HAProxy said: " + strings.Join(own, " | ")
	}
	return ex
}

// generationInEffect is the generation of ref whose spec the translation
// used: the current one, or the last accepted one it fell back to.
func generationInEffect(ref string, snap *snapshot.Snapshot, res translate.Result) int64 {
	kind, key, _ := strings.Cut(ref, "/")
	switch kind {
	case translate.RefTCPMapping:
		for _, m := range res.Mappings {
			if m.Namespace+"/"+m.Name == key {
				if m.InEffectGeneration != 0 {
					return m.InEffectGeneration
				}
				return m.Generation
			}
		}
	case translate.RefTLSContext:
		for _, c := range res.TLSContexts {
			if c.Namespace+"/"+c.Name == key {
				if c.InEffectGeneration != 0 {
					return c.InEffectGeneration
				}
				return c.Generation
			}
		}
		for _, c := range snap.TLSContexts {
			if c.Namespace+"/"+c.Name == key {
				return c.Generation
			}
		}
	}
	return 0
}

// allSources lists every object the configuration carries, TLSContexts
// first (their settings fail more often than a mapping's).
func allSources(cfg model.Config) []string {
	seen := map[string]bool{}
	add := func(refs []string) {
		for _, r := range refs {
			seen[r] = true
		}
	}
	for _, f := range cfg.Frontends {
		add(f.Sources)
	}
	for _, b := range cfg.Backends {
		add(b.Sources)
	}
	for _, c := range cfg.Certificates {
		add(c.Sources)
	}
	out := make([]string, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		ci, cj := strings.HasPrefix(out[i], translate.RefTLSContext+"/"), strings.HasPrefix(out[j], translate.RefTLSContext+"/")
		if ci != cj {
			return ci
		}
		return out[i] < out[j]
	})
	return out
}

// exclusionTTL is how long an object refused at reload stays out before it
// is tried again: the address may have appeared, the port been freed.
const exclusionTTL = 10 * time.Minute

// exclusions remembers, per HAProxy, the objects HAProxy refused. Kept in
// memory: after a restart the operator meets the same refusal once more,
// which changes nothing on the instances.
type exclusions struct {
	mu   sync.Mutex
	byHP map[types.NamespacedName]map[string]excluded
}

type excluded struct {
	snapshot.Exclusion
	at time.Time
}

func exclusionKey(ref string, gen int64) string { return fmt.Sprintf("%s@%d", ref, gen) }

// current returns hap's exclusions that still apply to the objects in
// snap: a new generation (other than the last accepted one) or a deleted
// object clears them, and refusals at reload expire.
func (e *exclusions) current(hap types.NamespacedName, snap *snapshot.Snapshot, now time.Time) []snapshot.Exclusion {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.byHP[hap]) == 0 {
		// Nothing excluded: no need to know which objects still exist.
		return nil
	}
	live := map[string]bool{}
	for _, m := range snap.TCPMappings {
		ref := translate.RefTCPMapping + "/" + m.Namespace + "/" + m.Name
		live[exclusionKey(ref, m.Generation)] = true
		if la := m.Status.LastAccepted; la != nil {
			live[exclusionKey(ref, la.Generation)] = true
		}
	}
	for _, c := range snap.TLSContexts {
		ref := translate.RefTLSContext + "/" + c.Namespace + "/" + c.Name
		live[exclusionKey(ref, c.Generation)] = true
		if la := c.Status.LastAccepted; la != nil {
			live[exclusionKey(ref, la.Generation)] = true
		}
	}
	var out []snapshot.Exclusion
	for k, ex := range e.byHP[hap] {
		if !live[k] || (ex.Reason == v1alpha1.ReasonReloadFailed && now.Sub(ex.at) > exclusionTTL) {
			delete(e.byHP[hap], k)
			continue
		}
		out = append(out, ex.Exclusion)
	}
	sort.Slice(out, func(i, j int) bool {
		return exclusionKey(out[i].Ref, out[i].Generation) < exclusionKey(out[j].Ref, out[j].Generation)
	})
	return out
}

func (e *exclusions) add(hap types.NamespacedName, now time.Time, exs ...snapshot.Exclusion) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.byHP == nil {
		e.byHP = map[types.NamespacedName]map[string]excluded{}
	}
	if e.byHP[hap] == nil {
		e.byHP[hap] = map[string]excluded{}
	}
	for _, ex := range exs {
		e.byHP[hap][exclusionKey(ex.Ref, ex.Generation)] = excluded{Exclusion: ex, at: now}
	}
}

func (e *exclusions) forget(hap types.NamespacedName) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.byHP, hap)
}
