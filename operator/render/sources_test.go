package render_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/internal/golden"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/render"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

func goldenCase(t *testing.T, name string) snapshot.Snapshot {
	t.Helper()
	for _, tc := range golden.Cases(t, golden.TranslateTestdata) {
		if tc.Name == name {
			return tc.Snapshot
		}
	}
	t.Fatalf("no test case %s", name)
	return snapshot.Snapshot{}
}

// TestEveryLineOfATerminatorLeadsToItsTLSContextAndMappings follows an
// HAProxy message citing [haproxy.cfg:N] back to the objects whose
// configuration that line carries, for each kind of section of the seed's
// mixed port.
func TestEveryLineOfATerminatorLeadsToItsTLSContextAndMappings(t *testing.T) {
	res := translate.Translate(goldenCase(t, "passthrough-and-termination"))
	text, sections, err := render.ConfigWithIndex(res.Config)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	if len(lines) != len(sections) {
		t.Fatalf("%d lines but %d section names", len(lines), len(sections))
	}
	lineOf := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return i
			}
		}
		t.Fatalf("no line starts with %q", prefix)
		return -1
	}
	tests := map[string]struct {
		line string
		want []string
	}{
		"the terminator's bind names its TLSContext and the mappings it routes": {
			line: `    bind "unix@${TCPM_RUN_DIR}/tls-8443-1.sock"`,
			want: []string{"TCPMapping/default/host1", "TCPMapping/default/wildcard", "TLSContext/default/some-context"},
		},
		"the public frontend names every mapping of its port and no TLSContext": {
			line: `    bind "${TCPM_BIND_ADDR}:8443"`,
			want: []string{"TCPMapping/default/fallback", "TCPMapping/default/host1", "TCPMapping/default/other-host", "TCPMapping/default/passthrough", "TCPMapping/default/wildcard"},
		},
		"a backend's server names its mapping": {
			line: "    server default:other-host:1",
			want: []string{"TCPMapping/default/other-host"},
		},
		"a global directive names no object": {
			line: "    hard-stop-after",
			want: nil,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := res.Config.SourcesOf(sections[lineOf(tc.line)])
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("sources of %q = %v, want %v", tc.line, got, tc.want)
			}
		})
	}
	if got, want := res.Config.SourcesOf("default_other-context.pem"), []string{"TLSContext/default/other-context"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sources of the certificate file = %v, want %v", got, want)
	}
	if got := res.Config.SourcesOf("tcpm-fe-9999"); got != nil {
		t.Errorf("sources of an unknown proxy = %v, want none", got)
	}
}
