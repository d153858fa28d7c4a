// Package render turns the HAProxy model into haproxy.cfg bytes through the
// embedded templates. It is pure and deterministic: equal models give equal
// bytes, so a configuration hash says whether anything changed.
package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
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
		"prefix":   func() string { return model.Prefix },
		"ms":       milliseconds,
		"hostPort": hostPort,
		"sniMatch": sniMatch,
		"share":    formatShare,
		"reveal":   func(p model.PrivateBytes) string { return string(p.Reveal()) },
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

// Hash is the short content hash of a rendered configuration, shown in
// status to tell which configuration an instance runs.
func Hash(cfg []byte) string {
	sum := sha256.Sum256(cfg)
	return hex.EncodeToString(sum[:8])
}

func milliseconds(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// hostPort writes an address for a bind or server line; IPv6 needs
// brackets.
func hostPort(addr string, port int32) string {
	if a, err := netip.ParseAddr(addr); err == nil && a.Is6() {
		return fmt.Sprintf("[%s]:%d", addr, port)
	}
	return fmt.Sprintf("%s:%d", addr, port)
}

// sniMatch is the ACL matching one host: exact and case-insensitive, or,
// for *.suffix, exactly one label in front of suffix.
func sniMatch(fetch, host string) string {
	if suffix, wild := strings.CutPrefix(host, "*."); wild {
		// [.] instead of \. : HAProxy's parser would eat the backslash.
		return fmt.Sprintf("%s -i -m reg ^[^.]+[.]%s$", fetch, strings.ReplaceAll(suffix, ".", "[.]"))
	}
	return fmt.Sprintf("%s -i %s", fetch, host)
}

func formatShare(f float64) string {
	return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64)
}
