// Package render turns the HAProxy model into haproxy.cfg bytes through the
// embedded templates. It is pure and deterministic: equal models give equal
// bytes, so a configuration hash says whether anything changed.
//
// The templates are in Go's text/template language, with sprig's
// functions, and run on a copy of text/template that reads fields and calls
// functions but no methods: the standard package's method calls make the
// linker keep every exported method of every type in the binary (13 MB of
// code). A template that names a method is an execution error.
package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	template "github.com/DataDog/datadog-agent/pkg/template/text"
	"github.com/Masterminds/sprig/v3"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/templates"
)

var tmpl = template.Must(template.New(templates.Main).
	Funcs(sprig.TxtFuncMap()).
	Funcs(template.FuncMap{
		"prefix":    func() string { return model.Prefix },
		"ms":        milliseconds,
		"idle":      idleTimeout,
		"hostPort":  hostPort,
		"mapFile":   mapFile,
		"pickRange": func() int { return model.PickRange },
		// cfgString quotes user text for a haproxy.cfg argument.
		"cfgString": cfgString,
		"reveal":    func(p model.PrivateBytes) string { return string(p.Reveal()) },
		"headIn":    headOf,
		"frontendIn": func(f *model.Frontend, handshake time.Duration) frontendData {
			return frontendData{Frontend: f, Handshake: handshake}
		},
		"listenIn":  listenOf,
		"backendIn": func(b *model.Backend) backendData { return backendData{Backend: b} },
		"inListen": func(cfg model.Config, backend string) bool {
			_, ok := listenNamed(cfg.Frontends, backend)
			return ok
		},
	}).
	Option("missingkey=error").
	ParseFS(templates.FS, "*.tmpl"))

// headData is what the head template (global, defaults, stats,
// resolvers) reads: the configuration, and whether any backend logs, which
// its backends say and the head renders without them.
type headData struct {
	model.Config
	WithAccessLogs bool
}

func headOf(cfg model.Config) headData {
	return headData{Config: cfg, WithAccessLogs: cfg.AccessLogs()}
}

// frontendData is what the frontend template reads: the frontend and
// the configuration's handshake timeout.
type frontendData struct {
	Frontend  *model.Frontend
	Handshake time.Duration
}

// listenData is what the listen template reads: a frontend with Listen
// and its backend.
type listenData struct {
	Frontend *model.Frontend
	Backend  *model.Backend
	Body     backendData
}

// backendData is what the backend template reads: the backend, and
// whether it renders in a listen section.
type backendData struct {
	Backend *model.Backend
	Listen  bool
}

// listenOf pairs a Listen frontend with its backend. Such a frontend only
// binds: anything it would route by (a pick, a ClientHello to wait for,
// TLS to terminate) has no place in the one proxy, and is refused rather
// than dropped.
func listenOf(cfg model.Config, f *model.Frontend) (listenData, error) {
	switch {
	case f.DefaultBackend != f.Name:
		return listenData{}, fmt.Errorf("frontend %s: a listen section's backend must have its name, not %q", f.Name, f.DefaultBackend)
	case f.Pick != nil || f.InspectSNI || f.Bind.TLS != nil:
		return listenData{}, fmt.Errorf("frontend %s: a listen section only binds; it cannot pick, inspect the SNI or terminate TLS", f.Name)
	}
	i, ok := model.Find(cfg.Backends, f.Name, model.BackendNameOf)
	if !ok {
		// A model out of name order: read it all.
		for i = range cfg.Backends {
			if ok = cfg.Backends[i].Name == f.Name; ok {
				break
			}
		}
	}
	if !ok {
		return listenData{}, fmt.Errorf("frontend %s: no backend %s to listen with", f.Name, f.Name)
	}
	b := cfg.Backends[i]
	return listenData{Frontend: f, Backend: b, Body: backendData{Backend: b, Listen: true}}, nil
}

// listenNamed is the Listen frontend named name, which carries the
// backend of that name, among frontends in name order.
func listenNamed(frontends []*model.Frontend, name string) (*model.Frontend, bool) {
	i, ok := model.Find(frontends, name, model.FrontendNameOf)
	if !ok || !frontends[i].Listen {
		return nil, false
	}
	return frontends[i], true
}

// Config renders cfg as haproxy.cfg.
func Config(cfg model.Config) ([]byte, error) {
	r, err := Render(cfg)
	if err != nil {
		return nil, err
	}
	return r.Text, nil
}

// Rendered is a rendered configuration that knows where each frontend's
// and backend's text lies in it, so that the next configuration, which
// differs in a few sections, renders only those (Update).
type Rendered struct {
	// Text is haproxy.cfg.
	Text []byte
	// headEnd is where the head (global, defaults, stats, resolvers)
	// ends in Text.
	headEnd int
	// handshake is the timeout the frontends were rendered with.
	handshake time.Duration
	frontends map[string]span
	backends  map[string]span
	// listens is how many backends render in a listen section, with
	// their frontend, so have no span of their own.
	listens int
	// digest is Digest's value.
	digest [sha256.Size]byte
}

// span is where a section's text lies in Text, and the SHA-256 of that
// text.
type span struct {
	start, end int
	sum        [sha256.Size]byte
}

// Digest names the text: texts with the same head and the same sections
// have the same digest, and any other text another one. It is worked out
// from the digests of the sections, each hashed when rendered, so an
// update costs what it renders again rather than a hash of the whole
// text (4 MB at 10,000 mappings). Sections count in any order; translate
// gives them in name order.
func (r *Rendered) Digest() [sha256.Size]byte { return r.digest }

// Hash is the short form of Digest that statuses show.
func (r *Rendered) Hash() string { return hex.EncodeToString(r.digest[:8]) }

// Render renders cfg section by section.
func Render(cfg model.Config) (*Rendered, error) {
	return renderFrom(nil, cfg, nil)
}

// Update renders cfg, which differs from what r was rendered from only
// in the frontends and backends named in changed, sections added
// included, and in sections removed: the text of every other section is
// r's. Settings outside the sections (global, defaults, stats, resolvers)
// are rendered again. changed may name other things (maps, sections gone):
// only what cfg has is read, so an update costs what changed, not what
// cfg holds.
func (r *Rendered) Update(cfg model.Config, changed []string) (*Rendered, error) {
	if r.unchanged(cfg, changed) {
		// Weights and SNI hosts live in map files: most updates render
		// their sections as before, and r stands as it is.
		return r, nil
	}
	names := make(map[string]bool, len(changed))
	for _, n := range changed {
		names[n] = true
	}
	return renderFrom(r, cfg, func(name string) bool { return names[name] })
}

// unchanged reports whether cfg renders to r's text: the same sections,
// the changed ones rendering as before, and the same head.
func (r *Rendered) unchanged(cfg model.Config, changed []string) bool {
	if len(cfg.Frontends) != len(r.frontends) || len(cfg.Backends) != len(r.backends)+r.listens || cfg.HandshakeTimeout != r.handshake {
		return false
	}
	var sr sectionRenderer
	same := func(sp span, text []byte, err error) bool {
		return err == nil && bytes.Equal(text, r.Text[sp.start:sp.end])
	}
	// A section that did not change is, by Update's contract, one r has:
	// only the changed ones are looked up. A name r has that cfg does not
	// (gone, or cfg not in name order) calls for rendering again.
	for _, name := range changed {
		sp, inR := r.frontends[name]
		listen := false
		if i, ok := model.Find(cfg.Frontends, name, model.FrontendNameOf); ok {
			listen = cfg.Frontends[i].Listen
			if text, err := sr.frontend(cfg, cfg.Frontends[i]); !inR || !same(sp, text, err) {
				return false
			}
		} else if inR {
			return false
		}
		if listen {
			continue // the backend is in the listen section's text
		}
		sp, inR = r.backends[name]
		if i, ok := model.Find(cfg.Backends, name, model.BackendNameOf); ok {
			if text, err := sr.render("backend", backendData{Backend: cfg.Backends[i]}); !inR || !same(sp, text, err) {
				return false
			}
		} else if inR {
			return false
		}
	}
	head, err := sr.head(cfg)
	return err == nil && bytes.Equal(head, r.Text[:r.headEnd])
}

func renderFrom(prev *Rendered, cfg model.Config, changed func(string) bool) (*Rendered, error) {
	fail := func(err error) (*Rendered, error) {
		return nil, fmt.Errorf("render haproxy.cfg for %s: %w", cfg.Name, err)
	}
	var sr sectionRenderer
	head, err := sr.head(cfg)
	if err != nil {
		return fail(err)
	}
	size := len(head)
	if prev != nil {
		size += len(prev.Text)
	}
	buf := append(make([]byte, 0, size), head...)
	out := &Rendered{
		headEnd:   len(buf),
		handshake: cfg.HandshakeTimeout,
		frontends: make(map[string]span, len(cfg.Frontends)),
		backends:  make(map[string]span, len(cfg.Backends)),
	}
	// The backends that render in a listen section, with their frontend.
	inListen := map[string]bool{}
	for _, f := range cfg.Frontends {
		if f.Listen {
			inListen[f.Name] = true
		}
	}
	out.listens = len(inListen)
	// reused is the text prev has for a section that did not change,
	// and its digest.
	reused := func(spans map[string]span, name string) ([]byte, [sha256.Size]byte, bool) {
		if prev == nil || changed(name) {
			return nil, [sha256.Size]byte{}, false
		}
		sp, ok := spans[name]
		return prev.Text[sp.start:sp.end], sp.sum, ok
	}
	// sections is the XOR of the sections' digests.
	var sections [sha256.Size]byte
	add := func(spans map[string]span, name string, text []byte, sum [sha256.Size]byte) {
		start := len(buf)
		buf = append(buf, text...)
		spans[name] = span{start, len(buf), sum}
		for i := range sections {
			sections[i] ^= sum[i]
		}
	}
	for _, f := range cfg.Frontends {
		text, sum, ok := reused(prev.frontendsFor(cfg.HandshakeTimeout), f.Name)
		if !ok {
			if text, err = sr.frontend(cfg, f); err != nil {
				return fail(err)
			}
			sum = sha256.Sum256(text)
		}
		add(out.frontends, f.Name, text, sum)
	}
	for _, b := range cfg.Backends {
		if inListen[b.Name] {
			continue
		}
		text, sum, ok := reused(prev.backendsOf(), b.Name)
		if !ok {
			if text, err = sr.render("backend", backendData{Backend: b}); err != nil {
				return fail(err)
			}
			sum = sha256.Sum256(text)
		}
		add(out.backends, b.Name, text, sum)
	}
	h := sha256.New()
	h.Write(buf[:out.headEnd])
	h.Write(sections[:])
	h.Sum(out.digest[:0])
	// One final newline, whatever the templates' trailing blocks leave.
	out.Text = append(bytes.TrimRight(buf, "\n"), '\n')
	return out, nil
}

// sectionRenderer renders one part of the configuration at a time into a
// buffer it reuses: what it returns holds until its next call.
type sectionRenderer struct{ buf bytes.Buffer }

func (sr *sectionRenderer) render(template string, data any) ([]byte, error) {
	sr.buf.Reset()
	err := tmpl.ExecuteTemplate(&sr.buf, template, data)
	return sr.buf.Bytes(), err
}

// frontend renders a frontend, or the listen section of a Listen one.
func (sr *sectionRenderer) frontend(cfg model.Config, f *model.Frontend) ([]byte, error) {
	if !f.Listen {
		return sr.render("frontend", frontendData{Frontend: f, Handshake: cfg.HandshakeTimeout})
	}
	data, err := listenOf(cfg, f)
	if err != nil {
		return nil, err
	}
	return sr.render("listen", data)
}

// head renders global, defaults, stats and resolvers, without the
// newlines the template leaves after them.
func (sr *sectionRenderer) head(cfg model.Config) ([]byte, error) {
	h := headOf(cfg)
	h.Frontends, h.Backends = nil, nil
	text, err := sr.render("head", h)
	return bytes.TrimRight(text, "\n"), err
}

// frontendsFor are the frontends' spans when they were rendered with
// handshake, which every frontend's text may carry; else none.
func (r *Rendered) frontendsFor(handshake time.Duration) map[string]span {
	if r == nil || r.handshake != handshake {
		return nil
	}
	return r.frontends
}

func (r *Rendered) backendsOf() map[string]span {
	if r == nil {
		return nil
	}
	return r.backends
}

// ConfigWithIndex renders cfg like Config and also names, for each line of
// the text, the section it belongs to: the proxy name of a frontend or
// backend (which model.Config.SourcesOf resolves to objects), the resolvers
// name, "global" or "defaults"; "" before the first section. HAProxy's
// messages cite [haproxy.cfg:N]: sections[N-1] says whose line it is.
func ConfigWithIndex(cfg model.Config) (text []byte, sections []string, err error) {
	text, err = Config(cfg)
	if err != nil {
		return nil, nil, err
	}
	return text, Sections(text), nil
}

// Sections names the section of every line of a rendered configuration.
// The templates start each section with its keyword at the start of a line
// and indent everything inside, and no value can hold a newline, so the
// first word of an unindented line is enough.
func Sections(text []byte) []string {
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	out := make([]string, len(lines))
	current := ""
	for i, line := range lines {
		if line != "" && line[0] != ' ' && line[0] != '\t' && line[0] != '#' {
			fields := strings.Fields(line)
			switch {
			case len(fields) == 1:
				current = fields[0]
			case len(fields) > 1:
				current = fields[1]
			}
		}
		out[i] = current
	}
	return out
}

func milliseconds(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// idleTimeout is a backend's server and tunnel timeout: the mapping's
// idle timeout, or, when it has none, 24 days, close to HAProxy's longest
// timer (2^31-1 ms), so established connections are as good as unbounded
// while the client timeout still bounds the time before routing.
func idleTimeout(d time.Duration) string {
	if d <= 0 {
		return "24d"
	}
	return milliseconds(d)
}

// hostPort writes an address for a bind or server line; IPv6 needs
// brackets.
func hostPort(addr string, port int32) string {
	if a, err := netip.ParseAddr(addr); err == nil && a.Is6() {
		return fmt.Sprintf("[%s]:%d", addr, port)
	}
	return fmt.Sprintf("%s:%d", addr, port)
}

// mapFile is the path of a map file as the configuration loads it: in
// the instance's map directory, where the Data Plane API stores it and
// finds it again for runtime changes.
func mapFile(name string) string {
	return `"${TCPM_MAP_DIR}/` + name + `"`
}

// cfgString writes s as one double-quoted haproxy.cfg word. Letters,
// digits and a few harmless punctuation marks go as they are; every other
// byte (quotes, backslash, $ that would expand a variable, # that would
// start a comment outside quotes, control characters such as CR and LF)
// goes as a \xNN escape, which HAProxy's parser decodes, so no text can
// end the word or the line.
func cfgString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte(" ._:/+=@,-!%&()*;<>?[]^{|}~", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "\\x%02x", c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
