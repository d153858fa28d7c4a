// Command bundlegen writes the OLM bundle of deploy/ into deploy/bundle,
// and the Role of a namespaced install into deploy/namespaced/served.
package main

import (
	"fmt"
	"os"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/deploy/bundlegen"
)

func main() {
	root, out := "deploy", "deploy/bundle"
	if len(os.Args) == 3 {
		root, out = os.Args[1], os.Args[2]
	}
	if err := os.RemoveAll(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := bundlegen.Generate(root, out); err != nil {
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
