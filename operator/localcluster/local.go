package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/controller"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

// Options configure a local cluster.
type Options struct {
	// Assets is the folder with kube-apiserver, etcd and kubectl (bin/k8s).
	Assets string
	// HAProxy is the haproxy binary the instances run.
	HAProxy string
	// Stdout receives what a user needs: the kubeconfig, then the
	// addresses of the samples.
	Stdout io.Writer
	Log    logr.Logger
}

// Local is a control plane on loopback with the samples of
// deploy/samples/, a kubelet stand-in that runs their HAProxy as local
// processes (this binary's dataplane command beside haproxy), and demo
// backends behind the samples' Services: what `run` uses when no cluster
// is configured.
type Local struct {
	cp       *ControlPlane
	client   client.Client
	host     *TestHost
	cancel   context.CancelFunc
	done     chan struct{}
	backends []*Backend
	stdout   io.Writer
}

// Start starts a local cluster. Stop ends it.
func Start(ctx context.Context, o Options) (*Local, error) {
	cp, err := StartControlPlane(o.Assets)
	if err != nil {
		return nil, fmt.Errorf("%w (make test-deps builds bin/k8s)", err)
	}
	l := &Local{cp: cp, stdout: o.Stdout}
	if err := l.start(ctx, o); err != nil {
		l.Stop()
		return nil, err
	}
	return l, nil
}

func (l *Local) start(ctx context.Context, o Options) error {
	var err error
	l.client, err = client.New(l.cp.Config, client.Options{Scheme: snapshot.Scheme()})
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary for the instances' dataplane: %w", err)
	}
	dir, err := os.MkdirTemp("", "tcpm-pods-")
	if err != nil {
		return err
	}
	kctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.done = cancel, make(chan struct{})
	k := &Kubelet{
		Client: l.client, Binary: self, HAProxy: o.HAProxy, Dir: dir,
		FirstIP: net.ParseIP("127.0.0.10"), Log: o.Log.WithName("local-kubelet"),
	}
	go func() { k.Run(kctx); os.RemoveAll(dir); close(l.done) }()

	if err := ApplySamples(ctx, l.client); err != nil {
		return err
	}
	l.host, err = NewTestHost()
	if err != nil {
		return fmt.Errorf("the demo backends need a test host (run as root): %w", err)
	}
	type demo struct{ service, port, tlsName string }
	for _, d := range []demo{{"qotm", "tcp", ""}, {"qotm", "tls", "qotm"}, {"qotm1", "tls", "qotm1"}, {"qotm2", "tls", "qotm2"}} {
		b, err := StartBackend(d.service, l.host, d.tlsName)
		if err != nil {
			return err
		}
		l.backends = append(l.backends, b)
		if err := PublishEndpoints(ctx, l.client, "default", d.service, d.port, b); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.Stdout, "Local cluster: kubectl --kubeconfig %s get tcpmappings,haproxies -A\n", l.cp.Kubeconfig)
	return nil
}

// Config reaches the local API server as an administrator.
func (l *Local) Config() *rest.Config { return l.cp.Config }

// Announce prints where the stats page, the sample ports and the
// operator's metrics are once the sample HAProxy is programmed, then
// returns; it returns early when ctx ends.
func (l *Local) Announce(ctx context.Context, metricsURL string) {
	c, stdout := l.client, l.stdout
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
				fmt.Fprintf(stdout, "  stats page  http://%s/stats (user admin; password: kubectl get secret -n %s haproxy-%s-stats -o jsonpath='{.data.password}' | base64 -d)\n",
					net.JoinHostPort(ip, "8404"), hap.Namespace, hap.Name)
				fmt.Fprintf(stdout, "  metrics     http://%s/metrics\n", net.JoinHostPort(ip, "8404"))
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

// Stop ends the instances, the backends and the control plane, and
// removes their files.
func (l *Local) Stop() error {
	if l.cancel != nil {
		l.cancel()
		<-l.done
	}
	for _, b := range l.backends {
		_ = b.Close()
	}
	var errs []error
	if l.host != nil {
		if err := l.host.Close(); err != nil {
			errs = append(errs, fmt.Errorf("remove the test host: %w", err))
		}
	}
	if err := l.cp.Stop(); err != nil && !errors.Is(err, context.Canceled) {
		errs = append(errs, fmt.Errorf("stop the control plane: %w", err))
	}
	return errors.Join(errs...)
}
