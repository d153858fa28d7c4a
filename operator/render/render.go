// Package render turns the HAProxy model into haproxy.cfg bytes through the
// embedded templates. It is pure and deterministic: equal models give equal
// bytes, so a configuration hash says whether anything changed.
package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"text/template"
	"time"

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
	}).
	Option("missingkey=error").
	ParseFS(templates.FS, "*.tmpl"))

// Config renders cfg as haproxy.cfg.
func Config(cfg model.Config) ([]byte, error) {
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, templates.Main, cfg); err != nil {
		return nil, fmt.Errorf("render haproxy.cfg for %s: %w", cfg.Name, err)
	}
	// One final newline, whatever the templates' trailing blocks leave.
	return append(bytes.TrimRight(buf.Bytes(), "\n"), '\n'), nil
}

// Proxies renders cfg with only the frontends and backends whose names
// keep accepts: equal outputs for two configurations with the same global
// settings say those sections render the same in both.
func Proxies(cfg model.Config, keep func(name string) bool) ([]byte, error) {
	part := cfg
	part.Frontends, part.Backends = nil, nil
	for _, f := range cfg.Frontends {
		if keep(f.Name) {
			part.Frontends = append(part.Frontends, f)
		}
	}
	for _, b := range cfg.Backends {
		if keep(b.Name) {
			part.Backends = append(part.Backends, b)
		}
	}
	return Config(part)
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

// Hash is the short content hash of a rendered configuration, shown in
// status to tell which configuration an instance runs.
func Hash(cfg []byte) string {
	sum := sha256.Sum256(cfg)
	return hex.EncodeToString(sum[:8])
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
