// Package templates holds the haproxy.cfg templates, embedded in the binary.
// Only the renderer reads them; they see the model, never API types.
package templates

import "embed"

// FS holds every template file.
//
//go:embed *.tmpl
var FS embed.FS

// Main is the entry template that renders a whole haproxy.cfg.
const Main = "haproxy.cfg.tmpl"
