// Package convert turns Ambassador/Emissary configuration — the flat
// ambassador/v1 documents of the TCPMapping reference, getambassador.io/v2
// and v3alpha1 TCPMapping, TLSContext and Module resources, and
// getambassador.io/config Service annotations — into this project's
// TCPMapping, TLSContext and HAProxy resources, plus the Gateway API
// ReferenceGrants their cross-namespace references need, with a note for
// everything it cannot carry over or adds. It is pure: bytes in, objects and notes out.
package convert

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// Result is what a conversion produced.
type Result struct {
	Objects []client.Object
	// Notes say what was changed or left out, and why.
	Notes []string
}

// Options set what the Ambassador input leaves implicit.
type Options struct {
	// Namespace receives resources that name none (flat documents).
	Namespace string
}

// Convert reads a (multi-document) YAML stream.
func Convert(data []byte, opt Options) (Result, error) {
	if opt.Namespace == "" {
		opt.Namespace = "default"
	}
	c := &converter{opt: opt, names: map[string]bool{}}
	if err := c.stream(data, opt.Namespace, "input"); err != nil {
		return Result{}, err
	}
	if c.module != nil {
		c.res.Objects = append(c.res.Objects, c.module)
	}
	if c.proxyProto {
		// The Module may come after the mappings: applied at the end.
		for _, o := range c.res.Objects {
			if m, isMapping := o.(*v1alpha1.TCPMapping); isMapping {
				m.Spec.AcceptProxyProtocol = ptr.To(true)
			}
		}
	}
	c.applyModuleCircuitBreakers()
	if err := c.addGrants(); err != nil {
		return Result{}, err
	}
	return c.res, nil
}

type converter struct {
	opt    Options
	res    Result
	module *v1alpha1.HAProxy
	names  map[string]bool
	// proxyProto: the ambassador Module reads the PROXY protocol on every
	// listener.
	proxyProto bool
	// moduleMaxConns is the ambassador Module's circuit_breakers
	// max_connections, for mappings without their own.
	moduleMaxConns *int32
	// ownBreakers are the mappings with circuit_breakers of their own,
	// which the Module's do not override.
	ownBreakers []*v1alpha1.TCPMapping
}

func (c *converter) note(format string, args ...any) {
	c.res.Notes = append(c.res.Notes, fmt.Sprintf(format, args...))
}

func (c *converter) stream(data []byte, namespace, where string) error {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for n := 1; ; n++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s, document %d: %w", where, n, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return fmt.Errorf("%s, document %d: %w", where, n, err)
		}
		if len(m) == 0 {
			continue
		}
		if err := c.document(m, namespace, fmt.Sprintf("%s, document %d", where, n)); err != nil {
			return err
		}
	}
}

func str(m map[string]any, k string) string {
	if v, ok := m[k]; ok && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

func (c *converter) document(m map[string]any, namespace, where string) error {
	apiVersion, kind := str(m, "apiVersion"), str(m, "kind")
	switch {
	case strings.HasPrefix(apiVersion, "ambassador/"):
		// Flat: the fields sit beside apiVersion and kind.
		return c.resource(kind, str(m, "name"), namespace, m, where)
	case strings.HasPrefix(apiVersion, "getambassador.io/"):
		meta, _ := m["metadata"].(map[string]any)
		spec, _ := m["spec"].(map[string]any)
		ns := str(meta, "namespace")
		if ns == "" {
			ns = namespace
		}
		if spec == nil {
			spec = map[string]any{}
		}
		return c.resource(kind, str(meta, "name"), ns, spec, where)
	case apiVersion == "v1" && kind == "Service":
		meta, _ := m["metadata"].(map[string]any)
		ann, _ := meta["annotations"].(map[string]any)
		cfg := str(ann, "getambassador.io/config")
		if cfg == "" {
			return nil
		}
		ns := str(meta, "namespace")
		if ns == "" {
			ns = namespace
		}
		return c.stream([]byte(cfg), ns, fmt.Sprintf("%s (Service %s annotation)", where, str(meta, "name")))
	default:
		c.note("%s: %s %s is not Ambassador configuration; skipped", where, apiVersion, kind)
		return nil
	}
}

var invalidName = regexp.MustCompile(`[^a-z0-9.-]+`)

// k8sName makes an Ambassador name a valid resource name.
func (c *converter) k8sName(kind, name, where string) string {
	out := strings.Trim(invalidName.ReplaceAllString(strings.ToLower(name), "-"), "-.")
	if out == "" {
		out = strings.ToLower(kind)
	}
	if out != name {
		c.note("%s: %s name %q is not a valid Kubernetes name; it becomes %q", where, kind, name, out)
	}
	return out
}

func (c *converter) resource(kind, name, namespace string, f map[string]any, where string) error {
	switch kind {
	case "TCPMapping":
		return c.tcpMapping(c.k8sName(kind, name, where), namespace, f, where)
	case "TLSContext":
		return c.tlsContext(c.k8sName(kind, name, where), namespace, f, where)
	case "Module":
		return c.moduleConfig(name, namespace, f, where)
	default:
		c.note("%s: kind %s is layer 7 or unrelated to TCP routing; skipped", where, kind)
		return nil
	}
}

// leftOut lists the fields of f not in known, for a note.
func (c *converter) leftOut(f map[string]any, known map[string]bool, what, where string) {
	var extra []string
	for k := range f {
		if !known[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		c.note("%s: %s: not carried over: %s (no equivalent here)", where, what, strings.Join(extra, ", "))
	}
}

var flatMeta = map[string]bool{"apiVersion": true, "kind": true, "name": true, "ambassador_id": true, "namespace": true, "metadata_labels": true}

func number(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		return int64(n), n == float64(int64(n))
	case int64:
		return n, true
	case int:
		return int64(n), true
	}
	return 0, false
}

func boolean(v any) (bool, bool) {
	b, ok := v.(bool)
	return b, ok
}

func (c *converter) tcpMapping(name, namespace string, f map[string]any, where string) error {
	what := "TCPMapping " + namespace + "/" + name
	m := &v1alpha1.TCPMapping{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "TCPMapping"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
	}
	known := map[string]bool{"port": true, "address": true, "service": true, "tls": true, "host": true,
		"weight": true, "idle_timeout_ms": true, "enable_ipv4": true, "enable_ipv6": true, "load_balancer": true, "circuit_breakers": true}
	for k := range flatMeta {
		known[k] = true
	}
	port, ok := number(f["port"])
	if !ok {
		return fmt.Errorf("%s: %s: port must be an integer", where, what)
	}
	m.Spec.Port = int32(port)
	m.Spec.Address = str(f, "address")
	m.Spec.Service = str(f, "service")
	m.Spec.Host = str(f, "host")
	switch tls := f["tls"].(type) {
	case nil:
	case bool:
		// tls: true asks for TLS towards the upstream.
		if tls && !strings.HasPrefix(m.Spec.Service, "https://") {
			m.Spec.Service = "https://" + strings.TrimPrefix(m.Spec.Service, "http://")
			c.note("%s: %s: tls: true becomes service %s (TLS towards the upstream)", where, what, m.Spec.Service)
		}
	default:
		m.Spec.TLS = c.k8sName("TLSContext", fmt.Sprint(tls), where)
	}
	if w, ok := number(f["weight"]); ok {
		m.Spec.Weight = ptr.To(int32(w))
	}
	if t, ok := number(f["idle_timeout_ms"]); ok {
		m.Spec.IdleTimeoutMs = ptr.To(t)
	}
	if b, ok := boolean(f["enable_ipv4"]); ok {
		m.Spec.EnableIPv4 = ptr.To(b)
	}
	if b, ok := boolean(f["enable_ipv6"]); ok {
		m.Spec.EnableIPv6 = ptr.To(b)
	}
	if m.Spec.Host != "" && m.Spec.TLS == "" {
		c.note("%s: %s: host without tls is routed here as TLS passthrough on the ClientHello's SNI", where, what)
	}
	if lb, present := f["load_balancer"]; present {
		m.Spec.LoadBalancer = c.loadBalancer(lb, what, where)
	}
	if cb, present := f["circuit_breakers"]; present {
		m.Spec.MaxConnections = c.circuitBreakers(cb, what, where)
		c.ownBreakers = append(c.ownBreakers, m)
	}
	if strings.HasPrefix(m.Spec.Service, "https://") {
		// Ambassador originates TLS without verifying the upstream; the
		// converted mapping keeps working the same way, and says so in
		// its status, until the upstream's CA is given.
		m.Spec.UpstreamTLS = &v1alpha1.UpstreamTLS{InsecureSkipVerify: true}
		c.note("%s: %s: service %s: Ambassador does not verify the upstream's certificate, so upstreamTLS.insecureSkipVerify is set (the mapping's status warns about it); replace it with upstreamTLS.caSecret naming a Secret with the upstream's CA, or remove upstreamTLS to verify against the system's CAs", where, what, m.Spec.Service)
	}
	c.leftOut(f, known, what, where)
	return c.add(m, where)
}

// loadBalancer maps Ambassador's load_balancer (policy round_robin,
// least_request, ring_hash or maglev, the hashes on source_ip) to
// loadBalancer; what has no equivalent keeps the default with a note.
func (c *converter) loadBalancer(v any, what, where string) string {
	lb, _ := v.(map[string]any)
	policy := str(lb, "policy")
	sourceIP, _ := boolean(lb["source_ip"])
	switch {
	case policy == "round_robin":
		return "roundrobin"
	case policy == "least_request":
		return "leastconn"
	case (policy == "ring_hash" || policy == "maglev") && sourceIP:
		if policy == "maglev" {
			c.note("%s: %s: load_balancer maglev on source_ip becomes loadBalancer source (consistent hashing)", where, what)
		}
		return "source"
	}
	c.note("%s: %s: load_balancer %v not carried over: only round_robin, least_request, and ring_hash or maglev on source_ip have an equivalent (roundrobin, leastconn, source); the default roundrobin applies", where, what, v)
	return ""
}

func (c *converter) add(o client.Object, where string) error {
	key := o.GetObjectKind().GroupVersionKind().Kind + "/" + o.GetNamespace() + "/" + o.GetName()
	if c.names[key] {
		return fmt.Errorf("%s: two resources convert to %s", where, key)
	}
	c.names[key] = true
	c.res.Objects = append(c.res.Objects, o)
	return nil
}

func stringList(v any) []string {
	switch l := v.(type) {
	case string:
		var out []string
		for _, s := range strings.Split(l, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	case []any:
		var out []string
		for _, s := range l {
			out = append(out, fmt.Sprint(s))
		}
		return out
	}
	return nil
}

func (c *converter) tlsContext(name, namespace string, f map[string]any, where string) error {
	what := "TLSContext " + namespace + "/" + name
	t := &v1alpha1.TLSContext{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "TLSContext"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
	}
	known := map[string]bool{"secret": true, "hosts": true, "alpn_protocols": true, "min_tls_version": true,
		"max_tls_version": true, "cipher_suites": true, "ecdh_curves": true, "ca_secret": true, "cert_required": true}
	for k := range flatMeta {
		known[k] = true
	}
	t.Spec.Secret = str(f, "secret")
	if t.Spec.Secret == "" {
		return fmt.Errorf("%s: %s: secret is required here: HAProxy needs a certificate", where, what)
	}
	for _, h := range stringList(f["hosts"]) {
		t.Spec.Hosts = append(t.Spec.Hosts, v1alpha1.Hostname(h))
	}
	t.Spec.ALPNProtocols = stringList(f["alpn_protocols"])
	t.Spec.MinTLSVersion = v1alpha1.TLSVersion(str(f, "min_tls_version"))
	t.Spec.MaxTLSVersion = v1alpha1.TLSVersion(str(f, "max_tls_version"))
	t.Spec.CipherSuites = stringList(f["cipher_suites"])
	t.Spec.ECDHCurves = stringList(f["ecdh_curves"])
	t.Spec.CASecret = str(f, "ca_secret")
	if b, ok := boolean(f["cert_required"]); ok {
		t.Spec.CertRequired = ptr.To(b)
	}
	c.leftOut(f, known, what, where)
	return c.add(t, where)
}

// moduleConfig carries the ambassador Module's IPv4/IPv6 defaults into an
// HAProxy resource.
func (c *converter) moduleConfig(name, namespace string, f map[string]any, where string) error {
	if name != "ambassador" && name != "" {
		c.note("%s: Module %s is not the ambassador Module; skipped", where, name)
		return nil
	}
	cfg, _ := f["config"].(map[string]any)
	if cfg == nil {
		cfg = f
	}
	hap := &v1alpha1.HAProxy{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "HAProxy"},
		ObjectMeta: metav1.ObjectMeta{Name: "haproxy", Namespace: namespace},
	}
	if b, ok := boolean(cfg["enable_ipv4"]); ok {
		hap.Spec.EnableIPv4 = ptr.To(b)
	}
	if b, ok := boolean(cfg["enable_ipv6"]); ok {
		hap.Spec.EnableIPv6 = ptr.To(b)
	}
	if b, ok := boolean(cfg["use_proxy_proto"]); ok && b {
		c.proxyProto = true
		c.note("%s: Module ambassador: use_proxy_proto: true becomes acceptProxyProtocol: true on every converted TCPMapping", where)
	}
	c.moduleCircuitBreakers(cfg, where)
	var extra []string
	for k := range cfg {
		if k != "enable_ipv4" && k != "enable_ipv6" && k != "use_proxy_proto" && k != "circuit_breakers" {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		c.note("%s: Module ambassador: not carried over: %s (HTTP or Envoy settings)", where, strings.Join(extra, ", "))
	}
	c.module = hap
	return nil
}

// YAML writes objects as a YAML stream, without empty status or
// creationTimestamp.
func YAML(objs []client.Object) ([]byte, error) {
	var b bytes.Buffer
	for i, o := range objs {
		raw, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		delete(m, "status")
		if meta, ok := m["metadata"].(map[string]any); ok {
			delete(meta, "creationTimestamp")
		}
		out, err := yaml.Marshal(m)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(out)
	}
	return b.Bytes(), nil
}
