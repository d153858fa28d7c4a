// Command haproxy-tcp-operator is the operator, the dataplane that runs
// beside each HAProxy, and the render and convert tools, in one binary.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
