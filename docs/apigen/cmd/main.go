// Command apigen writes docs/api.md from deploy/crd.
package main

import (
	"fmt"
	"os"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/docs/apigen"
)

func main() {
	out, err := apigen.Generate("deploy/crd")
	if err != nil {
		fmt.Fprintln(os.Stderr, "apigen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile("docs/api.md", out, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "apigen:", err)
		os.Exit(1)
	}
}
