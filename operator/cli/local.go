package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/controller"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/localcluster"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

type localCluster struct {
	cp       *localcluster.ControlPlane
	host     *localcluster.TestHost
	cancel   context.CancelFunc
	done     chan struct{}
	backends []*localcluster.Backend
}

// startLocal starts a control plane, plays kubelet, and creates the
// samples with demo backends behind their Services.
func startLocal(ctx context.Context, assets, haproxyBin string, stdout io.Writer) (*localCluster, error) {
	cp, err := localcluster.StartControlPlane(assets)
	if err != nil {
		return nil, fmt.Errorf("%w (make test builds bin/k8s)", err)
	}
	lc := &localCluster{cp: cp, done: make(chan struct{})}
	c, err := client.New(cp.Config, client.Options{Scheme: snapshot.Scheme()})
	if err != nil {
		lc.stop()
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		lc.stop()
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tcpm-pods-")
	if err != nil {
		lc.stop()
		return nil, err
	}
	kctx, cancel := context.WithCancel(context.Background())
	lc.cancel = cancel
	k := &localcluster.Kubelet{
		Client: c, Binary: self, HAProxy: haproxyBin, Dir: dir,
		FirstIP: net.ParseIP("127.0.0.10"), Log: ctrl.Log.WithName("local-kubelet"),
	}
	go func() { k.Run(kctx); os.RemoveAll(dir); close(lc.done) }()

	if err := localcluster.ApplySamples(ctx, c); err != nil {
		lc.stop()
		return nil, err
	}
	lc.host, err = localcluster.NewTestHost()
	if err != nil {
		lc.stop()
		return nil, fmt.Errorf("the demo backends need a test host (run as root): %w", err)
	}
	type demo struct{ service, port, tlsName string }
	for _, d := range []demo{{"qotm", "tcp", ""}, {"qotm", "tls", "qotm"}, {"qotm1", "tls", "qotm1"}, {"qotm2", "tls", "qotm2"}} {
		b, err := localcluster.StartBackend(d.service, lc.host, d.tlsName)
		if err != nil {
			lc.stop()
			return nil, err
		}
		lc.backends = append(lc.backends, b)
		if err := localcluster.PublishEndpoints(ctx, c, "default", d.service, d.port, b); err != nil {
			lc.stop()
			return nil, err
		}
	}
	fmt.Fprintf(stdout, "Local cluster: kubectl --kubeconfig %s get tcpmappings,haproxies -A\n", cp.Kubeconfig)
	return lc, nil
}

// announce prints where the stats page and the sample ports are once the
// sample HAProxy is programmed.
func (lc *localCluster) announce(ctx context.Context, c client.Client, metricsURL string, stdout io.Writer) {
	for ctx.Err() == nil {
		var hap v1alpha1.HAProxy
		var pods corev1.PodList
		if c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "haproxy"}, &hap) == nil &&
			hap.Status.ProgrammedReplicas > 0 &&
			c.List(ctx, &pods, client.InNamespace("default"), client.MatchingLabels{controller.LabelHAProxy: "haproxy"}) == nil {
			for _, p := range pods.Items {
				if p.Status.PodIP == "" {
					continue
				}
				ip := p.Status.PodIP
				fmt.Fprintf(stdout, "HAProxy %s is programmed:\n", p.Name)
				fmt.Fprintf(stdout, "  stats page  http://%s/stats   metrics http://%s/metrics\n",
					net.JoinHostPort(ip, "8404"), net.JoinHostPort(ip, "8404"))
				var mappings v1alpha1.TCPMappingList
				if c.List(ctx, &mappings, client.InNamespace("default")) == nil {
					for _, m := range mappings.Items {
						fmt.Fprintf(stdout, "  %-22s %s  (service %s)\n", m.Name, net.JoinHostPort(ip, strconv.Itoa(int(m.Spec.Port))), m.Spec.Service)
					}
				}
			}
			if metricsURL != "" {
				fmt.Fprintf(stdout, "Operator metrics: %s\n", metricsURL)
			}
			fmt.Fprintln(stdout, "Press Ctrl-C to stop.")
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (lc *localCluster) stop() {
	if lc.cancel != nil {
		lc.cancel()
		<-lc.done
	}
	for _, b := range lc.backends {
		_ = b.Close()
	}
	if lc.host != nil {
		_ = lc.host.Close()
	}
	if err := lc.cp.Stop(); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "stop local cluster:", err)
	}
}
