// Command bundlegen writes the OLM bundle of deploy/ into deploy/bundle,
// and the Role of a namespaced install into deploy/namespaced/served.
//
//	bundlegen [-registry host[:port]] [-operator-digest sha256:...] [-haproxy-digest sha256:...] [root out]
//
// The digests, known once the images are built and pushed, pin the
// bundle's images: relatedImages and the Deployment name them by digest.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/deploy/bundlegen"
)

func main() {
	fs := flag.NewFlagSet("bundlegen", flag.ContinueOnError)
	registry := fs.String("registry", bundlegen.DefaultRegistry, "registry of the images the manifests name without one")
	operatorDigest := fs.String("operator-digest", "", "pin the operator image: sha256:<hex> or <repository>@sha256:<hex>")
	haproxyDigest := fs.String("haproxy-digest", "", "pin the HAProxy instance image: sha256:<hex> or <repository>@sha256:<hex>")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	root, out := "deploy", "deploy/bundle"
	switch fs.NArg() {
	case 0:
	case 2:
		root, out = fs.Arg(0), fs.Arg(1)
	default:
		fmt.Fprintln(os.Stderr, "bundlegen: give both the deploy folder and the bundle folder, or neither")
		os.Exit(2)
	}
	images := bundlegen.Images{Registry: *registry, Digests: map[string]string{}}
	if *operatorDigest != "" {
		images.Digests[bundlegen.ImageOperator] = *operatorDigest
	}
	if *haproxyDigest != "" {
		images.Digests[bundlegen.ImageHAProxy] = *haproxyDigest
	}
	// Generate beside out and replace it only on success, so a bad flag
	// leaves the committed bundle as it was.
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(out)), ".bundle-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bundlegen:", err)
		os.Exit(1)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bundlegen:", err)
		os.Exit(1)
	}
	if err := bundlegen.Generate(root, tmp, images); err != nil {
		os.RemoveAll(tmp)
		fmt.Fprintln(os.Stderr, "bundlegen:", err)
		os.Exit(1)
	}
	if err := os.RemoveAll(out); err != nil {
		fmt.Fprintln(os.Stderr, "bundlegen:", err)
		os.Exit(1)
	}
	if err := os.Rename(tmp, out); err != nil {
		fmt.Fprintln(os.Stderr, "bundlegen:", err)
		os.Exit(1)
	}
	role, err := bundlegen.ServedRole(root)
	if err == nil {
		err = os.WriteFile(bundlegen.ServedRolePath(root), role, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bundlegen:", err)
		os.Exit(1)
	}
}
