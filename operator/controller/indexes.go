package controller

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// Field indexes of the cache: which objects name a given object
// ("namespace/name") or namespace in their specs, so that a change to a
// Service, Secret, TLSContext or ReferenceGrant wakes exactly the
// HAProxies serving an object that names it, read from the cache at event
// time rather than from what the last translation recorded. They read the
// current spec and the last accepted one (still programmed when the
// current one is rejected) and may name more than translation resolves,
// which costs a translation, never a missed change.
const (
	// indexMappingService: the Services a TCPMapping's service may name.
	indexMappingService = "tcpmapping.service"
	// indexMappingTLS: the TLSContext a TCPMapping's tls names.
	indexMappingTLS = "tcpmapping.tls"
	// indexMappingSecret: the Secrets a TCPMapping's upstreamTLS names.
	indexMappingSecret = "tcpmapping.upstreamSecret"
	// indexMappingNamespace: the other namespaces a TCPMapping names.
	indexMappingNamespace = "tcpmapping.crossNamespace"
	// indexContextSecret: the Secrets a TLSContext names.
	indexContextSecret = "tlscontext.secret"
	// indexContextNamespace: the other namespaces a TLSContext names.
	indexContextNamespace = "tlscontext.crossNamespace"
	// indexHAProxySecret: the Secrets an HAProxy reads for itself (stats
	// credentials, external instances' credentials and CAs, the control
	// channel's certificates).
	indexHAProxySecret = "haproxy.secret"
)

// setupIndexes registers the field indexes with the manager's cache.
func setupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	idx := mgr.GetFieldIndexer()
	for _, ix := range []struct {
		obj  client.Object
		name string
		fn   client.IndexerFunc
	}{
		{&v1alpha1.TCPMapping{}, indexMappingService, func(o client.Object) []string { return mappingServices(o.(*v1alpha1.TCPMapping)) }},
		{&v1alpha1.TCPMapping{}, indexMappingTLS, func(o client.Object) []string { return mappingContexts(o.(*v1alpha1.TCPMapping)) }},
		{&v1alpha1.TCPMapping{}, indexMappingSecret, func(o client.Object) []string { return mappingSecrets(o.(*v1alpha1.TCPMapping)) }},
		{&v1alpha1.TCPMapping{}, indexMappingNamespace, func(o client.Object) []string { return translate.MappingNamespaces(o.(*v1alpha1.TCPMapping)) }},
		{&v1alpha1.TLSContext{}, indexContextSecret, func(o client.Object) []string { return contextSecrets(o.(*v1alpha1.TLSContext)) }},
		{&v1alpha1.TLSContext{}, indexContextNamespace, func(o client.Object) []string { return translate.ContextNamespaces(o.(*v1alpha1.TLSContext)) }},
		{&v1alpha1.HAProxy{}, indexHAProxySecret, func(o client.Object) []string { return haproxySecrets(o.(*v1alpha1.HAProxy)) }},
	} {
		if err := idx.IndexField(ctx, ix.obj, ix.name, ix.fn); err != nil {
			return fmt.Errorf("index %s: %w", ix.name, err)
		}
	}
	return nil
}

// mappingSpecs are the specs of m that may be programmed: the current one
// and the last accepted one.
func mappingSpecs(m *v1alpha1.TCPMapping) []*v1alpha1.TCPMappingSpec {
	specs := []*v1alpha1.TCPMappingSpec{&m.Spec}
	if m.Status.LastAccepted != nil {
		specs = append(specs, &m.Status.LastAccepted.Spec)
	}
	return specs
}

var (
	// schemePrefix and portSuffix frame the name in
	// [scheme://]name[.namespace][:port].
	schemePrefix = regexp.MustCompile(`^[a-z]+://`)
	portSuffix   = regexp.MustCompile(`:[0-9]+$`)
	// clusterDomain ends a Service's DNS name inside the cluster.
	clusterDomain = regexp.MustCompile(`\.svc(\.cluster\.local)?$`)
)

// mappingServices are the Services ("namespace/name") m's service string
// may name: name alone is a Service of m's namespace, name.namespace (with
// or without .svc[.cluster.local]) one of that namespace. Addresses and
// longer DNS names name none.
func mappingServices(m *v1alpha1.TCPMapping) []string {
	var out []string
	for _, spec := range mappingSpecs(m) {
		name := portSuffix.ReplaceAllString(schemePrefix.ReplaceAllString(spec.Service, ""), "")
		if name == "" || strings.HasPrefix(name, "[") {
			continue
		}
		if _, err := netip.ParseAddr(name); err == nil {
			continue
		}
		switch parts := strings.Split(clusterDomain.ReplaceAllString(name, ""), "."); len(parts) {
		case 1:
			out = appendNew(out, m.Namespace+"/"+parts[0])
		case 2:
			out = appendNew(out, parts[1]+"/"+parts[0])
		}
	}
	return out
}

// mappingContexts are the TLSContexts ("namespace/name") m's tls names:
// name, or name.namespace.
func mappingContexts(m *v1alpha1.TCPMapping) []string {
	var out []string
	for _, spec := range mappingSpecs(m) {
		if spec.TLS != "" {
			out = appendNew(out, refKey(spec.TLS, m.Namespace))
		}
	}
	return out
}

// mappingSecrets are the Secrets ("namespace/name") m's upstreamTLS
// names: its CA and its client certificate, current and last accepted.
func mappingSecrets(m *v1alpha1.TCPMapping) []string {
	var out []string
	for _, spec := range mappingSpecs(m) {
		if spec.UpstreamTLS == nil {
			continue
		}
		for _, n := range []string{spec.UpstreamTLS.CASecret, spec.UpstreamTLS.ClientCertificateSecret} {
			if n != "" {
				out = appendNew(out, refKey(n, m.Namespace))
			}
		}
	}
	return out
}

// contextSecrets are the Secrets ("namespace/name") c's secret and
// caSecret name, current and last accepted.
func contextSecrets(c *v1alpha1.TLSContext) []string {
	specs := []*v1alpha1.TLSContextSpec{&c.Spec}
	if c.Status.LastAccepted != nil {
		specs = append(specs, &c.Status.LastAccepted.Spec)
	}
	var out []string
	for _, spec := range specs {
		for _, n := range []string{spec.Secret, spec.CASecret} {
			if n != "" {
				out = appendNew(out, refKey(n, c.Namespace))
			}
		}
	}
	return out
}

// haproxySecrets are the Secrets ("namespace/name") hap reads for itself,
// generated or named.
func haproxySecrets(hap *v1alpha1.HAProxy) []string {
	out := []string{hap.Namespace + "/" + statsSecretName(hap)}
	if hap.Spec.Stats.AuthSecret != "" {
		out = appendNew(out, hap.Namespace+"/"+hap.Spec.Stats.AuthSecret)
	}
	for _, ref := range externalSecretRefs(hap) {
		out = appendNew(out, strings.TrimPrefix(ref, translate.RefSecret+"/"))
	}
	return out
}

// refKey is "namespace/name" of a reference written name or
// name.namespace.
func refKey(ref, namespace string) string {
	if n, ns, found := strings.Cut(ref, "."); found {
		return ns + "/" + n
	}
	return namespace + "/" + ref
}

func appendNew(list []string, s string) []string {
	for _, have := range list {
		if have == s {
			return list
		}
	}
	return append(list, s)
}

// selecting wakes the HAProxies that select any of objs, listing the
// HAProxies and reading each namespace once.
func (r *HAProxyReconciler) selecting(ctx context.Context, objs []client.Object) []reconcile.Request {
	if len(objs) == 0 {
		return nil
	}
	haps := r.haproxies(ctx)
	nsLabels := map[string]labels.Set{}
	seen := map[reconcile.Request]bool{}
	var out []reconcile.Request
	for _, o := range objs {
		set, ok := nsLabels[o.GetNamespace()]
		if !ok {
			var ns corev1.Namespace
			set = labels.Set{}
			if err := r.Client.Get(ctx, client.ObjectKey{Name: o.GetNamespace()}, &ns); err == nil {
				set = ns.Labels
			}
			nsLabels[o.GetNamespace()] = set
		}
		for i := range haps {
			if req := request(&haps[i]); !seen[req] && selects(&haps[i], set, o) {
				seen[req] = true
				out = append(out, req)
			}
		}
	}
	return out
}

// mappingsBy lists the TCPMappings whose index field holds value.
func (r *HAProxyReconciler) mappingsBy(ctx context.Context, field, value string) []client.Object {
	var list v1alpha1.TCPMappingList
	if err := r.Client.List(ctx, &list, client.MatchingFields{field: value}); err != nil {
		log.FromContext(ctx).Error(err, "List TCPMappings by index", "index", field, "value", value)
		return nil
	}
	out := make([]client.Object, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out
}

// contextsBy lists the TLSContexts whose index field holds value.
func (r *HAProxyReconciler) contextsBy(ctx context.Context, field, value string) []*v1alpha1.TLSContext {
	var list v1alpha1.TLSContextList
	if err := r.Client.List(ctx, &list, client.MatchingFields{field: value}); err != nil {
		log.FromContext(ctx).Error(err, "List TLSContexts by index", "index", field, "value", value)
		return nil
	}
	out := make([]*v1alpha1.TLSContext, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out
}
