// Command haproxy-tcp-operator-dev is haproxy-tcp-operator for
// development on one machine: its run command starts a local cluster
// (a kube-apiserver and etcd on loopback, the samples, a kubelet stand-in
// that runs HAProxy instances as local processes, demo backends) when no
// cluster is configured or with --local. make run builds and runs it. The
// local cluster links envtest and test helpers, which is why the shipped
// haproxy-tcp-operator leaves it out.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/cli"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/localcluster"
)

func main() {
	cli.Program = "haproxy-tcp-operator-dev"
	cli.EnableLocalCluster(func(ctx context.Context, o cli.LocalClusterOptions) (cli.LocalCluster, error) {
		l, err := localcluster.Start(ctx, localcluster.Options{Assets: o.Assets, HAProxy: o.HAProxy, Stdout: o.Stdout, Log: o.Log})
		if err != nil {
			return nil, err
		}
		return l, nil
	})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
