package render_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/internal/golden"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/render"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

func certificates(cfg model.Config) map[string][]byte {
	out := map[string][]byte{}
	for _, c := range cfg.Certificates {
		out[c.File] = c.PEM.Reveal()
	}
	return out
}

func maps(cfg model.Config) map[string][]byte {
	out := map[string][]byte{}
	for _, m := range cfg.Maps {
		out[m.Name] = m.Content()
	}
	return out
}

// TestRenderGolden renders every translation case, compares it with
// testdata/<case>.haproxy.cfg and has Debian's haproxy check it.
func TestRenderGolden(t *testing.T) {
	for _, tc := range golden.Cases(t, golden.TranslateTestdata) {
		t.Run(tc.Name, func(t *testing.T) {
			res := translate.Translate(tc.Snapshot)
			cfg, err := render.Config(res.Config)
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, filepath.Join("testdata", tc.Name+".haproxy.cfg"), cfg)
			golden.CheckHAProxyFiles(t, cfg, certificates(res.Config), maps(res.Config))

			first, _ := render.Render(res.Config)
			again, _ := render.Render(translate.Translate(tc.Snapshot).Config)
			if !bytes.Equal(cfg, again.Text) || first.Hash() != again.Hash() {
				t.Error("rendering the same snapshot twice gave different bytes or hashes")
			}
		})
	}
}

// TestRenderKeepsEveryServerOnItsLine checks the server line shapes: an
// IPv4 and an IPv6 address.
func TestRenderKeepsEveryServerOnItsLine(t *testing.T) {
	cfg := model.Config{
		Name:          "default/haproxy",
		HardStopAfter: time.Minute,
		Backends: []*model.Backend{{
			Name: "tcpm-be-2222",
			Servers: []model.Server{
				{Name: "default:a:1", Address: "10.0.0.1", Port: 80, Weight: 256},
				{Name: "default:a:3", Address: "2001:db8::1", Port: 80, Weight: 1},
			},
		}},
		Frontends: []*model.Frontend{{
			Name: "tcpm-fe-2222", Bind: model.Bind{Port: 2222}, DefaultBackend: "tcpm-be-2222",
		}},
	}
	out, err := render.Config(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"    server default:a:1 10.0.0.1:80 weight 256\n",
		"    server default:a:3 [2001:db8::1]:80 weight 1\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rendered configuration lacks %q:\n%s", want, out)
		}
	}
	golden.CheckHAProxyConfig(t, out, nil)
}
