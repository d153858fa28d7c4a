package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/render"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// inputVersions say which version of every input a translation read, so
// the next reconcile can tell what changed since: most changes touch one
// port, and only that port is translated again (translate.Update).
type inputVersions struct {
	// global covers the inputs every port depends on: the HAProxy, the
	// namespaces, TLSContexts, Secrets, ReferenceGrants and exclusions.
	global string
	// mappings are the TCPMappings' versions: a map shared along the
	// chain of translations, which versions read against earlier ones
	// change through overlay (nil: gone) until they are kept (keep).
	// Copying 10,000 versions per reconcile cost more than the rest of a
	// weight change.
	mappings map[types.NamespacedName]mappingVersion
	overlay  map[types.NamespacedName]*mappingVersion
	// objects are the cached objects mappings holds, shared with it: a
	// reconcile finds an unchanged mapping by its pointer alone, without
	// reading the object or hashing its name (10,000 names per reconcile
	// were the largest part of reading the versions).
	objects map[*v1alpha1.TCPMapping]struct{}
	// services are the versions of each Service and its EndpointSlices,
	// by namespace/name.
	services map[string]string
	// serial names these versions; against, when not 0, is the serial of
	// the versions they were read against, and changed the mappings whose
	// versions differ from those (added and removed ones included):
	// changedPorts then looks at these alone.
	serial, against uint64
	changed         []types.NamespacedName
}

// versionSerials numbers inputVersions.
var versionSerials atomic.Uint64

// mapping is the version of the mapping k.
func (v *inputVersions) mapping(k types.NamespacedName) (mappingVersion, bool) {
	if mv, ok := v.overlay[k]; ok {
		if mv == nil {
			return mappingVersion{}, false
		}
		return *mv, true
	}
	mv, ok := v.mappings[k]
	return mv, ok
}

// keep writes the overlay into the shared map, once these versions are
// those of the translation kept for the next reconcile; the versions
// they were read against are not used after.
func (v *inputVersions) keep() {
	for k, mv := range v.overlay {
		if was, ok := v.mappings[k]; ok {
			delete(v.objects, was.obj)
		}
		if mv == nil {
			delete(v.mappings, k)
		} else {
			v.mappings[k] = *mv
			v.objects[mv.obj] = struct{}{}
		}
	}
	v.overlay = nil
}

// mappingVersion is a TCPMapping's resourceVersion and what of it a
// translation reads: its identity, generation, labels, deletion, the
// generation it was last accepted at and whether it is accepted (older
// breaks ties by it), and the ports it may be programmed on.
type mappingVersion struct {
	// obj is the cached object read: the cache replaces an object that
	// changes, so the same one is the same version.
	obj        *v1alpha1.TCPMapping
	version    string
	uid        types.UID
	generation int64
	labels     map[string]string
	deleting   bool
	accepted   int64
	acceptedAs metav1.ConditionStatus
	ports      [2]int32
}

// sameObject says whether a and b are one version of the object.
func (a mappingVersion) sameObject(b mappingVersion) bool {
	return a.version == b.version && a.sameInputs(b)
}

// sameInputs says whether a translation reads the same of a and b: the
// operator's own status writes (Programmed, parents) change neither.
func (a mappingVersion) sameInputs(b mappingVersion) bool {
	return a.uid == b.uid && a.generation == b.generation && a.deleting == b.deleting &&
		a.accepted == b.accepted && a.acceptedAs == b.acceptedAs && a.ports == b.ports &&
		maps.Equal(a.labels, b.labels)
}

// records says whether now is was with nothing changed but what a
// translation reads of the status, changed as a status write of verdict
// v (the last translation's, reached from was) records it: the Accepted
// condition, and the spec as the last accepted one when v puts it in
// effect. The same inputs with their verdicts recorded translate to the
// same configuration and verdicts (translate's
// TestRecordingTheVerdictsChangesNoTranslation), so the operator's own
// status writes need no new translation: after a burst of 10,000
// mappings, every port was translated again once their statuses were
// written, a 0.4 s translation and the operator's peak memory.
func (was mappingVersion) records(now mappingVersion, v *translate.MappingResult) bool {
	if v == nil || v.Generation != was.generation || was.uid != now.uid || was.generation != now.generation ||
		was.deleting != now.deleting || was.ports[0] != now.ports[0] || !maps.Equal(was.labels, now.labels) {
		return false
	}
	as := metav1.ConditionFalse
	if v.Accepted.Status {
		as = metav1.ConditionTrue
	}
	if now.acceptedAs != as {
		return false
	}
	if v.RecordsSpecAsAccepted(now.generation) {
		return now.accepted == now.generation && now.ports[1] == now.ports[0]
	}
	return now.accepted == was.accepted && now.ports[1] == was.ports[1]
}

// lastTranslation is a reconcile's translation and rendering, kept for
// the next reconcile of the same HAProxy.
type lastTranslation struct {
	versions inputVersions
	res      translate.Result
	rendered *render.Rendered
	hash     string
	// revision names res.Config for the applier (apply.Desired).
	revision uint64
}

// translated is a reconcile's translation: its result, its rendering
// when known (nil: render in full), and what the applier is told of its
// model: its revision and, when it was derived from the last one, which
// sections may differ from it.
type translated struct {
	res      translate.Result
	rendered *render.Rendered
	hash     string
	revision uint64
	since    uint64
	changed  []string
	// ports are the ports translated again, when derived.
	ports []int32
}

// versionsOf reads the versions of a snapshot's inputs. Against before
// (the last translation's, or nil), the mappings' versions are compared
// as they are read: when none changed, before's stand, and otherwise
// only the changed ones are copied in, so a reconcile after one change
// does not build a map of 10,000 entries.
func versionsOf(snap *snapshot.Snapshot, before *inputVersions) inputVersions {
	// The cache lists in no fixed order: each kind is sorted.
	var parts []string
	hap := &snap.HAProxy
	parts = append(parts, fmt.Sprintf("haproxy %s %d %v %v %s", hap.UID, hap.Generation, hap.Labels, hap.Spec.Stats.AuthSecret, hap.DeletionTimestamp))
	for i := range snap.Namespaces {
		parts = append(parts, "ns "+snap.Namespaces[i].Name+" "+snap.Namespaces[i].ResourceVersion)
	}
	for i := range snap.TLSContexts {
		c := &snap.TLSContexts[i]
		parts = append(parts, "ctx "+c.Namespace+"/"+c.Name+" "+c.ResourceVersion)
	}
	for i := range snap.Secrets {
		s := &snap.Secrets[i]
		parts = append(parts, "secret "+s.Namespace+"/"+s.Name+" "+s.ResourceVersion)
	}
	for i := range snap.ReferenceGrants {
		rg := &snap.ReferenceGrants[i]
		parts = append(parts, "grant "+rg.Namespace+"/"+rg.Name+" "+rg.ResourceVersion)
	}
	parts = append(parts, fmt.Sprintf("nocrd %v", snap.NoReferenceGrantCRD))
	for _, ex := range snap.Exclusions {
		parts = append(parts, fmt.Sprintf("exclusion %s@%d %s %q", ex.Ref, ex.Generation, ex.Reason, ex.Message))
	}
	sort.Strings(parts)

	v := inputVersions{
		global:   strings.Join(parts, "|"),
		services: make(map[string]string, len(snap.Services)),
	}
	v.serial = versionSerials.Add(1)
	v.mappings, v.objects, v.overlay, v.changed = mappingVersions(snap, before)
	if before != nil && before.overlay == nil {
		v.against = before.serial
	}
	for i := range snap.Services {
		s := &snap.Services[i]
		v.services[s.Namespace+"/"+s.Name] = s.ResourceVersion
	}
	for i := range snap.EndpointSlices {
		es := &snap.EndpointSlices[i]
		k := es.Namespace + "/" + es.Labels[discoveryv1.LabelServiceName]
		v.services[k] += " " + es.Name + "@" + es.ResourceVersion
	}
	return v
}

// mappingVersionOf reads one mapping's version.
func mappingVersionOf(m *v1alpha1.TCPMapping) mappingVersion {
	mv := mappingVersion{obj: m, version: m.ResourceVersion, uid: m.UID, generation: m.Generation, labels: m.Labels,
		deleting: m.DeletionTimestamp != nil, ports: [2]int32{m.Spec.Port, m.Spec.Port}}
	if la := m.Status.LastAccepted; la != nil {
		mv.accepted, mv.ports[1] = la.Generation, la.Spec.Port
	}
	if c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionAccepted); c != nil {
		mv.acceptedAs = c.Status
	}
	return mv
}

// mappingVersions are the snapshot's mappings' versions and, against
// before, the mappings whose versions changed: before's map with an
// overlay of those.
func mappingVersions(snap *snapshot.Snapshot, before *inputVersions) (map[types.NamespacedName]mappingVersion, map[*v1alpha1.TCPMapping]struct{}, map[types.NamespacedName]*mappingVersion, []types.NamespacedName) {
	if before == nil || before.overlay != nil {
		// Nothing kept to read against: every version is read.
		out := make(map[types.NamespacedName]mappingVersion, len(snap.TCPMappings))
		objects := make(map[*v1alpha1.TCPMapping]struct{}, len(snap.TCPMappings))
		for _, m := range snap.TCPMappings {
			out[types.NamespacedName{Namespace: m.Namespace, Name: m.Name}] = mappingVersionOf(m)
			objects[m] = struct{}{}
		}
		return out, objects, nil, nil
	}
	var (
		changed []types.NamespacedName
		overlay map[types.NamespacedName]*mappingVersion
		kept    int // mappings before had that are still here
	)
	for _, m := range snap.TCPMappings {
		if _, same := before.objects[m]; same {
			// The very object read before: the same version.
			kept++
			continue
		}
		k := types.NamespacedName{Namespace: m.Namespace, Name: m.Name}
		was, ok := before.mappings[k]
		if ok {
			kept++
		}
		mv := mappingVersionOf(m)
		if ok && was.sameObject(mv) {
			continue
		}
		if overlay == nil {
			overlay = map[types.NamespacedName]*mappingVersion{}
		}
		changed, overlay[k] = append(changed, k), &mv
	}
	if kept < len(before.mappings) {
		// Some are gone: finding them takes the set of those here, which
		// only a deletion costs.
		present := make(map[types.NamespacedName]bool, len(snap.TCPMappings))
		for _, m := range snap.TCPMappings {
			present[types.NamespacedName{Namespace: m.Namespace, Name: m.Name}] = true
		}
		for k := range before.mappings {
			if !present[k] {
				if overlay == nil {
					overlay = map[types.NamespacedName]*mappingVersion{}
				}
				changed, overlay[k] = append(changed, k), nil
			}
		}
	}
	return before.mappings, before.objects, overlay, changed
}

// changedPorts are the ports whose mappings or Services differ between
// before and now; false when something every port depends on changed.
// last, when not nil, is the translation that read before: a mapping
// that changed only by recording its verdict there changes no port.
func (r *HAProxyReconciler) changedPorts(ctx context.Context, before, now inputVersions, last *translate.Result) ([]int32, bool) {
	if before.global != now.global {
		return nil, false
	}
	ports := map[int32]bool{}
	mark := func(k types.NamespacedName) {
		if mv, ok := now.mapping(k); ok {
			if was, ok := before.mapping(k); ok && (was.sameInputs(mv) || last != nil && was.records(mv, last.Verdict(k.Namespace, k.Name))) {
				// Only the status the operator writes changed, or it
				// records the verdict last reached.
				return
			}
			ports[mv.ports[0]], ports[mv.ports[1]] = true, true
		}
		if was, ok := before.mapping(k); ok {
			ports[was.ports[0]], ports[was.ports[1]] = true, true
		}
	}
	if now.against != 0 && now.against == before.serial {
		for _, k := range now.changed {
			mark(k)
		}
	} else {
		// Versions read against other ones (not the case when a reconcile
		// reads them against the last translation's): every mapping is
		// compared.
		keys := map[types.NamespacedName]bool{}
		for _, v := range []*inputVersions{&before, &now} {
			for k := range v.mappings {
				keys[k] = true
			}
			for k := range v.overlay {
				keys[k] = true
			}
		}
		for k := range keys {
			was, had := before.mapping(k)
			mv, has := now.mapping(k)
			if had != has || had && !was.sameObject(mv) {
				mark(k)
			}
		}
	}
	var services []string
	for k, v := range now.services {
		if before.services[k] != v {
			services = append(services, k)
		}
	}
	for k := range before.services {
		if _, ok := now.services[k]; !ok {
			services = append(services, k)
		}
	}
	for _, svc := range services {
		// The mappings that may name the Service, from the cache's index.
		var list v1alpha1.TCPMappingList
		if err := r.Client.List(ctx, &list, client.MatchingFields{indexMappingService: svc}, client.UnsafeDisableDeepCopy); err != nil {
			return nil, false
		}
		for i := range list.Items {
			for _, spec := range mappingSpecs(&list.Items[i]) {
				ports[spec.Port] = true
			}
		}
	}
	out := make([]int32, 0, len(ports))
	for p := range ports {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, true
}

// translateSince translates snap, from the last translation of the same
// HAProxy where only some ports changed, and renders what it can from
// the last rendering: the last text itself when the changed ports render
// as before, else the last text with the changed ports' sections rendered
// again. A nil rendering means the caller renders in full.
func (r *HAProxyReconciler) translateSince(ctx context.Context, key types.NamespacedName, snap *snapshot.Snapshot, versions inputVersions) translated {
	logger := log.FromContext(ctx)
	full := func() translated {
		return translated{res: translate.Translate(*snap), revision: r.revisions.Add(1)}
	}
	v, ok := r.translations.Load(key)
	if !ok {
		logger.V(1).Info("Translating in full", "why", "no earlier translation")
		return full()
	}
	last := v.(*lastTranslation)
	ports, ok := r.changedPorts(ctx, last.versions, versions, &last.res)
	if !ok {
		logger.V(1).Info("Translating in full", "why", "an input of every port changed")
		return full()
	}
	if len(ports) == 0 {
		return translated{res: last.res, rendered: last.rendered, hash: last.hash, revision: last.revision}
	}
	res, ok := translate.Update(last.res, *snap, ports)
	if !ok {
		logger.V(1).Info("Translating in full", "why", "the change reaches beyond its ports", "ports", ports)
		return full()
	}
	logger.V(1).Info("Translated the changed ports", "ports", ports)
	out := translated{res: res, revision: r.revisions.Add(1), since: last.revision,
		changed: sectionsOn(ports, last.res, res), ports: ports}
	if last.rendered == nil {
		return out
	}
	rendered, err := last.rendered.Update(res.Config, out.changed)
	if err != nil {
		logger.V(1).Info("Rendering in full", "why", err.Error())
		return out
	}
	if rendered.Digest() == last.rendered.Digest() {
		// Weights and SNI hosts live in map files: the text stays.
		out.rendered, out.hash = last.rendered, last.hash
		return out
	}
	out.rendered, out.hash = rendered, rendered.Hash()
	return out
}

// sectionsOn names the sections on ports in any of results (the last
// translation and this one, so that sections gone count too), in name
// order. Every section translate builds has a port (its tests check), and
// each result lists its sections by port: a change to a few ports costs
// what is on them, not the 15,000 sections of 10,000 mappings.
func sectionsOn(ports []int32, results ...translate.Result) []string {
	var names []string
	for _, r := range results {
		for _, p := range ports {
			names = append(names, r.SectionsOn[p]...)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}
