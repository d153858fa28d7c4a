// Package samples embeds the sample resources, so the binary's local
// cluster can start with them.
package samples

import "embed"

// FS holds the sample manifests.
//
//go:embed *.yaml
var FS embed.FS
