package translate_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/internal/golden"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// TestTranslateGolden runs every case in testdata and compares the model and
// verdicts with <case>.out.yaml.
func TestTranslateGolden(t *testing.T) {
	for _, tc := range golden.Cases(t, "testdata") {
		t.Run(tc.Name, func(t *testing.T) {
			res := translate.Translate(tc.Snapshot)
			out, err := yaml.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, filepath.Join("testdata", tc.Name+".out.yaml"), out)

			// Same input, same output: the renderer's hash depends on it.
			again, _ := yaml.Marshal(translate.Translate(tc.Snapshot))
			if !bytes.Equal(out, again) {
				t.Error("two translations of the same snapshot differ")
			}
		})
	}
}

// TestResultsNeverCarryKeyMaterial checks that verdicts and the marshalled
// model hold no private key, whatever the case.
func TestResultsNeverCarryKeyMaterial(t *testing.T) {
	for _, tc := range golden.Cases(t, "testdata") {
		res := translate.Translate(tc.Snapshot)
		out, err := yaml.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range tc.Snapshot.Secrets {
			key := strings.TrimSpace(string(s.Data["tls.key"]))
			if key == "" {
				continue
			}
			body := strings.Split(key, "\n")[1]
			if strings.Contains(string(out), body) {
				t.Errorf("%s: result carries key material of Secret %s", tc.Name, s.Name)
			}
		}
		for _, c := range res.Config.Certificates {
			if strings.Contains(c.PEM.String(), "PRIVATE KEY") {
				t.Errorf("%s: certificate %s prints its key", tc.Name, c.File)
			}
		}
	}
}
