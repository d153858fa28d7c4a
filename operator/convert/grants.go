package convert

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// crossRef is one reference of a converted resource into another
// namespace.
type crossRef struct {
	fromKind, fromNamespace string
	toGroup, toKind         string
	toNamespace, toName     string
	// guess: the target namespace was read from a two-label name that
	// may also be a DNS name.
	guess bool
}

// grantKey is what one ReferenceGrant covers: every named target of one
// kind set in one namespace, for one referring kind and namespace.
type grantKey struct{ toNamespace, fromKind, fromNamespace string }

// svcSuffix marks a name that is certainly a cluster Service.
var svcSuffix = regexp.MustCompile(`\.svc(\.cluster\.local)?$`)

// serviceNamespace reads the namespace a service string names, if any:
// name.namespace, name.namespace.svc or name.namespace.svc.cluster.local.
// An IP address or a name of three or more labels is a DNS target.
func serviceNamespace(service string) (name, namespace string, guess bool) {
	s := service
	if _, rest, found := strings.Cut(s, "://"); found {
		s = rest
	}
	if strings.HasPrefix(s, "[") {
		return "", "", false
	}
	if i := strings.LastIndex(s, ":"); i >= 0 {
		s = s[:i]
	}
	trimmed := svcSuffix.ReplaceAllString(s, "")
	parts := strings.Split(trimmed, ".")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", "", false
	}
	if strings.Trim(parts[1], "0123456789") == "" {
		return "", "", false
	}
	return parts[0], parts[1], trimmed == s
}

// splitName reads name or name.namespace.
func splitName(ref, namespace string) (string, string) {
	if n, ns, found := strings.Cut(ref, "."); found {
		return n, ns
	}
	return ref, namespace
}

// crossRefs lists the references of the converted resources that leave
// their namespace.
func (c *converter) crossRefs() []crossRef {
	var out []crossRef
	for _, o := range c.res.Objects {
		switch v := o.(type) {
		case *v1alpha1.TCPMapping:
			if name, ns, guess := serviceNamespace(v.Spec.Service); ns != "" && ns != v.Namespace {
				out = append(out, crossRef{"TCPMapping", v.Namespace, "", "Service", ns, name, guess})
			}
			if v.Spec.TLS != "" {
				if name, ns := splitName(v.Spec.TLS, v.Namespace); ns != v.Namespace {
					out = append(out, crossRef{"TCPMapping", v.Namespace, v1alpha1.GroupVersion.Group, "TLSContext", ns, name, false})
				}
			}
		case *v1alpha1.TLSContext:
			for _, s := range []string{v.Spec.Secret, v.Spec.CASecret} {
				if s == "" {
					continue
				}
				if name, ns := splitName(s, v.Namespace); ns != v.Namespace {
					out = append(out, crossRef{"TLSContext", v.Namespace, "", "Secret", ns, name, false})
				}
			}
		}
	}
	return out
}

// addGrants emits the ReferenceGrants the converted resources need:
// Ambassador followed name.namespace freely, this operator only with the
// target namespace's consent (unless an HAProxy allows all). Each grant
// names exactly the objects referenced, and a note says why it is there.
func (c *converter) addGrants() error {
	byKey := map[grantKey][]crossRef{}
	for _, r := range c.crossRefs() {
		k := grantKey{r.toNamespace, r.fromKind, r.fromNamespace}
		byKey[k] = append(byKey[k], r)
	}
	keys := make([]grantKey, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.toNamespace != b.toNamespace {
			return a.toNamespace < b.toNamespace
		}
		if a.fromNamespace != b.fromNamespace {
			return a.fromNamespace < b.fromNamespace
		}
		return a.fromKind < b.fromKind
	})
	for _, k := range keys {
		refs := byKey[k]
		sort.Slice(refs, func(i, j int) bool {
			return refs[i].toKind+"/"+refs[i].toName < refs[j].toKind+"/"+refs[j].toName
		})
		g := &gatewayv1beta1.ReferenceGrant{
			TypeMeta: metav1.TypeMeta{APIVersion: gatewayv1beta1.GroupVersion.String(), Kind: "ReferenceGrant"},
			ObjectMeta: metav1.ObjectMeta{
				Name:      strings.ToLower(k.fromKind) + "s-from-" + k.fromNamespace,
				Namespace: k.toNamespace,
			},
			Spec: gatewayv1beta1.ReferenceGrantSpec{
				From: []gatewayv1beta1.ReferenceGrantFrom{{
					Group: gatewayv1.Group(v1alpha1.GroupVersion.Group), Kind: gatewayv1.Kind(k.fromKind), Namespace: gatewayv1.Namespace(k.fromNamespace),
				}},
			},
		}
		var targets, guesses []string
		seen := map[string]bool{}
		for _, r := range refs {
			t := r.toKind + " " + r.toName
			if seen[t] {
				continue
			}
			seen[t] = true
			targets = append(targets, t)
			g.Spec.To = append(g.Spec.To, gatewayv1beta1.ReferenceGrantTo{
				Group: gatewayv1.Group(r.toGroup), Kind: gatewayv1.Kind(r.toKind), Name: ptr.To(gatewayv1.ObjectName(r.toName)),
			})
			if r.guess {
				guesses = append(guesses, r.toName+"."+r.toNamespace)
			}
		}
		where := fmt.Sprintf("ReferenceGrant %s/%s", g.Namespace, g.Name)
		c.note("%s: added because %ss of namespace %s reference %s in namespace %s, and this operator follows a reference into another namespace only when a ReferenceGrant there permits it (or the HAProxy sets crossNamespaceReferences: AllowAll)",
			where, k.fromKind, k.fromNamespace, strings.Join(targets, ", "), k.toNamespace)
		if len(guesses) > 0 {
			c.note("%s: %s is read as a Service in namespace %s; if it is a DNS name instead, delete this grant", where, strings.Join(guesses, ", "), k.toNamespace)
		}
		if err := c.add(g, where); err != nil {
			return err
		}
	}
	return nil
}
