// Package crd embeds the CustomResourceDefinitions generated from api/, so
// the binary can install them into a local cluster.
package crd

import "embed"

// FS holds the CRD manifests.
//
//go:embed haproxy-operator.io_*.yaml
var FS embed.FS
