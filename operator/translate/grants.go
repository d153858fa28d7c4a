package translate

import (
	"fmt"
	"strings"

	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// CrossRef is one reference from an object of this API into another
// namespace, as a ReferenceGrant sees it.
type CrossRef struct {
	// FromKind is the referring kind (TCPMapping or TLSContext, group
	// haproxy-operator.io) and FromNamespace its namespace.
	FromKind      string
	FromNamespace string
	// ToGroup and ToKind are the target's group ("" for core) and kind;
	// ToNamespace and ToName name it.
	ToGroup     string
	ToKind      string
	ToNamespace string
	ToName      string
}

// Target groups and kinds a reference can point at.
const (
	groupCore = ""
	kindSvc   = "Service"
	kindSec   = "Secret"
)

// Permitted reports whether a ReferenceGrant in the target's namespace
// lets the reference through: one of its from entries names the
// referrer's group, kind and namespace, and one of its to entries the
// target's group and kind, with no name or the target's name. Grants of
// other namespaces count for nothing, as in Gateway API.
func Permitted(grants []gatewayv1beta1.ReferenceGrant, ref CrossRef) bool {
	for i := range grants {
		g := &grants[i]
		if g.Namespace != ref.ToNamespace || g.DeletionTimestamp != nil {
			continue
		}
		from := false
		for _, f := range g.Spec.From {
			if string(f.Group) == v1alpha1.GroupVersion.Group && string(f.Kind) == ref.FromKind && string(f.Namespace) == ref.FromNamespace {
				from = true
				break
			}
		}
		if !from {
			continue
		}
		for _, to := range g.Spec.To {
			if string(to.Group) == ref.ToGroup && string(to.Kind) == ref.ToKind &&
				(to.Name == nil || *to.Name == "" || string(*to.Name) == ref.ToName) {
				return true
			}
		}
	}
	return false
}

// policy is how one translation treats references into other namespaces.
type policy struct {
	allowAll bool
	noCRD    bool
	grants   []gatewayv1beta1.ReferenceGrant
	hap      string
}

// check returns nil when ref may be used: it stays in its own namespace,
// the policy is AllowAll, or a grant permits it. Otherwise it returns the
// RefNotPermitted verdict, which names only what the referrer wrote: the
// target is never looked at before this check, so nothing of it (whether
// it exists, its contents) reaches the referrer.
func (p *policy) check(ref CrossRef) *Condition {
	if ref.ToNamespace == ref.FromNamespace || p.allowAll {
		return nil
	}
	if !p.noCRD && Permitted(p.grants, ref) {
		return nil
	}
	msg := fmt.Sprintf("%s %s/%s is in another namespace, and no ReferenceGrant in namespace %s permits %s references from namespace %s to it",
		ref.ToKind, ref.ToNamespace, ref.ToName, ref.ToNamespace, ref.FromKind, ref.FromNamespace)
	if p.noCRD {
		msg = fmt.Sprintf("%s %s/%s is in another namespace, and the cluster has no ReferenceGrant CRD to permit it (see HAProxy %s)",
			ref.ToKind, ref.ToNamespace, ref.ToName, p.hap)
	}
	c := fail(v1alpha1.ReasonRefNotPermitted, msg)
	return &c
}

// newPolicy reads the HAProxy's policy and the snapshot's grants.
func newPolicy(hap *v1alpha1.HAProxy, grants []gatewayv1beta1.ReferenceGrant, noCRD bool) *policy {
	return &policy{
		allowAll: hap.Spec.CrossNamespaceReferences == v1alpha1.CrossNamespaceAllowAll,
		noCRD:    noCRD,
		grants:   grants,
		hap:      key(hap.Namespace, hap.Name),
	}
}

// condition is the HAProxy's ReferenceGrants condition.
func (p *policy) condition() Condition {
	switch {
	case p.allowAll:
		return ok(v1alpha1.ReasonAllowAll,
			"spec.crossNamespaceReferences is AllowAll: references into other namespaces need no ReferenceGrant")
	case p.noCRD:
		return fail(v1alpha1.ReasonCRDNotInstalled,
			"the ReferenceGrant CRD (referencegrants.gateway.networking.k8s.io, v1beta1) is not installed, so references into other namespaces are refused with RefNotPermitted; install it and restart the operator, or set spec.crossNamespaceReferences to AllowAll")
	}
	return ok(v1alpha1.ReasonReferenceGrantsRead,
		"a reference into another namespace is used only when a ReferenceGrant there permits it")
}

// permit checks ref and records that this translation depends on the
// grants of the target's namespace, so granting or revoking there calls
// for a new one.
func (t *translation) permit(ref CrossRef) *Condition {
	if ref.ToNamespace != ref.FromNamespace && !t.policy.allowAll {
		t.reference(RefReferenceGrant, key(ref.ToNamespace, AnyGrant))
	}
	return t.policy.check(ref)
}

// serviceCrossRef, secretCrossRef and contextCrossRef describe references
// for check.
func serviceCrossRef(fromNamespace, namespace, name string) CrossRef {
	return CrossRef{FromKind: RefTCPMapping, FromNamespace: fromNamespace, ToGroup: groupCore, ToKind: kindSvc, ToNamespace: namespace, ToName: name}
}

func secretCrossRef(fromNamespace, namespace, name string) CrossRef {
	return CrossRef{FromKind: RefTLSContext, FromNamespace: fromNamespace, ToGroup: groupCore, ToKind: kindSec, ToNamespace: namespace, ToName: name}
}

func contextCrossRef(fromNamespace, namespace, name string) CrossRef {
	return CrossRef{FromKind: RefTCPMapping, FromNamespace: fromNamespace, ToGroup: v1alpha1.GroupVersion.Group, ToKind: RefTLSContext, ToNamespace: namespace, ToName: name}
}

// contextSecretRefs are the references of a TLSContext spec to its
// Secrets, certificate first.
func (p *policy) contextSecretRefs(namespace string, spec *v1alpha1.TLSContextSpec) []CrossRef {
	var out []CrossRef
	for _, n := range []string{spec.Secret, spec.CASecret} {
		if n != "" {
			ns, name := splitRef(n, namespace)
			out = append(out, secretCrossRef(namespace, ns, name))
		}
	}
	return out
}

// MappingNamespaces lists the namespaces other than its own that a
// TCPMapping's service, tls or upstreamTLS Secrets may name, in its current and last accepted
// generations: where a ReferenceGrant would concern it. It reads the
// specs alone and may name a namespace that resolution would not (a DNS
// name of two labels), which only costs a translation.
func MappingNamespaces(m *v1alpha1.TCPMapping) []string {
	specs := []*v1alpha1.TCPMappingSpec{&m.Spec}
	if m.Status.LastAccepted != nil {
		specs = append(specs, &m.Status.LastAccepted.Spec)
	}
	seen := map[string]bool{}
	var out []string
	add := func(ns string) {
		if ns != "" && ns != m.Namespace && !seen[ns] {
			seen[ns] = true
			out = append(out, ns)
		}
	}
	for _, spec := range specs {
		if spec.TLS != "" {
			ns, _ := splitRef(spec.TLS, m.Namespace)
			add(ns)
		}
		for _, ref := range upstreamSecretRefs(m.Namespace, spec) {
			add(ref.ToNamespace)
		}
		if ref, err := parseService(spec.Service); err == nil && !ref.IP {
			parts := strings.Split(clusterSuffix.ReplaceAllString(ref.Name, ""), ".")
			if len(parts) == 2 {
				add(parts[1])
			}
		}
	}
	return out
}

// ContextNamespaces lists the namespaces other than its own that a
// TLSContext's secret or caSecret name, in its current and last accepted
// generations.
func ContextNamespaces(c *v1alpha1.TLSContext) []string {
	specs := []*v1alpha1.TLSContextSpec{&c.Spec}
	if c.Status.LastAccepted != nil {
		specs = append(specs, &c.Status.LastAccepted.Spec)
	}
	seen := map[string]bool{}
	var out []string
	for _, spec := range specs {
		for _, n := range []string{spec.Secret, spec.CASecret} {
			if n == "" {
				continue
			}
			if ns, _ := splitRef(n, c.Namespace); ns != c.Namespace && !seen[ns] {
				seen[ns] = true
				out = append(out, ns)
			}
		}
	}
	return out
}
