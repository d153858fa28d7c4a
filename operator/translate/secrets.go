package translate

import (
	"sort"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

// SecretNames names, as namespace/name and from the specs alone, every
// Secret a translation of s may read: the stats page credentials and the
// certificate and CA Secrets of every TLSContext the HAProxy serves or its
// mappings name, the upstreamTLS Secrets of its mappings, in their current and last accepted generations, that
// the HAProxy's cross-namespace policy lets it use. The
// caller reads just these, then translates once; s.Secrets is not used.
func SecretNames(s snapshot.Snapshot) []string {
	// Services play no part: none is indexed.
	idx := newIndexOf(s, map[string]bool{})
	hap := &s.HAProxy
	sel := newSelection(hap)
	pol := newPolicy(hap, s.ReferenceGrants, s.NoReferenceGrantCRD)
	names := map[string]bool{}
	if hap.Spec.Stats.AuthSecret != "" {
		names[key(hap.Namespace, hap.Spec.Stats.AuthSecret)] = true
	}
	contexts := map[string]bool{}
	for i := range s.TLSContexts {
		ctx := &s.TLSContexts[i]
		if ctx.DeletionTimestamp == nil && idx.selects(hap, ctx) {
			contexts[key(ctx.Namespace, ctx.Name)] = true
		}
	}
	for _, m := range s.TCPMappings {
		// Most mappings name no Secret and no TLSContext: they are passed
		// over before their labels are matched.
		if !namesSecrets(&m.Spec) && (m.Status.LastAccepted == nil || !namesSecrets(&m.Status.LastAccepted.Spec)) {
			continue
		}
		if m.DeletionTimestamp != nil || !sel.selects(idx, m) {
			continue
		}
		specs := []*v1alpha1.TCPMappingSpec{&m.Spec}
		if m.Status.LastAccepted != nil {
			specs = append(specs, &m.Status.LastAccepted.Spec)
		}
		for _, spec := range specs {
			for _, ref := range upstreamSecretRefs(m.Namespace, spec) {
				if pol.check(ref) == nil {
					names[key(ref.ToNamespace, ref.ToName)] = true
				}
			}
			if spec.TLS != "" {
				ns, name := splitRef(spec.TLS, m.Namespace)
				if pol.check(contextCrossRef(m.Namespace, ns, name)) == nil {
					contexts[key(ns, name)] = true
				}
			}
		}
	}
	for k := range contexts {
		ctx := idx.contexts[k]
		if ctx == nil {
			continue
		}
		specs := []*v1alpha1.TLSContextSpec{&ctx.Spec}
		if prev := ctx.Status.LastAccepted; prev != nil {
			specs = append(specs, &prev.Spec)
		}
		for _, spec := range specs {
			// A Secret of another namespace that no grant opens is not
			// even read.
			for _, ref := range pol.contextSecretRefs(ctx.Namespace, spec) {
				if pol.check(ref) == nil {
					names[key(ref.ToNamespace, ref.ToName)] = true
				}
			}
		}
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// namesSecrets says whether spec may lead to a Secret: through
// upstreamTLS or a TLSContext.
func namesSecrets(spec *v1alpha1.TCPMappingSpec) bool {
	return spec.UpstreamTLS != nil || spec.TLS != ""
}
