package translate

import (
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

// index gives keyed access to a snapshot's objects.
type index struct {
	s          snapshot.Snapshot
	namespaces map[string]*corev1.Namespace
	secrets    map[string]*corev1.Secret
	services   map[string]*corev1.Service
	contexts   map[string]*v1alpha1.TLSContext
	// slices by namespace/service-name
	slices map[string][]*discoveryv1.EndpointSlice
}

func key(namespace, name string) string { return namespace + "/" + name }

// keyLess orders namespace/name keys as their strings sort, without
// building them.
func keyLess(ns1, name1, ns2, name2 string) bool {
	n := min(len(ns1), len(ns2))
	if ns1[:n] != ns2[:n] {
		return ns1[:n] < ns2[:n]
	}
	// One namespace is a prefix of the other (or both are equal): the
	// shorter one is followed by '/', the longer one by its next byte.
	switch {
	case len(ns1) < len(ns2):
		return '/' < ns2[n]
	case len(ns1) > len(ns2):
		return ns1[n] < '/'
	}
	return name1 < name2
}

func newIndex(s snapshot.Snapshot) *index {
	return newIndexOf(s, nil)
}

// newIndexOf indexes s; when services is not nil, only the Services (and
// their EndpointSlices) it names are indexed: those the mappings being
// translated may resolve to.
func newIndexOf(s snapshot.Snapshot, services map[string]bool) *index {
	idx := &index{
		s:          s,
		namespaces: map[string]*corev1.Namespace{},
		secrets:    map[string]*corev1.Secret{},
		services:   map[string]*corev1.Service{},
		contexts:   map[string]*v1alpha1.TLSContext{},
		slices:     map[string][]*discoveryv1.EndpointSlice{},
	}
	for i := range s.Namespaces {
		idx.namespaces[s.Namespaces[i].Name] = &s.Namespaces[i]
	}
	for i := range s.Secrets {
		idx.secrets[key(s.Secrets[i].Namespace, s.Secrets[i].Name)] = &s.Secrets[i]
	}
	for i := range s.Services {
		if services != nil && !services[s.Services[i].Name] {
			continue
		}
		idx.services[key(s.Services[i].Namespace, s.Services[i].Name)] = &s.Services[i]
	}
	for i := range s.TLSContexts {
		idx.contexts[key(s.TLSContexts[i].Namespace, s.TLSContexts[i].Name)] = &s.TLSContexts[i]
	}
	for i := range s.EndpointSlices {
		es := &s.EndpointSlices[i]
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" || services != nil && !services[svc] {
			continue
		}
		k := key(es.Namespace, svc)
		idx.slices[k] = append(idx.slices[k], es)
	}
	for _, list := range idx.slices {
		sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	}
	return idx
}

// splitRef splits "name" or "name.namespace" into namespace and name,
// defaulting the namespace.
func splitRef(ref, defaultNamespace string) (namespace, name string) {
	if n, ns, found := strings.Cut(ref, "."); found {
		return ns, n
	}
	return defaultNamespace, ref
}

// selects reports whether hap serves an object with the given namespace and
// labels.
func (idx *index) selects(hap *v1alpha1.HAProxy, obj metav1.Object) bool {
	return newSelection(hap).selects(idx, obj)
}

// selection is an HAProxy's selectors, parsed once for many objects.
type selection struct {
	hapNamespace string
	// namespaces is nil when only the HAProxy's own namespace is served.
	namespaces labels.Selector
	// mappings is nil when every object of a served namespace is.
	mappings labels.Selector
	invalid  bool
}

func newSelection(hap *v1alpha1.HAProxy) selection {
	sel := selection{hapNamespace: hap.Namespace}
	var err error
	if hap.Spec.NamespaceSelector != nil {
		if sel.namespaces, err = metav1.LabelSelectorAsSelector(hap.Spec.NamespaceSelector); err != nil {
			sel.invalid = true
		}
	}
	if hap.Spec.MappingSelector != nil {
		if sel.mappings, err = metav1.LabelSelectorAsSelector(hap.Spec.MappingSelector); err != nil {
			sel.invalid = true
		}
	}
	return sel
}

func (sel selection) selects(idx *index, obj metav1.Object) bool {
	if sel.invalid {
		return false
	}
	if sel.namespaces == nil {
		if obj.GetNamespace() != sel.hapNamespace {
			return false
		}
	} else {
		var nsLabels labels.Set
		if ns := idx.namespaces[obj.GetNamespace()]; ns != nil {
			nsLabels = ns.Labels
		}
		if !sel.namespaces.Matches(nsLabels) {
			return false
		}
	}
	return sel.mappings == nil || sel.mappings.Matches(labels.Set(obj.GetLabels()))
}

// selectedMappings returns the TCPMappings hap serves.
func (idx *index) selectedMappings(hap *v1alpha1.HAProxy) []*v1alpha1.TCPMapping {
	sel := newSelection(hap)
	var out []*v1alpha1.TCPMapping
	for _, m := range idx.s.TCPMappings {
		if m.DeletionTimestamp != nil {
			continue
		}
		if sel.selects(idx, m) {
			out = append(out, m)
		}
	}
	return out
}

// selectorError reports an HAProxy selector that does not parse; the API
// server's schema lets a few invalid selectors through.
func selectorError(hap *v1alpha1.HAProxy) error {
	for _, s := range []*metav1.LabelSelector{hap.Spec.NamespaceSelector, hap.Spec.MappingSelector} {
		if s == nil {
			continue
		}
		if _, err := metav1.LabelSelectorAsSelector(s); err != nil {
			return err
		}
	}
	return nil
}
