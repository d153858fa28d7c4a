package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/controller"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/localcluster"
)

// bed is what the harness runs beside the API server: the operator binary,
// a kubelet stand-in and a test host for backends.
var bed struct {
	binary             string
	operatorArgs       []string
	metricsAddr        string
	operatorEnv        []string
	operatorKubeconfig string
	operator           *operatorProcess
	opLog              string
	kubelet            *localcluster.Kubelet
	host               *localcluster.TestHost
}

// startOperator builds the binary, starts the kubelet stand-in, a test
// host for backends and the operator process.
func startOperator(cfg *rest.Config) (func(), error) {
	dir, err := os.MkdirTemp("", "tcpm-e2e-bed-")
	if err != nil {
		return nil, err
	}
	bed.binary = filepath.Join(dir, "haproxy-tcp-operator")
	build := exec.Command("go", "build", "-o", bed.binary, "../operator/cmd/haproxy-tcp-operator")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the operator: %v\n%s", err, out)
	}
	bed.host, err = localcluster.NewTestHost()
	if err != nil {
		return nil, err
	}
	kc, err := client.New(cfg, client.Options{Scheme: cluster.client.Scheme()})
	if err != nil {
		return nil, err
	}
	haproxyBin := "/usr/sbin/haproxy"
	if p := os.Getenv("HAPROXY_BIN"); p != "" {
		haproxyBin = p
	}
	bed.kubelet = &localcluster.Kubelet{
		Client: kc, Binary: bed.binary, HAProxy: haproxyBin, Dir: filepath.Join(dir, "pods"),
		// A loopback block of this run's own, so that test runs on one
		// machine never share instance addresses.
		FirstIP: net.IPv4(127, byte(1+rand.IntN(250)), byte(rand.IntN(250)), 20), Log: logr.Discard(),
	}
	kctx, stopKubelet := context.WithCancel(context.Background())
	kubeletDone := make(chan struct{})
	go func() { bed.kubelet.Run(kctx); close(kubeletDone) }()

	if err := installOperator(dir); err != nil {
		stopKubelet()
		return nil, err
	}
	if err := runOperator(); err != nil {
		stopKubelet()
		return nil, err
	}
	return func() {
		stopOperatorProcess()
		stopKubelet()
		<-kubeletDone
		_ = bed.host.Close()
		os.RemoveAll(dir)
	}, nil
}

// The operator as deploy/default installs it.
const (
	operatorNamespace      = "haproxy-tcp-operator-system"
	operatorServiceAccount = "haproxy-tcp-operator"
)

// installOperator applies deploy/default with kubectl, as a user would,
// and prepares a kubeconfig that acts as the operator's ServiceAccount, so
// the operator runs with exactly the RBAC shipped.
func installOperator(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, errOut, err := kubectl(ctx, "", "apply", "-k", "../deploy/default"); err != nil {
		return fmt.Errorf("kubectl apply -k deploy/default: %v\n%s%s", err, out, errOut)
	}
	var dep appsv1.Deployment
	if err := cluster.client.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "haproxy-tcp-operator"}, &dep); err != nil {
		return fmt.Errorf("the operator Deployment deploy/default installs: %w", err)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	// The Deployment's flags, with the metrics and probe servers on ports
	// of this run's own: in a Pod they have the Pod's address to
	// themselves, here they share the machine.
	metrics, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	probes, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	bed.metricsAddr = metrics
	bed.operatorArgs = append(append([]string{}, c.Args...), "--metrics-bind-address="+metrics, "--health-probe-bind-address="+probes)
	// For measuring a benchmark run, e.g.
	// E2E_OPERATOR_ARGS="--pprof-bind-address=127.0.0.1:6060 --zap-log-level=debug".
	bed.operatorArgs = append(bed.operatorArgs, strings.Fields(os.Getenv("E2E_OPERATOR_ARGS"))...)
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
			v = dep.Namespace
		}
		bed.operatorEnv = append(bed.operatorEnv, e.Name+"="+v)
	}
	if dep.Spec.Template.Spec.ServiceAccountName != operatorServiceAccount {
		return fmt.Errorf("the operator runs as %q, want %q", dep.Spec.Template.Spec.ServiceAccountName, operatorServiceAccount)
	}
	kc, err := clientcmd.LoadFromFile(cluster.kubeconfig)
	if err != nil {
		return err
	}
	for _, ai := range kc.AuthInfos {
		ai.Impersonate = "system:serviceaccount:" + operatorNamespace + ":" + operatorServiceAccount
		ai.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + operatorNamespace, "system:authenticated"}
	}
	bed.operatorKubeconfig = filepath.Join(dir, "operator.kubeconfig")
	return clientcmd.WriteToFile(*kc, bed.operatorKubeconfig)
}

// freeLoopbackPort returns a 127.0.0.1 address whose port is free now.
func freeLoopbackPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// operatorProcess is one run of the operator binary; like a kubelet, the
// harness starts it again when it exits on its own (a lost leader
// election on a loaded machine, say).
type operatorProcess struct {
	mu       sync.Mutex
	cmd      *exec.Cmd
	stopping bool
	done     chan struct{}
}

func runOperator() error {
	p := &operatorProcess{done: make(chan struct{})}
	if err := p.start(); err != nil {
		return err
	}
	bed.operator = p
	go p.supervise()
	return nil
}

func (p *operatorProcess) start() error {
	logDir := filepath.Dir(bed.binary)
	if d := os.Getenv("E2E_OPERATOR_LOG_DIR"); d != "" {
		// Kept after the run, unlike the bed's own folder.
		logDir = d
	}
	bed.opLog = filepath.Join(logDir, fmt.Sprintf("operator-%d.log", time.Now().UnixNano()))
	logFile, err := os.Create(bed.opLog)
	if err != nil {
		return err
	}
	// The binary and flags of the Deployment; out of the cluster it needs
	// a kubeconfig where a Pod has its ServiceAccount token.
	cmd := exec.Command(bed.binary, append(append([]string{}, bed.operatorArgs...), "--kubeconfig", bed.operatorKubeconfig)...)
	cmd.Env = append(os.Environ(), bed.operatorEnv...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start the operator: %w", err)
	}
	p.mu.Lock()
	p.cmd = cmd
	p.mu.Unlock()
	return nil
}

func (p *operatorProcess) supervise() {
	defer close(p.done)
	for {
		p.mu.Lock()
		cmd := p.cmd
		p.mu.Unlock()
		_ = cmd.Wait()
		p.mu.Lock()
		stopping := p.stopping
		p.mu.Unlock()
		if stopping {
			return
		}
		fmt.Fprintf(os.Stderr, "e2e: the operator exited (%v); starting it again\n", cmd.ProcessState)
		time.Sleep(time.Second)
		if err := p.start(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			return
		}
	}
}

func stopOperatorProcess() {
	p := bed.operator
	if p == nil {
		return
	}
	p.mu.Lock()
	p.stopping = true
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(os.Interrupt)
	}
	<-p.done
	bed.operator = nil
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = cond(); last == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done within %s: %v", what, timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func create(t testing.TB, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := cluster.client.Create(ctxFor(t), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// newNamespace creates a namespace of its own for one test.
func newNamespace(t testing.TB, labels map[string]string) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.Trim(name, "-") + "-" + strconv.FormatInt(time.Now().UnixNano()%100000, 10)
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
	return name
}

// newHAProxy creates an HAProxy and waits for its ready instances; it
// returns their addresses.
func newHAProxy(t testing.TB, ns string, replicas int32, mutate ...func(*v1alpha1.HAProxy)) []string {
	t.Helper()
	hap := &v1alpha1.HAProxy{
		ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ns},
		Spec:       v1alpha1.HAProxySpec{Replicas: ptr.To(replicas), ServiceType: corev1.ServiceTypeClusterIP},
	}
	for _, m := range mutate {
		m(hap)
	}
	create(t, hap)
	return instanceIPs(t, ns, "edge", int(replicas))
}

func instanceIPs(t testing.TB, ns, name string, want int) []string {
	t.Helper()
	var ips []string
	eventually(t, time.Minute, "instances ready", func() error {
		var pods corev1.PodList
		if err := cluster.client.List(ctxFor(t), &pods, client.InNamespace(ns), client.MatchingLabels{controller.LabelHAProxy: name}); err != nil {
			return err
		}
		ips = nil
		for _, p := range pods.Items {
			if p.Status.PodIP != "" && p.DeletionTimestamp.IsZero() {
				ips = append(ips, p.Status.PodIP)
			}
		}
		if len(ips) != want {
			return fmt.Errorf("%d of %d instances ready", len(ips), want)
		}
		return nil
	})
	return ips
}

// backend starts a backend on the test host; tlsName makes it a TLS one.
func backend(t testing.TB, name, tlsName string) *localcluster.Backend {
	t.Helper()
	b, err := localcluster.StartBackend(name, bed.host, tlsName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// service creates a Service with the given named ports (name=port).
func service(t testing.TB, ns, name string, ports map[string]int32) {
	t.Helper()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	for pn, p := range ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: pn, Port: p, TargetPort: intstr.FromInt32(p)})
	}
	create(t, svc)
}

// serviceWithBackend creates Service name (port 80) with one ready
// endpoint: a backend on the test host that greets with name.
func serviceWithBackend(t testing.TB, ns, name string) {
	t.Helper()
	service(t, ns, name, map[string]int32{"": 80})
	publish(t, ns, name, "", backend(t, name, ""))
}

func publish(t testing.TB, ns, svc, port string, backends ...*localcluster.Backend) {
	t.Helper()
	if err := localcluster.PublishEndpoints(ctxFor(t), cluster.client, ns, svc, port, backends...); err != nil {
		t.Fatal(err)
	}
}

func mapping(ns, name string, spec v1alpha1.TCPMappingSpec) *v1alpha1.TCPMapping {
	return &v1alpha1.TCPMapping{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: spec}
}

// condition waits until the mapping's condition has the given status and
// returns it.
func condition(t testing.TB, ns, name, typ string, status metav1.ConditionStatus) metav1.Condition {
	t.Helper()
	return conditionWithReason(t, ns, name, typ, status, "")
}

// conditionWithReason waits until the mapping's condition has the given
// status and, unless reason is empty, that reason: a condition can pass
// through another reason on the way (Programmed=False Pending before the
// instance is found unreachable).
func conditionWithReason(t testing.TB, ns, name, typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	eventually(t, time.Minute, fmt.Sprintf("TCPMapping %s/%s %s=%s %s", ns, name, typ, status, reason), func() error {
		var m v1alpha1.TCPMapping
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: name}, &m); err != nil {
			return err
		}
		c := meta.FindStatusCondition(m.Status.Conditions, typ)
		if c == nil || c.Status != status || c.ObservedGeneration != m.Generation || (reason != "" && c.Reason != reason) {
			return fmt.Errorf("conditions %+v", m.Status.Conditions)
		}
		got = *c
		return nil
	})
	return got
}

func addr(ip string, port int32) string { return net.JoinHostPort(ip, strconv.Itoa(int(port))) }

// greeting reads the first line a backend sends through HAProxy; with sni
// the connection is TLS and the served certificate's subject is returned.
func greeting(address, sni string) (name, subject string, err error) {
	conn, err := net.DialTimeout("tcp", address, 2*time.Second)
	if err != nil {
		return "", "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	var rw net.Conn = conn
	if sni != "" {
		tc := tls.Client(conn, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			return "", "", err
		}
		subject = tc.ConnectionState().PeerCertificates[0].Subject.CommonName
		rw = tc
	}
	line, err := bufio.NewReader(rw).ReadString('\n')
	return strings.TrimSpace(line), subject, err
}

// routesTo waits until a connection through address reaches backend want.
func routesTo(t testing.TB, address, sni, want string) string {
	t.Helper()
	var subject string
	eventually(t, 30*time.Second, fmt.Sprintf("%s (SNI %q) reaches %s", address, sni, want), func() error {
		got, sub, err := greeting(address, sni)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("reached %q", got)
		}
		subject = sub
		return nil
	})
	return subject
}

// assertEchoes checks that an established connection still relays both
// ways.
func assertEchoes(t testing.TB, conn net.Conn, what string) {
	t.Helper()
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	echo := make([]byte, 5)
	if _, err := io.ReadFull(conn, echo); err != nil || string(echo) != "ping\n" {
		t.Errorf("%s: echo %q, %v", what, echo, err)
	}
}
