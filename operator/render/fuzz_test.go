package render_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/internal/golden"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/render"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// fuzzInput is one TCPMapping and the TLSContext it names, every string
// field chosen by the fuzzer. The TLSContext is named by the mapping's tls
// field and its Secrets by its secret and caSecret fields, so the fuzzed
// object resolves and its TLS settings reach the bind line; the mapping's
// upstreamTLS Secrets exist too, so they reach its server lines.
type fuzzInput struct {
	namespace, name, service, host, tls, address string
	alpn, cipher, curve, secret, caSecret        string
	// upstreamCA, serverName and clientCert are the mapping's
	// upstreamTLS; its Secrets are created like the TLSContext's.
	upstreamCA, serverName, clientCert string
	// loadBalancer and sendProxy are the mapping's enumerations.
	loadBalancer, sendProxy string
	// checkSend and checkExpect are the mapping's healthCheck texts; a
	// health check is set when either is not empty.
	checkSend, checkExpect string
}

// fuzzPort is the fuzzed mapping's port, one no baseline mapping uses, so
// no baseline section has a reason to change.
const fuzzPort = 9999

// fuzzSeeds are the seed corpus: valid objects of each kind (so the
// checks see real fuzzed sections), and the characters that would break
// out of a token, a line or a section if they reached haproxy.cfg.
var fuzzSeeds = []fuzzInput{
	{"default", "fz", "qotm", "", "", "", "h2", "ECDHE-ECDSA-AES128-GCM-SHA256", "X25519", "some-context-cert", "", "", "", "", "leastconn", "v1", "", ""},
	{"team", "fz", "https://upstream.example.com:8443", "a.example.com", "", "", "", "", "", "", "", "upstream-ca", "", "client.other", "source", "v2", "", ""},
	{"team", "fz", "10.1.2.3:7000", "*.example.org", "site", "127.0.0.1", "http/1.1", "TLS_AES_128_GCM_SHA256", "P-256", "cert", "ca.other", "", "", "", "", "", "", ""},
	{"team", "fz", "[2001:db8::1]:80", "", "site.other", "::1", "h2", "AES128-SHA", "X448", "cert.third", "", "", "", "", "", "", "", ""},
	{"team", "fz\nglobal", "qotm.default", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""},
	{"team", "fz", "qotm\n    bind :1", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""},
	{"team", "fz", "qotm.default", "a.example.com }\n    use_backend x if { always_true", "", "", "", "", "", "", "", "", "", "", "", "", "", ""},
	{"team", "fz", "qotm.default", "a.example.com #", "", "", "", "", "", "", "", "", "", "", "", "", "", ""},
	{"team", "fz", "qotm.default", "", "site", "127.0.0.1 ssl crt /etc/passwd", "", "", "", "cert", "", "", "", "", "", "", "", ""},
	{"team", "fz", "qotm.default", "", "site", "", "h2 crt x.pem", "", "", "cert", "", "", "", "", "", "", "", ""},
	{"team", "fz", "qotm.default", "", "site", "", "h2,http/1.1", "", "", "cert", "", "", "", "", "", "", "", ""},
	{"team", "fz", "qotm.default", "", "site", "", "", "AES128:ALL", "", "cert", "", "", "", "", "", "", "", ""},
	{"team", "fz", "qotm.default", "", "site", "", "", "'quoted'", "\"X25519\"", "cert", "", "", "", "", "", "", "", ""},
	{"team", "fz", "qotm.default", "", "site", "", "", "${TCPM_CERT_DIR}", "%[src]", "cert", "", "", "", "", "", "", "", ""},
	{"team", "fz", "qotm.default", "", "site", "", "", "{", "}", "cert", "", "", "", "", "", "", "", ""},
	{"team", "fz", "qotm.default", "", "site", "", "", "\\", "X25519 ", "cert", "", "", "", "", "", "", "", ""},
	{"team", "fz", "qotm.default", "", "site", "", "", "", "", "cert\n", "ca #", "", "", "", "", "", "", ""},
	{"team", "f z", "qotm.default", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""},
	{"te#am", "fz", "qotm.default", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""},
	{"team", "fz", "http://qotm:80 weight 256", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""},
	{"team", "fz", "%[env(HOME)]", "${HOME}", "", "", "", "", "", "", "", "", "", "", "", "", "", ""},
	{"team", "fz", "upstream.example.com", "", "", "fe80::1%eth0", "", "", "", "", "", "", "", "", "", "", "", ""},
	{"", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""},
	{"team", "fz", "https://upstream.example.com", "", "", "", "", "", "", "", "", "", "db verify none", "", "", "", "", ""},
	{"team", "fz", "https://upstream.example.com", "", "", "", "", "", "", "", "", "", "db\n    bind :1", "", "", "", "", ""},
	{"team", "fz", "https://upstream.example.com", "", "", "", "", "", "", "", "", "ca crt /etc/passwd", "", "", "", "", "", ""},
	{"team", "fz", "https://upstream.example.com", "", "", "", "", "", "", "", "", "", "", "client #", "", "", "", ""},
	{"team", "fz", "https://10.1.2.3", "", "", "", "", "", "", "", "", "ca", "${HOME}", "client", "", "", "", ""},
	{"team", "fz", "https://10.1.2.3", "", "", "", "", "", "", "", "", "", "%[src]", "", "", "", "", ""},
	{"team", "fz", "qotm.default", "", "", "", "", "", "", "", "", "", "", "", "source\n    bind :1", "v2 crt x.pem", "", ""},
	{"team", "fz", "qotm.default", "", "", "", "", "", "", "", "", "", "", "", "leastconn #", "v1\nlisten x", "", ""},
	{"team", "fz", "qotm.default", "", "", "", "", "", "", "", "", "", "", "", "%[src]", "${HOME}", "", ""},
	{"team", "fz", "qotm.default", "", "", "", "", "", "", "", "", "", "", "", "", "", "PING\r\n", "+PONG"},
	{"team", "fz", "qotm.default", "", "", "", "", "", "", "", "", "", "", "", "", "", "x\"\n    stats enable", "\\x41"},
	{"team", "fz", "qotm.default", "", "", "", "", "", "", "", "", "", "", "", "", "", "${HOME} #", "\"\n    tcp-check send x"},
	{"team", "fz", "qotm.default", "", "", "", "", "", "", "", "", "", "", "", "", "", "# comment\tand 'quotes' %[src]", "a\x00b"},
}

// FuzzTranslateRender puts fuzzed strings into every string field of a
// TCPMapping and of the TLSContext it names, translates and renders, and
// checks that rendering never fails, that every section of the baseline
// (global, defaults, the other mappings' frontends and backends) is
// unchanged line for line, that every new section is a frontend or backend
// carrying only the fuzzed objects and holding only the directives such a
// section has, and that every value taken from them is a single token
// HAProxy's parser gives no meaning to: no input adds a directive or
// breaks another mapping's lines.
//
// go test runs the seed corpus every time; CI also runs
//
//	go test ./operator/render/ -run '^$' -fuzz=FuzzTranslateRender -fuzztime=30s
//
// and a failing input it finds lands in testdata/fuzz/FuzzTranslateRender,
// which go test then replays always.
func FuzzTranslateRender(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.namespace, s.name, s.service, s.host, s.tls, s.address, s.alpn, s.cipher, s.curve, s.secret, s.caSecret,
			s.upstreamCA, s.serverName, s.clientCert, s.loadBalancer, s.sendProxy, s.checkSend, s.checkExpect)
	}
	base := fuzzBaseline(f)
	baseText, err := render.Config(translate.Translate(base).Config)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, namespace, name, service, host, tls, address, alpn, cipher, curve, secret, caSecret,
		upstreamCA, serverName, clientCert, loadBalancer, sendProxy, checkSend, checkExpect string) {
		in := fuzzInput{namespace, name, service, host, tls, address, alpn, cipher, curve, secret, caSecret,
			upstreamCA, serverName, clientCert, loadBalancer, sendProxy, checkSend, checkExpect}
		s, ok := withFuzzedObjects(base, in)
		if !ok {
			t.Skip("the fuzzed object collides with a baseline object")
		}
		checkFuzzed(t, s, in, baseText)
	})
}

// TestFuzzSeedsLoadInHAProxy renders every seed whose object is accepted
// and has Debian's haproxy check the result, and makes sure the valid
// seeds are accepted, so the fuzz checks are not vacuous.
func TestFuzzSeedsLoadInHAProxy(t *testing.T) {
	base := fuzzBaseline(t)
	for i, in := range fuzzSeeds {
		s, ok := withFuzzedObjects(base, in)
		if !ok {
			continue
		}
		res := translate.Translate(s)
		m := fuzzResult(res, in)
		if i < 4 && (m == nil || !m.Programmable()) {
			t.Errorf("seed %d (%+v) is valid but not programmable: %+v", i, in, m)
		}
		if m == nil || !m.Programmable() {
			continue
		}
		text, err := render.Config(res.Config)
		if err != nil {
			t.Fatal(err)
		}
		golden.CheckHAProxyFiles(t, text, certificates(res.Config), maps(res.Config))
	}
}

// fuzzBaseline is the seed's mixed port (passthrough, two certificates, a
// wildcard, a default) that the fuzzed object must leave untouched.
func fuzzBaseline(tb testing.TB) snapshot.Snapshot {
	tb.Helper()
	objs, err := snapshot.ReadPaths([]string{
		golden.TranslateTestdata + "/common",
		golden.TranslateTestdata + "/passthrough-and-termination.in.yaml",
	})
	if err != nil {
		tb.Fatal(err)
	}
	s := objs.ForEachHAProxy()[0]
	// The fuzzed references are followed wherever they point, so every
	// name reaches the configuration; consent is translate's concern and
	// tested there.
	s.HAProxy.Spec.CrossNamespaceReferences = v1alpha1.CrossNamespaceAllowAll
	return s
}

// withFuzzedObjects adds the fuzzed mapping, its TLSContext and their
// Secrets to base; false when one of them would replace a baseline object.
func withFuzzedObjects(base snapshot.Snapshot, in fuzzInput) (snapshot.Snapshot, bool) {
	s := base
	newer := metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	m := v1alpha1.TCPMapping{
		ObjectMeta: metav1.ObjectMeta{Namespace: in.namespace, Name: in.name, CreationTimestamp: newer},
		Spec: v1alpha1.TCPMappingSpec{
			Port: fuzzPort, Service: in.service, Host: in.host, TLS: in.tls, Address: in.address,
			LoadBalancer: in.loadBalancer, SendProxyProtocol: in.sendProxy,
		},
	}
	if in.checkSend != "" || in.checkExpect != "" {
		m.Spec.HealthCheck = &v1alpha1.HealthCheck{Send: in.checkSend, Expect: in.checkExpect}
	}
	for _, b := range base.TCPMappings {
		if b.Namespace == m.Namespace && b.Name == m.Name {
			return s, false
		}
	}
	if in.upstreamCA != "" || in.serverName != "" || in.clientCert != "" {
		m.Spec.UpstreamTLS = &v1alpha1.UpstreamTLS{CASecret: in.upstreamCA, ServerName: in.serverName, ClientCertificateSecret: in.clientCert}
	}
	s.TCPMappings = append(slices.Clip(base.TCPMappings), &m)
	var ok bool
	if s.Secrets, ok = withSecrets(base, in.namespace, []secretRef{{in.upstreamCA, "client-ca"}, {in.clientCert, "some-context-cert"}}); !ok {
		return s, false
	}
	if in.tls == "" {
		return s, true
	}
	ctxNS, ctxName := splitRef(in.tls, in.namespace)
	ctx := v1alpha1.TLSContext{
		ObjectMeta: metav1.ObjectMeta{Namespace: ctxNS, Name: ctxName, CreationTimestamp: newer},
		Spec: v1alpha1.TLSContextSpec{
			Secret: in.secret, CASecret: in.caSecret,
			ALPNProtocols: nonEmpty(in.alpn), CipherSuites: nonEmpty(in.cipher), ECDHCurves: nonEmpty(in.curve),
		},
	}
	for _, b := range base.TLSContexts {
		if b.Namespace == ctxNS && b.Name == ctxName {
			return s, false
		}
	}
	s.TLSContexts = append(slices.Clip(base.TLSContexts), ctx)
	secrets, ok := withSecrets(snapshot.Snapshot{Secrets: s.Secrets}, ctxNS, []secretRef{{in.secret, "some-context-cert"}, {in.caSecret, "client-ca"}})
	if !ok {
		return s, false
	}
	s.Secrets = secrets
	return s, true
}

// secretRef is a fuzzed Secret reference and the baseline Secret in
// namespace default whose data it gets.
type secretRef struct{ ref, like string }

// withSecrets adds a Secret for each reference (name or name.namespace,
// relative to namespace) to base's; false when one would replace a
// baseline Secret.
func withSecrets(base snapshot.Snapshot, namespace string, refs []secretRef) ([]corev1.Secret, bool) {
	secrets := slices.Clip(base.Secrets)
	for _, ref := range refs {
		if ref.ref == "" {
			continue
		}
		ns, name := splitRef(ref.ref, namespace)
		var like corev1.Secret
		for _, b := range secrets {
			if b.Namespace == ns && b.Name == name {
				return nil, false
			}
			if b.Namespace == "default" && b.Name == ref.like {
				like = b
			}
		}
		sec := *like.DeepCopy()
		sec.Namespace, sec.Name = ns, name
		secrets = append(secrets, sec)
	}
	return secrets, true
}

func nonEmpty(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

// splitRef is the API's name[.namespace] rule.
func splitRef(ref, namespace string) (string, string) {
	if n, ns, found := strings.Cut(ref, "."); found {
		return ns, n
	}
	return namespace, ref
}

func fuzzResult(res translate.Result, in fuzzInput) *translate.MappingResult {
	for i, m := range res.Mappings {
		if m.Namespace == in.namespace && m.Name == in.name {
			return res.Mappings[i]
		}
	}
	return nil
}

// section is one section of a rendered configuration.
type section struct {
	header string
	lines  []string
}

func sections(text []byte) []section {
	var out []section
	for _, line := range strings.Split(string(text), "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case !strings.HasPrefix(line, " "):
			out = append(out, section{header: line})
		case len(out) > 0:
			out[len(out)-1].lines = append(out[len(out)-1].lines, line)
		}
	}
	return out
}

// Directives a section created for the fuzzed object may hold.
var (
	frontendLine = regexp.MustCompile(`^    (bind|tcp-request|use_backend|default_backend) |^    description TCPMapping [a-z0-9.-]+/[a-z0-9.-]+(, [a-z0-9.-]+/[a-z0-9.-]+)*( and [0-9]+ more)?$`)
	backendLine  = regexp.MustCompile(`^    (balance (roundrobin|leastconn|source)|hash-type consistent|timeout (server|tunnel) [0-9]+d?|timeout connect [0-9]+|retries [0-9]+|option redispatch 1|default-server check inter [0-9]+ rise [0-9]+ fall [0-9]+( observe layer4 error-limit [0-9]+ on-error mark-down)?|option tcp-check|tcp-check (send|expect string) "([^"\\$#'\x00-\x1f]|\\x[0-9a-f]{2})*"|description TCPMapping [a-z0-9.-]+/[a-z0-9.-]+(, [a-z0-9.-]+/[a-z0-9.-]+)*( and [0-9]+ more)?|tcp-request content (set-log-level notice|set-var\(sess\.tcpm_mapping\) "str\([a-z0-9./ -]+\)"|set-var\(sess\.tcpm_sni\) (req\.ssl_sni|ssl_fc_sni) if \{ (req\.ssl_sni|ssl_fc_sni) -m found \}|reject if !?\{ src [0-9a-f.:/ ]+ \}|reject if \{ be_conn gt [0-9]+ \}|track-sc0 src( table [^ ]+)?|reject if \{ sc0_conn_rate gt [0-9]+ \}|set-var\(txn\.tcpm_conns\) (int\(0\)|var\(txn\.tcpm_conns\),add\(txn\.tcpm_conn\))|set-var\(txn\.tcpm_conn\) be_conn\([^ ()]+\)|reject if \{ var\(txn\.tcpm_conns\) -m int gt [0-9]+ \})|stick-table type ipv6 size 100k expire [0-9]+ store conn_rate\([0-9]+\)|timeout queue [0-9]+|server [^ ]+ [^ ]+ weight [0-9]+( .*)?)$`)
	// safeToken is what any value taken from an object may look like in
	// haproxy.cfg: nothing HAProxy's parser gives a meaning to (spaces,
	// #, quotes, backslashes, $ and % expansions, braces, commas).
	safeToken = regexp.MustCompile(`^[A-Za-z0-9._:/*@\[\]+-]+$`)
	// listToken is an element of a list render joins with , or :.
	listToken = regexp.MustCompile(`^[A-Za-z0-9._/*@+-]+$`)
)

func checkFuzzed(t *testing.T, s snapshot.Snapshot, in fuzzInput, baseText []byte) {
	res := translate.Translate(s)
	text, err := render.Config(res.Config)
	if err != nil {
		t.Fatalf("render failed: %v", err)
	}
	own := []string{translate.RefTCPMapping + "/" + in.namespace + "/" + in.name}
	if in.tls != "" {
		ns, name := splitRef(in.tls, in.namespace)
		own = append(own, translate.RefTLSContext+"/"+ns+"/"+name)
	}

	got := map[string][]string{}
	for _, sec := range sections(text) {
		if _, dup := got[sec.header]; dup {
			t.Errorf("section %q appears twice", sec.header)
		}
		got[sec.header] = sec.lines
	}
	// Every baseline section is there, line for line.
	baseline := map[string]bool{}
	for _, sec := range sections(baseText) {
		baseline[sec.header] = true
		if !slices.Equal(got[sec.header], sec.lines) {
			t.Errorf("section %q changed:\nbefore: %q\nafter:  %q", sec.header, sec.lines, got[sec.header])
		}
	}
	// Every new section belongs to the fuzzed objects and holds only the
	// directives such a section has.
	for header, lines := range got {
		if baseline[header] {
			continue
		}
		fields := strings.Split(header, " ")
		if len(fields) != 2 || !safeToken.MatchString(fields[1]) {
			t.Errorf("new section header %q is not a keyword and a name", header)
			continue
		}
		switch fields[0] {
		case "resolvers":
			if fields[1] != translate.DNSResolvers {
				t.Errorf("new resolvers section %q", header)
			}
			continue
		case "frontend", "backend", "listen":
		default:
			t.Errorf("new section %q is neither a frontend, a backend nor a listen section", header)
			continue
		}
		sources := res.Config.SourcesOf(fields[1])
		if len(sources) == 0 {
			t.Errorf("new section %q names no source", header)
		}
		for _, src := range sources {
			if !slices.Contains(own, src) {
				t.Errorf("new section %q carries %s, not only the fuzzed objects %v", header, src, own)
			}
		}
		binds := 0
		for _, l := range lines {
			switch {
			case fields[0] == "frontend" && frontendLine.MatchString(l):
				if strings.HasPrefix(l, "    bind ") {
					binds++
				}
			case fields[0] == "listen" && strings.HasPrefix(l, "    bind ") && frontendLine.MatchString(l):
				binds++
			case fields[0] == "backend" && backendLine.MatchString(l):
			case fields[0] == "listen" && backendLine.MatchString(l):
			default:
				t.Errorf("section %q has the line %q", header, l)
			}
		}
		if fields[0] != "backend" && binds != 1 {
			t.Errorf("frontend %q has %d bind lines", header, binds)
		}
	}
	checkModelValues(t, res.Config, own)
}

// checkModelValues checks every value of the fuzzed objects' sections that
// render writes into a line: each must be a single safe token, so it can
// neither end its line nor add an option or directive.
func checkModelValues(t *testing.T, cfg model.Config, own []string) {
	mine := func(sources []string) bool {
		for _, s := range sources {
			if slices.Contains(own, s) {
				return true
			}
		}
		return false
	}
	check := func(where string, values ...string) {
		for _, v := range values {
			if v != "" && !safeToken.MatchString(v) {
				t.Errorf("%s: value %q reaches haproxy.cfg", where, v)
			}
		}
	}
	checkList := func(where string, values ...string) {
		for _, v := range values {
			if !listToken.MatchString(v) {
				t.Errorf("%s: list element %q reaches haproxy.cfg", where, v)
			}
		}
	}
	for _, fe := range cfg.Frontends {
		if !mine(fe.Sources) {
			continue
		}
		check(fe.Name, fe.Name, fe.Bind.Address, fe.Bind.Socket, fe.DefaultBackend)
		if p := fe.Pick; p != nil {
			check(fe.Name, p.Fetch, p.HostMap, p.WeightMap)
			for _, m := range cfg.Maps {
				if m.Name != p.HostMap && m.Name != p.WeightMap {
					continue
				}
				// A map file line is "key value": neither may hold a
				// space or end the line.
				for _, e := range m.Entries {
					check(m.Name, e.Key, e.Value)
				}
			}
		}
		if tl := fe.Bind.TLS; tl != nil {
			check(fe.Name, tl.Certificate, tl.CAFile, tl.CRLFile, tl.Verify, tl.MinVersion, tl.MaxVersion)
			checkList(fe.Name, tl.ALPN...)
			checkList(fe.Name, tl.Ciphers...)
			checkList(fe.Name, tl.CipherSuites...)
			checkList(fe.Name, tl.Curves...)
		}
	}
	for _, be := range cfg.Backends {
		if !mine(be.Sources) {
			continue
		}
		check(be.Name, be.Name)
		for _, m := range be.Members {
			check(be.Name, m.Mapping)
		}
		for _, sv := range be.Servers {
			check(be.Name, sv.Name, sv.Address, sv.Socket, sv.SNI, sv.Verify, sv.CAFile, sv.VerifyHost, sv.ClientCertificate)
		}
	}
	for _, c := range cfg.Certificates {
		if mine(c.Sources) {
			check("certificate", c.File)
		}
	}
}
