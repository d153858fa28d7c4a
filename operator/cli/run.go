package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/controller"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/metricsauth"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

const (
	runSummary      = "run the operator against the configured cluster"
	runLocalSummary = "run the operator; with no cluster configured, in a local one"
)

func init() {
	Commands["run"] = Command{Summary: runSummary, Run: Run}
	DefaultCommand = "run"
}

// LocalCluster is a Kubernetes cluster on this machine that run starts
// for itself.
type LocalCluster interface {
	// Config reaches its API server as an administrator.
	Config() *rest.Config
	// Announce prints where to reach what runs in it, and the operator's
	// metrics, once it serves; it returns then, or when ctx ends.
	Announce(ctx context.Context, metricsURL string)
	// Stop ends everything the cluster started.
	Stop() error
}

// LocalClusterOptions are the run flags a local cluster takes.
type LocalClusterOptions struct {
	// Assets is the folder with kube-apiserver, etcd and kubectl.
	Assets string
	// HAProxy is the haproxy binary the instances run.
	HAProxy string
	Stdout  io.Writer
	Log     logr.Logger
}

// startLocalCluster is nil in the shipped binary, which so links neither
// envtest nor the kubelet stand-in; EnableLocalCluster sets it.
var startLocalCluster func(context.Context, LocalClusterOptions) (LocalCluster, error)

// EnableLocalCluster makes run start a local cluster with start when no
// cluster is configured or --local asks for one, and makes console logs
// without error stack traces the default. The development build
// (haproxy-tcp-operator-dev, which make run uses) calls it before Main.
func EnableLocalCluster(start func(context.Context, LocalClusterOptions) (LocalCluster, error)) {
	startLocalCluster = start
	devLogging = true
	c := Commands["run"]
	c.Summary = runLocalSummary
	Commands["run"] = c
}

// DefaultInstanceImage is the HAProxy instance image this release runs.
var DefaultInstanceImage = "haproxy-tcp-operator/haproxy:v0.1.0"

// defaultGCPercent lets the heap grow by half its live size between
// collections, not Go's default of all of it: the operator's live heap is
// mostly informer caches and the last translation, which stay, so the
// default's headroom is memory held for nothing (at 1,000 mappings 13 MB
// live made a 26 MB heap goal).
const defaultGCPercent = 50

// gcPercentToSet says which GC percent run sets, if any: the flag's when
// it was given, else the operator's default unless $GOGC chose one, which
// Go has already applied. The flag takes no value below 1: Go reads a
// negative one as never collecting, which no operator should run with.
func gcPercentToSet(flagGiven bool, flagValue int, gogc string) (int, bool, error) {
	if flagGiven && flagValue < 1 {
		return 0, false, fmt.Errorf("--gc-percent: %d is not a percentage above 0", flagValue)
	}
	if flagGiven || gogc == "" {
		return flagValue, true, nil
	}
	return 0, false, nil
}

// clusterCheckTimeout bounds the first request to a configured cluster,
// so a cluster that is down fails the command in seconds.
const clusterCheckTimeout = 5 * time.Second

// Run starts the operator against the configured cluster (--kubeconfig,
// $KUBECONFIG, the in-cluster service account or ~/.kube/config), or
// against a local control plane it starts when none is configured or
// --local asks for one. A configured cluster that does not answer is an
// error: the operator never falls back to a local cluster silently.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, the in-cluster service account, ~/.kube/config)")
	metricsAddr := fs.String("metrics-bind-address", ":8443", "address of the Prometheus metrics endpoint, served over HTTPS to clients the API server authenticates and authorizes for get /metrics (0 disables; with a local cluster 127.0.0.1:8443, or a free port when taken)")
	metricsCertDir := fs.String("metrics-cert-dir", "", "folder with the metrics endpoint's serving certificate tls.crt and key tls.key, reloaded when they change (default: a self-signed certificate made at start)")
	probeAddr := fs.String("health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	pprofAddr := fs.String("pprof-bind-address", "", "address of Go's /debug/pprof profiles, for measuring the operator (empty disables; bind it to loopback)")
	gcPercent := fs.Int("gc-percent", defaultGCPercent, "heap growth, in percent of the live heap, before Go collects garbage (Go's GOGC, which wins when set and this flag is not); lower saves memory and costs CPU")
	reloadInterval := fs.Duration("reload-interval", 0, "while changes that need a reload keep coming, the least time between reloads: one within this time of the last reload waits until the changes stop for this time, at most 8 times this and 10 s (or this, when longer than 10 s); the last reload's own duration counts when longer (0: only that)")
	leaderElect := fs.Bool("leader-elect", false, "elect a leader, so only one replica reconciles")
	leaderNS := fs.String("leader-election-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the leader election Lease (default: $POD_NAMESPACE)")
	image := fs.String("instance-image", DefaultInstanceImage, "default HAProxy instance image")
	watchNS := fs.String("watch-namespace", os.Getenv(WatchNamespaceEnv), "namespaces to serve, comma-separated; empty for all (default: $"+WatchNamespaceEnv+"); with namespaces the operator lists and watches nothing cluster-scoped, so Roles in them suffice")
	local := new(bool)
	var localOpts LocalClusterOptions
	if startLocalCluster != nil {
		local = fs.Bool("local", false, "start a local cluster on loopback with the samples, even when a cluster is configured")
		fs.StringVar(&localOpts.Assets, "k8s-assets", "bin/k8s", "folder with kube-apiserver, etcd and kubectl for the local cluster")
		fs.StringVar(&localOpts.HAProxy, "haproxy", "haproxy", "haproxy binary for local instances")
	}
	summary := Commands["run"].Summary
	if err := parseFlags(fs, args, summary, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		commandHelp(stderr, fs, summary)
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	logger := ctrl.LoggerFrom(ctx)
	percent, setGC, err := gcPercentToSet(set["gc-percent"], *gcPercent, os.Getenv("GOGC"))
	if err != nil {
		return usageError{err}
	}
	if setGC {
		debug.SetGCPercent(percent)
	}
	if *reloadInterval < 0 {
		return usageError{fmt.Errorf("--reload-interval: %s is negative", *reloadInterval)}
	}
	if set["local"] && set["kubeconfig"] {
		return usageError{errors.New("--local and --kubeconfig exclude each other")}
	}
	namespaces, err := parseWatchNamespaces(*watchNS)
	if err != nil {
		return usageError{fmt.Errorf("--watch-namespace (or $%s): %w", WatchNamespaceEnv, err)}
	}

	var cfg *rest.Config
	if !*local {
		found, err := findCluster(*kubeconfig)
		if err != nil {
			return err
		}
		if found != nil {
			logger.Info("Connecting to the configured cluster", "server", found.config.Host, "from", found.from)
			if err := checkCluster(ctx, found); err != nil {
				return err
			}
			cfg = found.config
		} else if startLocalCluster == nil {
			return errors.New("no cluster configured: give --kubeconfig, set $KUBECONFIG, write ~/.kube/config or run in a Pod " +
				"(the development build haproxy-tcp-operator-dev, which make run builds, starts a local cluster instead)")
		} else {
			logger.Info("No cluster configured (no --kubeconfig, no file named by $KUBECONFIG, not in a Pod, no ~/.kube/config): starting a local cluster")
		}
	} else {
		logger.Info("Starting a local cluster (--local)")
	}
	var lc LocalCluster
	if cfg == nil {
		localOpts.Stdout, localOpts.Log = stdout, logger
		var err error
		lc, err = startLocalCluster(ctx, localOpts)
		if err != nil {
			return fmt.Errorf("start a local cluster: %w", err)
		}
		defer func() {
			if err := lc.Stop(); err != nil {
				logger.Error(err, "Stop the local cluster")
			}
		}()
		cfg = lc.Config()
		if !set["metrics-bind-address"] {
			*metricsAddr = localAddress("127.0.0.1:8443")
		}
		if !set["health-probe-bind-address"] {
			*probeAddr = "127.0.0.1:0"
		}
		if *leaderNS == "" {
			*leaderNS = "default"
		}
	}

	metricsOpts, err := metricsOptions(*metricsAddr, *metricsCertDir)
	if err != nil {
		return err
	}
	cacheOpts := managerCacheOptions()
	var newCache cache.NewCacheFunc
	if namespaces != nil {
		cacheOpts, newCache = scopedCacheOptions(cacheOpts, namespaces)
		logger.Info("Serving only some namespaces", "namespaces", namespaces)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  snapshot.Scheme(),
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  *probeAddr,
		PprofBindAddress:        *pprofAddr,
		LeaderElection:          *leaderElect,
		LeaderElectionID:        "haproxy-tcp-operator.haproxy-operator.io",
		LeaderElectionNamespace: *leaderNS,
		// A restarted or upgraded operator takes over at once.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cacheOpts,
		NewCache:                      newCache,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if err := (&controller.HAProxyReconciler{
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		Recorder:       mgr.GetEventRecorder("haproxy-tcp-operator"),
		InstanceImage:  *image,
		ReloadInterval: *reloadInterval,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up controller: %w", err)
	}
	if err := (&controller.ParentsReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the TCPMapping parents controller: %w", err)
	}
	if namespaces != nil {
		if err := (&controller.ScopeReconciler{Client: mgr.GetClient(), Namespaces: namespaces}).SetupWithManager(mgr); err != nil {
			return fmt.Errorf("set up the namespace scope controller: %w", err)
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	metricsURL := metricsURL(*metricsAddr)
	if lc != nil {
		go lc.Announce(ctx, metricsURL)
	}
	logger.Info("Starting the operator", "version", Version(), "server", cfg.Host, "metrics", metricsURL)
	return mgr.Start(ctx)
}

// cluster is a cluster this process is configured for.
type cluster struct {
	config *rest.Config
	// from says where the configuration came from, for messages.
	from string
}

// findCluster returns the cluster this process is configured for, in
// controller-runtime's order: --kubeconfig; the in-cluster service account
// when $KUBECONFIG is unset; the files $KUBECONFIG names, or
// ~/.kube/config. It returns nil when none is configured: no flag, no
// existing kubeconfig file, not in a Pod. A configuration that exists but
// cannot be loaded is an error, not "none".
func findCluster(kubeconfig string) (*cluster, error) {
	if kubeconfig != "" {
		return loadKubeconfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}, "--kubeconfig "+kubeconfig)
	}
	if os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in a Pod (KUBERNETES_SERVICE_HOST is set), but the in-cluster configuration is unusable: %w", err)
		}
		return &cluster{config: cfg, from: "the in-cluster service account"}, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	var files []string
	for _, f := range rules.GetLoadingPrecedence() {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return nil, nil
	}
	return loadKubeconfig(rules, "kubeconfig "+strings.Join(files, string(os.PathListSeparator)))
}

func loadKubeconfig(rules *clientcmd.ClientConfigLoadingRules, from string) (*cluster, error) {
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	if raw, err := cc.RawConfig(); err == nil && raw.CurrentContext != "" {
		from += ", context " + raw.CurrentContext
	}
	// As controller-runtime's config loader: no client-side rate limit
	// unless the kubeconfig sets one.
	if cfg.QPS == 0 {
		cfg.QPS = -1
	}
	return &cluster{config: cfg, from: from}, nil
}

// checkCluster asks the API server for its version within
// clusterCheckTimeout, so a configured cluster that is down or unreachable
// fails at once with its address instead of after minutes of retries.
func checkCluster(ctx context.Context, c *cluster) error {
	cfg := rest.CopyConfig(c.config)
	cfg.Timeout = clusterCheckTimeout
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("cluster %s (%s): %w", c.config.Host, c.from, err)
	}
	ctx, cancel := context.WithTimeout(ctx, clusterCheckTimeout)
	defer cancel()
	if err := dc.RESTClient().Get().AbsPath("/version").Do(ctx).Error(); err != nil {
		return fmt.Errorf("cluster %s (%s) does not answer: %w; start a local cluster instead with --local", c.config.Host, c.from, err)
	}
	return nil
}

// localAddress returns addr when it can be bound, or a free port on the
// same host: a local cluster must not fail because something else holds
// the usual port.
func localAddress(addr string) string {
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		return addr
	}
	host, _, _ := net.SplitHostPort(addr)
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return addr
	}
	defer l.Close()
	return l.Addr().String()
}

// metricsOptions serves the metrics endpoint on addr over HTTPS, to
// clients whose bearer token the API server accepts (TokenReview) and who
// may get /metrics (SubjectAccessReview): the metrics name every
// namespace and mapping, so they are not for anyone who reaches the port.
// certDir holds the serving certificate; without it controller-runtime
// makes a self-signed one, which scrapers accept with certificate
// verification off, as Prometheus does for kube-controller-manager.
func metricsOptions(addr, certDir string) (metricsserver.Options, error) {
	o := metricsserver.Options{
		BindAddress:    addr,
		SecureServing:  true,
		FilterProvider: metricsauth.FilterProvider,
		// HTTP/1.1 only: HTTP/2's stream handling has been the way into
		// denial-of-service bugs (CVE-2023-44487, CVE-2023-39325), and a
		// scrape gains nothing from it.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	}
	if certDir != "" {
		// controller-runtime falls back to a self-signed certificate when
		// the files are missing; a folder given on purpose must hold them.
		for _, f := range []string{"tls.crt", "tls.key"} {
			if _, err := os.Stat(filepath.Join(certDir, f)); err != nil {
				return o, fmt.Errorf("--metrics-cert-dir %s: %w", certDir, err)
			}
		}
		o.CertDir, o.CertName, o.KeyName = certDir, "tls.crt", "tls.key"
	}
	return o, nil
}

// metricsURL is where the metrics endpoint bound to addr answers, or ""
// when metrics are off.
func metricsURL(addr string) string {
	if addr == "0" || addr == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "https://" + net.JoinHostPort(host, port) + "/metrics"
}
