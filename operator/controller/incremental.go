package controller

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
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
	// mappings are the TCPMappings' versions.
	mappings map[types.NamespacedName]mappingVersion
	// services are the versions of each Service and its EndpointSlices,
	// by namespace/name.
	services map[string]string
}

// mappingVersion is a TCPMapping's resourceVersion and the ports it may
// be programmed on.
type mappingVersion struct {
	version string
	ports   [2]int32
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
	changed  func(name string) bool
}

// versionsOf reads the versions of a snapshot's inputs.
func versionsOf(snap *snapshot.Snapshot) inputVersions {
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
		mappings: make(map[types.NamespacedName]mappingVersion, len(snap.TCPMappings)),
		services: make(map[string]string, len(snap.Services)),
	}
	for _, m := range snap.TCPMappings {
		// The resourceVersion: the operator's own status writes change it
		// too, which costs that mapping's port a translation, never a
		// missed change.
		mv := mappingVersion{version: m.ResourceVersion, ports: [2]int32{m.Spec.Port, m.Spec.Port}}
		if la := m.Status.LastAccepted; la != nil {
			mv.ports[1] = la.Spec.Port
		}
		v.mappings[types.NamespacedName{Namespace: m.Namespace, Name: m.Name}] = mv
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

// changedPorts are the ports whose mappings or Services differ between
// before and now; false when something every port depends on changed.
func (r *HAProxyReconciler) changedPorts(ctx context.Context, before, now inputVersions) ([]int32, bool) {
	if before.global != now.global {
		return nil, false
	}
	ports := map[int32]bool{}
	for k, mv := range now.mappings {
		if was, ok := before.mappings[k]; !ok || was.version != mv.version || was.ports != mv.ports {
			ports[mv.ports[0]], ports[mv.ports[1]] = true, true
			if ok {
				ports[was.ports[0]], ports[was.ports[1]] = true, true
			}
		}
	}
	for k, was := range before.mappings {
		if _, ok := now.mappings[k]; !ok {
			ports[was.ports[0]], ports[was.ports[1]] = true, true
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
	ports, ok := r.changedPorts(ctx, last.versions, versions)
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
		changed: onPorts(ports, last.res.PortOf, res.PortOf)}
	if last.rendered == nil {
		return out
	}
	rendered, err := last.rendered.Update(res.Config, out.changed)
	if err != nil {
		logger.V(1).Info("Rendering in full", "why", err.Error())
		return out
	}
	if bytes.Equal(rendered.Text, last.rendered.Text) {
		// Weights and SNI hosts live in map files: the text stays.
		out.rendered, out.hash = last.rendered, last.hash
		return out
	}
	out.rendered, out.hash = rendered, render.Hash(rendered.Text)
	return out
}

// onPorts says whether a section is on one of ports, by any of portOfs
// (the last translation's and this one's, so that sections gone count
// too). Every section translate builds has a port (its tests check); the
// names on ports are gathered once, so that asking about each of 15,000
// sections costs one lookup in a small set.
func onPorts(ports []int32, portOfs ...map[string]int32) func(string) bool {
	changed := make(map[int32]bool, len(ports))
	for _, p := range ports {
		changed[p] = true
	}
	names := map[string]bool{}
	for _, portOf := range portOfs {
		for name, p := range portOf {
			if changed[p] {
				names[name] = true
			}
		}
	}
	return func(name string) bool { return names[name] }
}
