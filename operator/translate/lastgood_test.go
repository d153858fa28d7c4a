package translate_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// cluster is the shared test cluster (Services, endpoints, certificates)
// with an HAProxy serving namespace default.
func cluster(t *testing.T) snapshot.Snapshot {
	t.Helper()
	objs, err := snapshot.ReadPaths([]string{"testdata/common"})
	if err != nil {
		t.Fatal(err)
	}
	objs.HAProxies = []v1alpha1.HAProxy{{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "default"}}}
	return objs.ForEachHAProxy()[0]
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// mapping is a TCPMapping at generation gen, created age seconds after
// epoch (older first).
// pointers are copies of ms, as a snapshot holds them.
func pointers(ms ...v1alpha1.TCPMapping) []*v1alpha1.TCPMapping {
	out := make([]*v1alpha1.TCPMapping, len(ms))
	for i := range ms {
		out[i] = ms[i].DeepCopy()
	}
	return out
}

func mapping(name string, age int, gen int64, spec v1alpha1.TCPMappingSpec) v1alpha1.TCPMapping {
	return v1alpha1.TCPMapping{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "default", Generation: gen,
			CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Second)),
		},
		Spec: spec,
	}
}

// accepted records generation gen with spec as the last accepted one.
func accepted(m v1alpha1.TCPMapping, gen int64, spec v1alpha1.TCPMappingSpec) v1alpha1.TCPMapping {
	m.Status.LastAccepted = &v1alpha1.AcceptedTCPMapping{Generation: gen, Spec: spec}
	return m
}

func tlsContext(name string, gen int64, spec v1alpha1.TLSContextSpec) v1alpha1.TLSContext {
	return v1alpha1.TLSContext{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Generation: gen}, Spec: spec}
}

func weighted(port int32, w int32) v1alpha1.TCPMappingSpec {
	return v1alpha1.TCPMappingSpec{Port: port, Service: "qotm", Weight: ptr.To(w)}
}

func find(t *testing.T, res translate.Result, name string) translate.MappingResult {
	t.Helper()
	for _, m := range res.Mappings {
		if m.Name == name {
			return *m
		}
	}
	t.Fatalf("no result for mapping %s", name)
	return translate.MappingResult{}
}

func findContext(t *testing.T, res translate.Result, name string) translate.TLSContextResult {
	t.Helper()
	for _, c := range res.TLSContexts {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no result for TLSContext %s", name)
	return translate.TLSContextResult{}
}

func backend(res translate.Result, name string) *model.Backend {
	for i := range res.Config.Backends {
		if res.Config.Backends[i].Name == name {
			return res.Config.Backends[i]
		}
	}
	return nil
}

func frontend(res translate.Result, name string) *model.Frontend {
	for i := range res.Config.Frontends {
		f := res.Config.Frontends[i]
		// A port with one cleartext mapping is a listen section named
		// after its backend: name it by its listener as the others.
		if f.Name == name || f.Listen && model.FrontendName(model.ListenerKey(f.Bind.Address, f.Bind.Port)) == name {
			return res.Config.Frontends[i]
		}
	}
	return nil
}

// shares lists a backend's members as mapping=share.
// shares are the shares of every mapping of the frontend's group, read
// from the mappings' backends.
func shares(res translate.Result, frontendName string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range res.Mappings {
		if m.Frontend != frontendName {
			continue
		}
		if be := backend(res, m.Backend); be != nil {
			for _, mb := range be.Members {
				out[mb.Mapping] = mb.Share
			}
		}
	}
	return out
}

// want is what a test expects of one mapping.
type want struct {
	name       string
	reason     string // Accepted reason
	inEffect   int64
	refsReason string // ResolvedRefs reason, when it matters
	message    []string
	notMessage []string
}

func check(t *testing.T, res translate.Result, w want) {
	t.Helper()
	r := find(t, res, w.name)
	if r.Accepted.Reason != w.reason {
		t.Errorf("%s: Accepted reason %s (%s), want %s", w.name, r.Accepted.Reason, r.Accepted.Message, w.reason)
	}
	if r.InEffectGeneration != w.inEffect {
		t.Errorf("%s: generation in effect %d, want %d", w.name, r.InEffectGeneration, w.inEffect)
	}
	if w.refsReason != "" && r.ResolvedRefs.Reason != w.refsReason {
		t.Errorf("%s: ResolvedRefs reason %s (%s), want %s", w.name, r.ResolvedRefs.Reason, r.ResolvedRefs.Message, w.refsReason)
	}
	all := r.Accepted.Message + " | " + r.ResolvedRefs.Message
	for _, s := range w.message {
		if !strings.Contains(all, s) {
			t.Errorf("%s: messages %q lack %q", w.name, all, s)
		}
	}
	for _, s := range w.notMessage {
		if strings.Contains(all, s) {
			t.Errorf("%s: messages %q mention %q", w.name, all, s)
		}
	}
	if (w.inEffect != 0) != r.Programmable() {
		t.Errorf("%s: programmable %v with generation %d in effect", w.name, r.Programmable(), w.inEffect)
	}
}

func TestWeightEditsKeepTheLastAcceptedGenerationServing(t *testing.T) {
	tests := map[string]struct {
		mappings []v1alpha1.TCPMapping
		want     []want
		shares   map[string]float64
	}{
		"raising the canary to 70 before lowering the stable keeps 60/40 serving": {
			mappings: []v1alpha1.TCPMapping{
				accepted(mapping("stable", 0, 1, weighted(2222, 40)), 1, weighted(2222, 40)),
				accepted(mapping("canary", 1, 2, weighted(2222, 70)), 1, weighted(2222, 60)),
			},
			want: []want{
				{name: "stable", reason: v1alpha1.ReasonAccepted, inEffect: 1},
				{name: "canary", reason: v1alpha1.ReasonPreviousGenerationInEffect, inEffect: 1,
					message: []string{"generation 2 is rejected", "InvalidWeights", "sum to 110", "generation 1 is still in effect"}},
			},
			shares: map[string]float64{"default/stable": 40, "default/canary": 60},
		},
		"lowering the stable to 30 after the canary's raise serves 70/30": {
			mappings: []v1alpha1.TCPMapping{
				accepted(mapping("stable", 0, 2, weighted(2222, 30)), 1, weighted(2222, 40)),
				accepted(mapping("canary", 1, 2, weighted(2222, 70)), 1, weighted(2222, 60)),
			},
			want: []want{
				{name: "stable", reason: v1alpha1.ReasonAccepted, inEffect: 2},
				{name: "canary", reason: v1alpha1.ReasonAccepted, inEffect: 2},
			},
			shares: map[string]float64{"default/stable": 30, "default/canary": 70},
		},
		"lowering the stable first is accepted at once": {
			mappings: []v1alpha1.TCPMapping{
				accepted(mapping("stable", 0, 2, weighted(2222, 30)), 1, weighted(2222, 40)),
				accepted(mapping("canary", 1, 1, weighted(2222, 60)), 1, weighted(2222, 60)),
			},
			want: []want{
				{name: "stable", reason: v1alpha1.ReasonAccepted, inEffect: 2},
				{name: "canary", reason: v1alpha1.ReasonAccepted, inEffect: 1},
			},
			shares: map[string]float64{"default/stable": 30, "default/canary": 60},
		},
		"both members raised at once keep their previous weights": {
			mappings: []v1alpha1.TCPMapping{
				accepted(mapping("stable", 0, 2, weighted(2222, 50)), 1, weighted(2222, 40)),
				accepted(mapping("canary", 1, 2, weighted(2222, 70)), 1, weighted(2222, 60)),
			},
			want: []want{
				{name: "stable", reason: v1alpha1.ReasonPreviousGenerationInEffect, inEffect: 1},
				{name: "canary", reason: v1alpha1.ReasonPreviousGenerationInEffect, inEffect: 1},
			},
			shares: map[string]float64{"default/stable": 40, "default/canary": 60},
		},
		"a group over 100 that never was accepted is rejected as a whole": {
			mappings: []v1alpha1.TCPMapping{
				mapping("stable", 0, 1, weighted(2222, 40)),
				mapping("canary", 1, 1, weighted(2222, 70)),
			},
			want: []want{
				{name: "stable", reason: v1alpha1.ReasonInvalidWeights},
				{name: "canary", reason: v1alpha1.ReasonInvalidWeights},
			},
			shares: map[string]float64{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := cluster(t)
			s.TCPMappings = pointers(tc.mappings...)
			res := translate.Translate(s)
			for _, w := range tc.want {
				check(t, res, w)
			}
			got := shares(res, "tcpm-fe-2222")
			if len(got) != len(tc.shares) {
				t.Errorf("backend shares %v, want %v", got, tc.shares)
			}
			for k, v := range tc.shares {
				if got[k] != v {
					t.Errorf("backend shares %v, want %v", got, tc.shares)
				}
			}
		})
	}
}

func TestARejectedMappingGenerationFallsBackToTheLastAcceptedOne(t *testing.T) {
	relay := func(port int32) v1alpha1.TCPMappingSpec { return v1alpha1.TCPMappingSpec{Port: port, Service: "qotm"} }
	tests := map[string]struct {
		mappings   []v1alpha1.TCPMapping
		exclusions []snapshot.Exclusion
		want       []want
		frontends  []string
		absent     []string
	}{
		"a mapping moved onto a port an older mapping owns keeps its previous port": {
			mappings: []v1alpha1.TCPMapping{
				mapping("owner", 0, 1, relay(2222)),
				accepted(mapping("mover", 1, 3, v1alpha1.TCPMappingSpec{Port: 2222, Host: "db.example.com", Service: "qotm"}), 2, relay(3333)),
			},
			want: []want{
				{name: "owner", reason: v1alpha1.ReasonAccepted, inEffect: 1},
				{name: "mover", reason: v1alpha1.ReasonPreviousGenerationInEffect, inEffect: 2,
					message: []string{"generation 3 is rejected (Conflict", "generation 2 is still in effect"}},
			},
			frontends: []string{"tcpm-fe-2222", "tcpm-fe-3333"},
		},
		"a generation HAProxy refused falls back to the last accepted one": {
			mappings: []v1alpha1.TCPMapping{
				accepted(mapping("db", 0, 2, v1alpha1.TCPMappingSpec{Port: 3600, Address: "192.0.2.55", Service: "qotm"}), 1, relay(3600)),
				mapping("other", 1, 1, relay(4000)),
			},
			exclusions: []snapshot.Exclusion{{Ref: "TCPMapping/default/db", Generation: 2, Reason: v1alpha1.ReasonReloadFailed, Message: "cannot bind 192.0.2.55:3600"}},
			want: []want{
				{name: "db", reason: v1alpha1.ReasonPreviousGenerationInEffect, inEffect: 1,
					message: []string{"generation 2 is rejected (ReloadFailed: cannot bind 192.0.2.55:3600)", "generation 1 is still in effect"}},
				{name: "other", reason: v1alpha1.ReasonAccepted, inEffect: 1},
			},
			frontends: []string{"tcpm-fe-3600", "tcpm-fe-4000"},
			absent:    []string{"tcpm-fe-192.0.2.55-3600"},
		},
		"an excluded mapping without an accepted generation is left out and the others are served": {
			mappings: []v1alpha1.TCPMapping{
				mapping("db", 0, 1, v1alpha1.TCPMappingSpec{Port: 3600, Address: "192.0.2.55", Service: "qotm"}),
				mapping("other", 1, 1, relay(4000)),
			},
			exclusions: []snapshot.Exclusion{{Ref: "TCPMapping/default/db", Generation: 1, Reason: v1alpha1.ReasonReloadFailed, Message: "cannot bind 192.0.2.55:3600"}},
			want: []want{
				{name: "db", reason: v1alpha1.ReasonReloadFailed, message: []string{"cannot bind 192.0.2.55:3600"}},
				{name: "other", reason: v1alpha1.ReasonAccepted, inEffect: 1},
			},
			frontends: []string{"tcpm-fe-4000"},
			absent:    []string{"tcpm-fe-192.0.2.55-3600"},
		},
		"an exclusion of an older generation does not reject the current one": {
			mappings:   []v1alpha1.TCPMapping{mapping("db", 0, 3, relay(3600))},
			exclusions: []snapshot.Exclusion{{Ref: "TCPMapping/default/db", Generation: 2, Reason: v1alpha1.ReasonReloadFailed, Message: "old"}},
			want:       []want{{name: "db", reason: v1alpha1.ReasonAccepted, inEffect: 3}},
			frontends:  []string{"tcpm-fe-3600"},
		},
		"a last accepted generation that HAProxy refused too is not used": {
			mappings: []v1alpha1.TCPMapping{accepted(mapping("db", 0, 3, relay(3600)), 2, relay(3700))},
			exclusions: []snapshot.Exclusion{
				{Ref: "TCPMapping/default/db", Generation: 3, Reason: v1alpha1.ReasonReloadFailed, Message: "port 3600 in use"},
				{Ref: "TCPMapping/default/db", Generation: 2, Reason: v1alpha1.ReasonReloadFailed, Message: "port 3700 in use"},
			},
			want:   []want{{name: "db", reason: v1alpha1.ReasonReloadFailed, message: []string{"port 3600 in use"}}},
			absent: []string{"tcpm-fe-3600", "tcpm-fe-3700"},
		},
		"a last accepted generation that no longer fits is not used and the current rejection is reported": {
			mappings: []v1alpha1.TCPMapping{
				mapping("owner", 0, 1, relay(3700)),
				accepted(mapping("db", 1, 3, v1alpha1.TCPMappingSpec{Port: 8404, Service: "qotm"}), 2,
					v1alpha1.TCPMappingSpec{Port: 3700, Host: "db.example.com", Service: "qotm"}),
			},
			want: []want{
				{name: "owner", reason: v1alpha1.ReasonAccepted, inEffect: 1},
				{name: "db", reason: v1alpha1.ReasonConflict, message: []string{"port 8404 is the stats port"}},
			},
			frontends: []string{"tcpm-fe-3700"},
		},
		"a mapping whose current generation is accepted ignores its last accepted one": {
			mappings:  []v1alpha1.TCPMapping{accepted(mapping("db", 0, 3, relay(3600)), 2, relay(3700))},
			want:      []want{{name: "db", reason: v1alpha1.ReasonAccepted, inEffect: 3}},
			frontends: []string{"tcpm-fe-3600"},
			absent:    []string{"tcpm-fe-3700"},
		},
		"a mapping with a newline in its address is refused naming the field": {
			mappings: []v1alpha1.TCPMapping{mapping("db", 0, 1, v1alpha1.TCPMappingSpec{Port: 3600, Address: "127.0.0.1\nglobal", Service: "qotm"})},
			want:     []want{{name: "db", reason: translate.ReasonInvalidSpec, message: []string{"spec.address"}}},
		},
		"a mapping with an invalid host falls back to its last accepted host": {
			mappings: []v1alpha1.TCPMapping{accepted(
				mapping("db", 0, 2, v1alpha1.TCPMappingSpec{Port: 3600, Host: "a b", Service: "qotm"}), 1,
				v1alpha1.TCPMappingSpec{Port: 3600, Host: "db.example.com", Service: "qotm"})},
			want: []want{{name: "db", reason: v1alpha1.ReasonPreviousGenerationInEffect, inEffect: 1,
				message: []string{"spec.host"}}},
			frontends: []string{"tcpm-fe-3600"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := cluster(t)
			s.TCPMappings = pointers(tc.mappings...)
			s.Exclusions = tc.exclusions
			res := translate.Translate(s)
			for _, w := range tc.want {
				check(t, res, w)
			}
			for _, fe := range tc.frontends {
				if frontend(res, fe) == nil {
					t.Errorf("no frontend %s", fe)
				}
			}
			for _, fe := range tc.absent {
				if frontend(res, fe) != nil {
					t.Errorf("frontend %s is configured", fe)
				}
			}
		})
	}
}

func TestARejectedTLSContextIsLeftOutOrFallsBack(t *testing.T) {
	good := v1alpha1.TLSContextSpec{Secret: "some-context-cert", CipherSuites: []string{"ECDHE-ECDSA-AES128-GCM-SHA256"}}
	bad := v1alpha1.TLSContextSpec{Secret: "some-context-cert", CipherSuites: []string{"FOO"}}
	injected := v1alpha1.TLSContextSpec{Secret: "some-context-cert", ECDHCurves: []string{"X25519\n    bind :1"}}
	terminate := v1alpha1.TCPMappingSpec{Port: 2222, TLS: "site", Service: "qotm"}
	relay := v1alpha1.TCPMappingSpec{Port: 4000, Service: "qotm"}
	foo := snapshot.Exclusion{Ref: "TLSContext/default/site", Generation: 2, Reason: v1alpha1.ReasonInvalidTLSSettings, Message: "HAProxy: unknown cipher FOO"}
	withPrevious := func(c v1alpha1.TLSContext, gen int64, spec v1alpha1.TLSContextSpec) v1alpha1.TLSContext {
		c.Status.LastAccepted = &v1alpha1.AcceptedTLSContext{Generation: gen, Spec: spec}
		return c
	}
	tests := map[string]struct {
		context      v1alpha1.TLSContext
		exclusions   []snapshot.Exclusion
		reason       string
		inEffect     int64
		message      string
		mapping      want
		ciphers      []string
		curves       []string
		terminatesOn string
	}{
		"an excluded TLSContext is rejected and its mappings name only it": {
			context:    tlsContext("site", 2, bad),
			exclusions: []snapshot.Exclusion{foo},
			reason:     v1alpha1.ReasonInvalidTLSSettings, message: "unknown cipher FOO",
			mapping: want{name: "site", reason: v1alpha1.ReasonAccepted, refsReason: v1alpha1.ReasonInvalidTLSContext,
				message: []string{"TLSContext default/site is not accepted"}, notMessage: []string{"FOO"}},
		},
		"an excluded TLSContext generation falls back to the last accepted settings": {
			context:    withPrevious(tlsContext("site", 2, bad), 1, good),
			exclusions: []snapshot.Exclusion{foo},
			reason:     v1alpha1.ReasonPreviousGenerationInEffect, inEffect: 1,
			message: "generation 2 is rejected (InvalidTLSSettings: HAProxy: unknown cipher FOO); generation 1 is still in effect",
			mapping: want{name: "site", reason: v1alpha1.ReasonAccepted, inEffect: 1, refsReason: v1alpha1.ReasonResolved},
			ciphers: []string{"ECDHE-ECDSA-AES128-GCM-SHA256"}, terminatesOn: "tcpm-fe-2222",
		},
		"a curve name carrying a newline is refused at translation naming the field": {
			context: tlsContext("site", 1, injected),
			reason:  v1alpha1.ReasonInvalidTLSSettings, message: "spec.ecdhCurves[0]",
			mapping: want{name: "site", reason: v1alpha1.ReasonAccepted, refsReason: v1alpha1.ReasonInvalidTLSContext},
		},
		"a curve name carrying a newline falls back to the last accepted curves": {
			context: withPrevious(tlsContext("site", 3, injected), 2, v1alpha1.TLSContextSpec{Secret: "some-context-cert", ECDHCurves: []string{"P-256"}}),
			reason:  v1alpha1.ReasonPreviousGenerationInEffect, inEffect: 2, message: "spec.ecdhCurves[0]",
			mapping: want{name: "site", reason: v1alpha1.ReasonAccepted, inEffect: 1},
			curves:  []string{"P-256"}, terminatesOn: "tcpm-fe-2222",
		},
		"a last accepted generation HAProxy refused too is not used": {
			context: withPrevious(tlsContext("site", 2, bad), 1, good),
			exclusions: []snapshot.Exclusion{foo,
				{Ref: "TLSContext/default/site", Generation: 1, Reason: v1alpha1.ReasonInvalidTLSSettings, Message: "certificate refused"}},
			reason: v1alpha1.ReasonInvalidTLSSettings, message: "unknown cipher FOO",
			mapping: want{name: "site", reason: v1alpha1.ReasonAccepted, refsReason: v1alpha1.ReasonInvalidTLSContext},
		},
		"an accepted TLSContext is in effect at its own generation": {
			context: withPrevious(tlsContext("site", 4, good), 3, bad),
			reason:  v1alpha1.ReasonAccepted, inEffect: 4,
			mapping: want{name: "site", reason: v1alpha1.ReasonAccepted, inEffect: 1, refsReason: v1alpha1.ReasonResolved},
			ciphers: []string{"ECDHE-ECDSA-AES128-GCM-SHA256"}, terminatesOn: "tcpm-fe-2222",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := cluster(t)
			s.TLSContexts = []v1alpha1.TLSContext{tc.context}
			s.TCPMappings = pointers(mapping("site", 0, 1, terminate), mapping("relay", 1, 1, relay))
			s.Exclusions = tc.exclusions
			res := translate.Translate(s)
			c := findContext(t, res, "site")
			if c.Accepted.Reason != tc.reason || c.InEffectGeneration != tc.inEffect || !strings.Contains(c.Accepted.Message, tc.message) {
				t.Errorf("TLSContext: Accepted %s %q in effect %d, want %s containing %q in effect %d",
					c.Accepted.Reason, c.Accepted.Message, c.InEffectGeneration, tc.reason, tc.message, tc.inEffect)
			}
			check(t, res, tc.mapping)
			check(t, res, want{name: "relay", reason: v1alpha1.ReasonAccepted, inEffect: 1})
			fe := frontend(res, "tcpm-fe-2222")
			if tc.terminatesOn == "" {
				if fe != nil {
					t.Errorf("frontend tcpm-fe-2222 is configured for a rejected TLSContext")
				}
				for _, cert := range res.Config.Certificates {
					t.Errorf("certificate %s is configured for a rejected TLSContext", cert.File)
				}
				return
			}
			if fe == nil || fe.Bind.TLS == nil {
				t.Fatalf("frontend tcpm-fe-2222 does not terminate TLS: %+v", fe)
			}
			if strings.Join(fe.Bind.TLS.Ciphers, ":") != strings.Join(tc.ciphers, ":") || strings.Join(fe.Bind.TLS.Curves, ":") != strings.Join(tc.curves, ":") {
				t.Errorf("bind ciphers %v curves %v, want %v %v", fe.Bind.TLS.Ciphers, fe.Bind.TLS.Curves, tc.ciphers, tc.curves)
			}
		})
	}
}

func TestAGarbageSecretKeepsTheStoredCertificateOfAnAcceptedTLSContext(t *testing.T) {
	spec := v1alpha1.TLSContextSpec{Secret: "broken-cert"}
	terminate := v1alpha1.TCPMappingSpec{Port: 2222, TLS: "site", Service: "qotm"}
	garbage := corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "broken-cert", Namespace: "default"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": []byte("not a certificate"), "tls.key": []byte("not a key")},
	}
	for name, tc := range map[string]struct {
		acceptedBefore bool
		keep           bool
	}{
		"a TLSContext accepted before keeps the file its instances store": {acceptedBefore: true, keep: true},
		"a TLSContext never accepted has nothing to keep":                 {acceptedBefore: false},
	} {
		t.Run(name, func(t *testing.T) {
			s := cluster(t)
			s.Secrets = append(s.Secrets, garbage)
			ctx := tlsContext("site", 1, spec)
			if tc.acceptedBefore {
				ctx.Status.LastAccepted = &v1alpha1.AcceptedTLSContext{Generation: 1, Spec: spec}
			}
			s.TLSContexts = []v1alpha1.TLSContext{ctx}
			s.TCPMappings = pointers(mapping("site", 0, 1, terminate))
			res := translate.Translate(s)
			c := findContext(t, res, "site")
			if c.ResolvedRefs.Status || c.ResolvedRefs.Reason != v1alpha1.ReasonInvalidCertificate {
				t.Errorf("TLSContext ResolvedRefs %v %s, want False InvalidCertificate", c.ResolvedRefs.Status, c.ResolvedRefs.Reason)
			}
			m := find(t, res, "site")
			var cert *model.Certificate
			for i := range res.Config.Certificates {
				if res.Config.Certificates[i].File == "default_site.pem" {
					cert = &res.Config.Certificates[i]
				}
			}
			if !tc.keep {
				if m.Programmable() || cert != nil {
					t.Errorf("a never accepted TLSContext with a garbage Secret is served: %+v %+v", m, cert)
				}
				return
			}
			if !m.Programmable() || cert == nil || !cert.Keep || len(cert.PEM.Reveal()) != 0 {
				t.Errorf("mapping programmable %v, certificate %+v: want the stored file kept", m.Programmable(), cert)
			}
			if !strings.Contains(c.ResolvedRefs.Message, "keeps serving") {
				t.Errorf("the TLSContext should say the last certificate keeps serving: %q", c.ResolvedRefs.Message)
			}
		})
	}
}
