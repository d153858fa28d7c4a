package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/controller"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/localcluster"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

func init() {
	Commands["run"] = Command{Summary: "run the operator (default); with no cluster reachable, in a local one", Run: Run}
	DefaultCommand = "run"
}

// DefaultInstanceImage is the HAProxy instance image this release runs.
var DefaultInstanceImage = "haproxy-tcp-operator/haproxy:v0.1.0"

// Run starts the operator against the current kubeconfig, or against a
// local control plane it starts when no cluster answers.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: in-cluster, $KUBECONFIG or ~/.kube/config)")
	metricsAddr := fs.String("metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables)")
	probeAddr := fs.String("health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	leaderElect := fs.Bool("leader-elect", false, "elect a leader, so only one replica reconciles")
	leaderNS := fs.String("leader-election-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the leader election Lease (default: $POD_NAMESPACE)")
	image := fs.String("instance-image", DefaultInstanceImage, "default HAProxy instance image")
	local := fs.Bool("local", false, "start a local cluster even when one is reachable")
	assets := fs.String("k8s-assets", "bin/k8s", "folder with kube-apiserver, etcd and kubectl for the local cluster")
	haproxyBin := fs.String("haproxy", "haproxy", "haproxy binary for local instances")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := zap.New(zap.WriteTo(stderr))
	ctrl.SetLogger(logger)

	var cfg *rest.Config
	if !*local {
		if *kubeconfig != "" {
			os.Setenv("KUBECONFIG", *kubeconfig)
		}
		c, err := config.GetConfig()
		if err == nil && reachable(c) {
			cfg = c
		} else {
			logger.Info("No cluster reachable; starting a local one", "reason", fmt.Sprint(err))
		}
	}
	var lc *localCluster
	if cfg == nil {
		var err error
		lc, err = startLocal(ctx, *assets, *haproxyBin, stdout)
		if err != nil {
			return err
		}
		defer lc.stop()
		cfg = lc.cp.Config
		*metricsAddr, *probeAddr = "127.0.0.1:0", "127.0.0.1:0"
		if *leaderNS == "" {
			*leaderNS = "default"
		}
	}

	managed := labels.SelectorFromSet(labels.Set{controller.LabelManagedBy: controller.ManagedBy})
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  snapshot.Scheme(),
		Metrics:                 metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress:  *probeAddr,
		LeaderElection:          *leaderElect,
		LeaderElectionID:        "haproxy-tcp-operator.haproxy-operator.io",
		LeaderElectionNamespace: *leaderNS,
		// A restarted or upgraded operator takes over at once.
		LeaderElectionReleaseOnCancel: true,
		// Cache only the Pods, Deployments and PDBs the operator owns.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}:                   {Label: managed},
			&appsv1.Deployment{}:            {Label: managed},
			&policyv1.PodDisruptionBudget{}: {Label: managed},
		}},
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if err := (&controller.HAProxyReconciler{
		Client:        mgr.GetClient(),
		APIReader:     mgr.GetAPIReader(),
		Recorder:      mgr.GetEventRecorder("haproxy-tcp-operator"),
		InstanceImage: *image,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up controller: %w", err)
	}
	if err := (&controller.ParentsReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the TCPMapping parents controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	if lc != nil {
		go lc.announce(ctx, mgr.GetClient(), stdout)
	}
	logger.Info("Starting the operator")
	return mgr.Start(ctx)
}

// reachable asks the API server for its version, briefly.
func reachable(cfg *rest.Config) bool {
	c := rest.CopyConfig(cfg)
	c.Timeout = 3 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(c)
	if err != nil {
		return false
	}
	_, err = dc.ServerVersion()
	return err == nil
}

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
func (lc *localCluster) announce(ctx context.Context, c client.Client, stdout io.Writer) {
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
