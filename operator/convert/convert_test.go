package convert_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/convert"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/internal/golden"
)

// TestConvertGolden converts every testdata/*.in.yaml and compares the
// resources with <case>.out.yaml and the notes with <case>.notes.txt.
func TestConvertGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			res, err := convert.Convert(data, convert.Options{Namespace: "default"})
			if err != nil {
				t.Fatal(err)
			}
			out, err := convert.YAML(res.Objects)
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, filepath.Join("testdata", name+".out.yaml"), out)
			golden.Assert(t, filepath.Join("testdata", name+".notes.txt"), []byte(strings.Join(res.Notes, "\n")+"\n"))
		})
	}
}

func TestConvertRefusesWhatCannotWork(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"a port that is no number":    {"apiVersion: ambassador/v1\nkind: TCPMapping\nname: m\nport: two\nservice: s\n", "port must be an integer"},
		"a TLSContext without secret": {"apiVersion: ambassador/v1\nkind: TLSContext\nname: c\nhosts: [a]\n", "secret is required"},
		"two documents with one name": {"apiVersion: ambassador/v1\nkind: TCPMapping\nname: m\nport: 1\nservice: s\n---\napiVersion: ambassador/v1\nkind: TCPMapping\nname: m\nport: 2\nservice: s\n", "two resources convert to TCPMapping/default/m"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := convert.Convert([]byte(tc.in), convert.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}
