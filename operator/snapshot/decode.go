package snapshot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// Objects is a set of resources read from YAML, before they are split into
// one Snapshot per HAProxy.
type Objects struct {
	HAProxies []v1alpha1.HAProxy
	Snapshot  Snapshot
}

// Scheme knows every kind a snapshot holds.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := gatewayv1beta1.Install(s); err != nil {
		panic(err)
	}
	return s
}

// ReadPaths reads every .yaml, .yml and .json file in paths (files or
// directories, not recursive below a directory's own files).
func ReadPaths(paths []string) (Objects, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return Objects{}, fmt.Errorf("read %s: %w", p, err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return Objects{}, fmt.Errorf("read %s: %w", p, err)
		}
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if !e.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
				files = append(files, filepath.Join(p, e.Name()))
			}
		}
	}
	sort.Strings(files)
	var all Objects
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return Objects{}, fmt.Errorf("read %s: %w", f, err)
		}
		if err := all.Decode(b); err != nil {
			return Objects{}, fmt.Errorf("read %s: %w", f, err)
		}
	}
	return all, nil
}

// Decode adds the objects of a (multi-document) YAML stream. Kinds that a
// snapshot does not hold are skipped; unknown kinds are an error.
func (o *Objects) Decode(data []byte) error {
	decoder := serializer.NewCodecFactory(Scheme()).UniversalDeserializer()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for n := 1; ; n++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("document %d: %w", n, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 || strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		obj, _, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			return fmt.Errorf("document %d: %w", n, err)
		}
		o.add(obj)
	}
}

func stripComments(doc []byte) string {
	var b strings.Builder
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func defaultNamespace(m *metav1.ObjectMeta) {
	if m.Namespace == "" {
		m.Namespace = "default"
	}
}

func (o *Objects) add(obj runtime.Object) {
	s := &o.Snapshot
	switch v := obj.(type) {
	case *v1alpha1.HAProxy:
		defaultNamespace(&v.ObjectMeta)
		o.HAProxies = append(o.HAProxies, *v)
	case *v1alpha1.TCPMapping:
		defaultNamespace(&v.ObjectMeta)
		s.TCPMappings = append(s.TCPMappings, v)
	case *v1alpha1.TLSContext:
		defaultNamespace(&v.ObjectMeta)
		s.TLSContexts = append(s.TLSContexts, *v)
	case *corev1.Secret:
		defaultNamespace(&v.ObjectMeta)
		// stringData is what people write by hand; the API server would
		// merge it into data.
		for k, val := range v.StringData {
			if v.Data == nil {
				v.Data = map[string][]byte{}
			}
			v.Data[k] = []byte(val)
		}
		s.Secrets = append(s.Secrets, *v)
	case *corev1.Service:
		defaultNamespace(&v.ObjectMeta)
		s.Services = append(s.Services, *v)
	case *discoveryv1.EndpointSlice:
		defaultNamespace(&v.ObjectMeta)
		s.EndpointSlices = append(s.EndpointSlices, *v)
	case *corev1.Namespace:
		s.Namespaces = append(s.Namespaces, *v)
	case *gatewayv1beta1.ReferenceGrant:
		defaultNamespace(&v.ObjectMeta)
		s.ReferenceGrants = append(s.ReferenceGrants, *v)
	}
}

// ForEachHAProxy returns one snapshot per HAProxy in the set. With none, it
// uses an HAProxy "haproxy" in namespace default that serves every
// namespace, so a directory of mappings renders on its own. Namespaces the
// objects live in exist even when no Namespace document says so.
func (o *Objects) ForEachHAProxy() []Snapshot {
	haps := o.HAProxies
	if len(haps) == 0 {
		haps = []v1alpha1.HAProxy{{
			ObjectMeta: metav1.ObjectMeta{Name: "haproxy", Namespace: "default"},
			Spec:       v1alpha1.HAProxySpec{NamespaceSelector: &metav1.LabelSelector{}},
		}}
	}
	base := o.Snapshot
	known := map[string]bool{}
	for _, ns := range base.Namespaces {
		known[ns.Name] = true
	}
	addNS := func(name string) {
		if !known[name] {
			known[name] = true
			base.Namespaces = append(base.Namespaces, corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
		}
	}
	for _, h := range haps {
		addNS(h.Namespace)
	}
	for _, m := range base.TCPMappings {
		addNS(m.Namespace)
	}
	for _, c := range base.TLSContexts {
		addNS(c.Namespace)
	}
	for _, s := range base.Secrets {
		addNS(s.Namespace)
	}
	for _, s := range base.Services {
		addNS(s.Namespace)
	}
	for _, g := range base.ReferenceGrants {
		addNS(g.Namespace)
	}
	// The API server labels every namespace with its name; selectors rely
	// on it.
	namespaces := make([]corev1.Namespace, len(base.Namespaces))
	for i, ns := range base.Namespaces {
		ns = *ns.DeepCopy()
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
		namespaces[i] = ns
	}
	base.Namespaces = namespaces
	sort.Slice(base.Namespaces, func(i, j int) bool { return base.Namespaces[i].Name < base.Namespaces[j].Name })
	out := make([]Snapshot, 0, len(haps))
	for _, h := range haps {
		s := base
		s.HAProxy = h
		out = append(out, s)
	}
	return out
}
