package render

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/internal/golden"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/templates"
)

// wholeTemplate renders cfg in one execution of the main template: what
// rendering section by section must equal.
func wholeTemplate(t *testing.T, cfg model.Config) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, templates.Main, cfg); err != nil {
		t.Fatal(err)
	}
	return append(bytes.TrimRight(buf.Bytes(), "\n"), '\n')
}

// TestSectionsRenderAsTheWholeTemplate: for every golden case, rendering
// section by section gives the bytes of the whole template, and Update
// gives the bytes of a fresh rendering after each kind of change, as long
// as it is told which sections changed.
func TestSectionsRenderAsTheWholeTemplate(t *testing.T) {
	for _, tc := range golden.Cases(t, golden.TranslateTestdata) {
		t.Run(tc.Name, func(t *testing.T) {
			base := translate.Translate(tc.Snapshot).Config
			first, err := Render(base)
			if err != nil {
				t.Fatal(err)
			}
			if want := wholeTemplate(t, base); !bytes.Equal(first.Text, want) {
				t.Fatalf("section by section differs from the whole template:\n%s", golden.Diff(string(want), string(first.Text)))
			}

			var none []string
			for _, change := range changesOf(base) {
				t.Run(change.what, func(t *testing.T) {
					from := first
					if change.from != nil {
						from = change.from
					}
					next, err := from.Update(change.cfg, change.changed)
					if err != nil {
						t.Fatal(err)
					}
					if want := wholeTemplate(t, change.cfg); !bytes.Equal(next.Text, want) {
						t.Fatalf("Update differs from a fresh rendering:\n%s", golden.Diff(string(want), string(next.Text)))
					}
					// The digest names the text: an update's, derived
					// from the sections it rendered again, is a fresh
					// rendering's; a text that changed has another.
					fresh, err := Render(change.cfg)
					if err != nil {
						t.Fatal(err)
					}
					if next.Digest() != fresh.Digest() {
						t.Error("an update's digest differs from a fresh rendering's of the same text")
					}
					if textChanged := !bytes.Equal(next.Text, from.Text); textChanged == (next.Digest() == from.Digest()) {
						t.Errorf("text changed %v, digest changed %v", textChanged, next.Digest() != from.Digest())
					}
					// And again from the update: spans point into its text.
					again, err := next.Update(change.cfg, none)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(again.Text, next.Text) || again.Digest() != next.Digest() {
						t.Fatal("an update with nothing changed differs")
					}
				})
			}
		})
	}
}

type sectionChange struct {
	what    string
	cfg     model.Config
	changed []string
	// from is what the change starts from when not the base rendering.
	from *Rendered
}

// changesOf are changes of each kind to cfg, with the names of the
// sections they change.
func changesOf(cfg model.Config) []sectionChange {
	only := func(names ...string) []string { return names }
	out := []sectionChange{{what: "nothing", cfg: cfg, changed: only()}}

	if len(cfg.Frontends) > 0 && len(cfg.Backends) > 0 {
		c := cfg
		c.Frontends = append([]*model.Frontend(nil), cfg.Frontends[1:]...)
		c.Backends = append([]*model.Backend(nil), cfg.Backends[1:]...)
		out = append(out, sectionChange{what: "the first frontend and backend go", cfg: c, changed: only()})

		c = cfg
		extraFE := &model.Frontend{Name: "aaa-first", Bind: model.Bind{Port: 1}, DefaultBackend: "zzz-last"}
		extraBE := &model.Backend{Name: "zzz-last", Servers: []model.Server{{Name: "s", Address: "10.1.1.1", Port: 1, Weight: 1}}}
		c.Frontends = append([]*model.Frontend{extraFE}, cfg.Frontends...)
		c.Backends = append(append([]*model.Backend(nil), cfg.Backends...), extraBE)
		out = append(out, sectionChange{what: "a frontend and a backend come", cfg: c, changed: only()})
	}
	for i, b := range cfg.Backends {
		if len(b.Servers) == 0 {
			continue
		}
		c := cfg
		c.Backends = append([]*model.Backend(nil), cfg.Backends...)
		// A new backend in its place: cfg shares the old one.
		moved := *b
		moved.Servers = append(append([]model.Server(nil), b.Servers...), model.Server{Name: "added", Address: "10.9.9.9", Port: 9, Weight: 1})
		moved.Description = "changed"
		c.Backends[i] = &moved
		out = append(out, sectionChange{what: "a backend's servers change", cfg: c, changed: only(b.Name)})
		break
	}
	if len(cfg.Frontends) > 0 {
		c := cfg
		c.Frontends = append([]*model.Frontend(nil), cfg.Frontends...)
		// A new frontend in its place: cfg shares the old one.
		f := *c.Frontends[len(c.Frontends)-1]
		f.Description = "changed"
		c.Frontends[len(c.Frontends)-1] = &f
		out = append(out, sectionChange{what: "a frontend's description changes", cfg: c, changed: only(f.Name)})
	}
	for j, f := range cfg.Frontends {
		if !f.Listen {
			continue
		}
		i, _ := model.Find(cfg.Backends, f.Name, model.BackendNameOf)
		c := cfg
		c.Backends = slices.Clone(cfg.Backends)
		b := *c.Backends[i]
		b.Servers = append(slices.Clone(b.Servers), model.Server{Name: "added", Address: "10.9.9.9", Port: 9, Weight: 1})
		c.Backends[i] = &b
		out = append(out, sectionChange{what: "a listen section's servers change", cfg: c, changed: only(f.Name)})

		// A second mapping joins the port: the listen section becomes
		// a frontend and its backend.
		c = cfg
		c.Frontends = slices.Clone(cfg.Frontends)
		split := *f
		split.Name, split.Listen = f.Name+"~fe", false
		c.Frontends[j] = &split
		out = append(out, sectionChange{what: "a listen section splits", cfg: c, changed: only(f.Name, split.Name)})

		// And back.
		c = cfg
		c.Frontends = slices.Clone(cfg.Frontends)
		c.Frontends[j] = &split
		if back, err := Render(c); err == nil {
			out = append(out, sectionChange{what: "a frontend and its backend become a listen section", cfg: cfg, changed: only(f.Name, split.Name), from: back})
		}
		break
	}
	// Every frontend carries the handshake timeout: a new one renders
	// them all again, whatever changed says.
	c := cfg
	c.HandshakeTimeout = cfg.HandshakeTimeout + 7*time.Second
	out = append(out, sectionChange{what: "the handshake timeout changes", cfg: c, changed: only()})
	// The head depends on whether any backend logs.
	if len(cfg.Backends) > 0 && !cfg.AccessLogs() {
		c := cfg
		c.Backends = append([]*model.Backend(nil), cfg.Backends...)
		b := *c.Backends[0]
		b.Limits = &model.Limits{AccessLog: &model.AccessLog{Mapping: "default/logged"}}
		c.Backends[0] = &b
		out = append(out, sectionChange{what: "a backend starts logging", cfg: c, changed: only(b.Name)})
	}
	return out
}

// TestUpdateReusesWhatItIsToldDidNotChange: a section Update is not told
// about keeps its old text, so reuse does happen.
func TestUpdateReusesWhatItIsToldDidNotChange(t *testing.T) {
	cfg := model.Config{
		Name:     "default/edge",
		Backends: []*model.Backend{{Name: "b", Servers: []model.Server{{Name: "s", Address: "10.0.0.1", Port: 80, Weight: 1}}}},
	}
	first, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	moved := cfg
	moved.Backends = []*model.Backend{{Name: "b", Servers: []model.Server{{Name: "s", Address: "10.0.0.2", Port: 80, Weight: 1}}}}
	stale, err := first.Update(moved, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stale.Text, first.Text) {
		t.Error("a section not named as changed was rendered again")
	}
	fresh, err := first.Update(moved, []string{"b"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(fresh.Text, []byte("10.0.0.2:80")) {
		t.Errorf("the changed section kept its old text:\n%s", fresh.Text)
	}
}

// TestUpdateOfSectionsOutOfNameOrder: Update finds changed sections by
// binary search over the name order translate gives; a configuration in
// another order still renders its changed sections again, never the old
// text.
func TestUpdateOfSectionsOutOfNameOrder(t *testing.T) {
	backend := func(name, addr string) *model.Backend {
		return &model.Backend{Name: name, Servers: []model.Server{{Name: "s", Address: addr, Port: 80, Weight: 1}}}
	}
	cfg := model.Config{Name: "default/edge", Backends: []*model.Backend{backend("d", "10.0.0.4"), backend("c", "10.0.0.3"), backend("b", "10.0.0.2"), backend("a", "10.0.0.1")}}
	first, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range cfg.Backends {
		moved := cfg
		moved.Backends = slices.Clone(cfg.Backends)
		moved.Backends[i] = backend(b.Name, "10.9.9.9")
		next, err := first.Update(moved, []string{b.Name})
		if err != nil {
			t.Fatal(err)
		}
		want, err := Render(moved)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(next.Text, want.Text) {
			t.Errorf("backend %s changed out of name order: the update differs from a fresh rendering:\n%s", b.Name, next.Text)
		}
	}
}

// TestAListenSectionOnlyBinds: a Listen frontend renders with its backend
// as one proxy, and what a listen section cannot carry is refused, naming
// the frontend, rather than dropped.
func TestAListenSectionOnlyBinds(t *testing.T) {
	backend := &model.Backend{Name: "tcpm-be-default:db", Servers: []model.Server{{Name: "s", Address: "10.0.0.1", Port: 5432, Weight: 1}}}
	listen := model.Frontend{Name: backend.Name, Bind: model.Bind{Port: 5432}, DefaultBackend: backend.Name, Listen: true}
	r, err := Render(model.Config{Name: "default/edge", Frontends: []*model.Frontend{&listen}, Backends: []*model.Backend{backend}})
	if err != nil {
		t.Fatal(err)
	}
	text := string(r.Text)
	if !strings.Contains(text, "\nlisten tcpm-be-default:db\n    bind \"${TCPM_BIND_ADDR}:5432\"\n    balance roundrobin\n") {
		t.Errorf("no listen section with the bind and the backend:\n%s", text)
	}
	if strings.Contains(text, "\nbackend ") || strings.Contains(text, "\nfrontend tcpm-be") || strings.Contains(text, "default_backend") {
		t.Errorf("the listen section's backend or frontend is rendered on its own too:\n%s", text)
	}

	for what, c := range map[string]struct {
		change func(*model.Config)
		want   string
	}{
		"a pick":                 {func(c *model.Config) { c.Frontends[0].Pick = &model.Pick{WeightMap: "w.map"} }, "only binds"},
		"a ClientHello to wait":  {func(c *model.Config) { c.Frontends[0].InspectSNI = true }, "only binds"},
		"TLS to terminate":       {func(c *model.Config) { c.Frontends[0].Bind.TLS = &model.TLSBind{Certificate: "c.pem"} }, "only binds"},
		"another backend's name": {func(c *model.Config) { c.Frontends[0].DefaultBackend = "other" }, `not "other"`},
		"no backend":             {func(c *model.Config) { c.Backends = nil }, "no backend tcpm-be-default:db"},
	} {
		t.Run(what, func(t *testing.T) {
			// Each case changes its own copy of the frontend.
			own := listen
			cfg := model.Config{Name: "default/edge", Frontends: []*model.Frontend{&own}, Backends: []*model.Backend{backend}}
			c.change(&cfg)
			_, err := Render(cfg)
			if err == nil || !strings.Contains(err.Error(), "frontend tcpm-be-default:db") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want one naming the frontend and %q", err, c.want)
			}
		})
	}
}
