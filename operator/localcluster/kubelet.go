// Package localcluster runs a Kubernetes control plane on loopback (a real
// kube-apiserver and etcd through envtest) and plays kubelet for the
// operator's HAProxy Deployments: it creates their Pods as a ReplicaSet
// would and runs each Pod as local haproxy + dataplane processes on its own
// 127.0.0.x address. The run command of haproxy-tcp-operator-dev (the
// development build) uses it when no cluster is configured, and the e2e
// tests use it as their test bed; the shipped binary does not link it.
package localcluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Kubelet runs the Pods of HAProxy Deployments as local processes.
type Kubelet struct {
	Client client.Client
	// Binary is the haproxy-tcp-operator binary the Pods run.
	Binary string
	// HAProxy is the haproxy binary.
	HAProxy string
	// Dir holds each Pod's directories.
	Dir string
	// FirstIP is the address of the first Pod, e.g. 127.0.0.10; the next
	// Pods take the following addresses.
	FirstIP net.IP
	Log     logr.Logger

	mu     sync.Mutex
	pods   map[string]*process // namespace/name
	nextIP int
}

type process struct {
	cmd    *exec.Cmd
	ip     string
	done   chan struct{}
	cancel context.CancelFunc
	// volumes are the Pod's Secret volumes, refreshed when their Secret
	// changes.
	volumes []*secretVolume
}

// managedSelector finds the Deployments the operator owns.
var managedSelector = client.MatchingLabels{"app.kubernetes.io/managed-by": "haproxy-tcp-operator"}

// Run keeps Pods in line with Deployments until ctx ends, polling the API
// server, then stops every process.
func (k *Kubelet) Run(ctx context.Context) {
	k.mu.Lock()
	if k.pods == nil {
		k.pods = map[string]*process{}
	}
	k.mu.Unlock()
	defer k.stopAll()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := k.sync(ctx); err != nil && ctx.Err() == nil {
			k.Log.Error(err, "Sync pods")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (k *Kubelet) stopAll() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for key, p := range k.pods {
		p.stop()
		delete(k.pods, key)
	}
}

func (p *process) stop() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.cancel()
}

// PodIP returns the address a running Pod listens on.
func (k *Kubelet) PodIP(namespace, name string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if p := k.pods[namespace+"/"+name]; p != nil {
		return p.ip
	}
	return ""
}

func (k *Kubelet) sync(ctx context.Context) error {
	var deps appsv1.DeploymentList
	if err := k.Client.List(ctx, &deps, managedSelector); err != nil {
		return err
	}
	var pods corev1.PodList
	if err := k.Client.List(ctx, &pods, managedSelector); err != nil {
		return err
	}
	byOwner := map[string][]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		owner := ""
		if ref := metav1.GetControllerOf(p); ref != nil && ref.Kind == "Deployment" {
			owner = p.Namespace + "/" + ref.Name
		}
		byOwner[owner] = append(byOwner[owner], p)
	}
	live := map[string]bool{}
	for i := range deps.Items {
		d := &deps.Items[i]
		key := d.Namespace + "/" + d.Name
		live[key] = true
		have := byOwner[key]
		want := int(ptr.Deref(d.Spec.Replicas, 1))
		for n := len(have); n < want; n++ {
			if err := k.createPod(ctx, d); err != nil {
				return err
			}
		}
		for n := want; n < len(have); n++ {
			if err := k.Client.Delete(ctx, have[n]); client.IgnoreNotFound(err) != nil {
				return err
			}
		}
		for _, p := range have {
			if err := k.run(ctx, d, p); err != nil {
				k.Log.Error(err, "Run pod", "pod", p.Name)
			}
		}
		for _, p := range have {
			k.mu.Lock()
			proc := k.pods[p.Namespace+"/"+p.Name]
			k.mu.Unlock()
			if proc != nil {
				k.refreshVolumes(ctx, p.Namespace, proc)
			}
		}
	}
	// Pods whose Deployment is gone go too, as the garbage collector would.
	for owner, ps := range byOwner {
		if live[owner] {
			continue
		}
		for _, p := range ps {
			if err := k.Client.Delete(ctx, p); client.IgnoreNotFound(err) != nil {
				return err
			}
		}
	}
	// Processes whose Pod is gone or going stop; a Pod being deleted is
	// then removed for good, as a kubelet confirms a graceful deletion.
	present := map[string]bool{}
	var terminating []*corev1.Pod
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp.IsZero() {
			present[p.Namespace+"/"+p.Name] = true
		} else {
			terminating = append(terminating, p)
		}
	}
	k.mu.Lock()
	for key, p := range k.pods {
		if !present[key] {
			p.stop()
			delete(k.pods, key)
		}
	}
	k.mu.Unlock()
	for _, p := range terminating {
		if err := k.Client.Delete(ctx, p, client.GracePeriodSeconds(0)); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

func (k *Kubelet) createPod(ctx context.Context, d *appsv1.Deployment) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    d.Name + "-",
			Namespace:       d.Namespace,
			Labels:          d.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))},
		},
		Spec: *d.Spec.Template.Spec.DeepCopy(),
	}
	pod.Spec.NodeName = "local"
	if err := k.Client.Create(ctx, pod); err != nil {
		return fmt.Errorf("create pod for %s/%s: %w", d.Namespace, d.Name, err)
	}
	return nil
}

// nextAddress is the address the next Pod takes; it is taken once the Pod
// runs, so a Pod that cannot start yet (its Secret is missing) uses none.
func (k *Kubelet) nextAddress() string {
	ip := make(net.IP, 4)
	copy(ip, k.FirstIP.To4())
	ip[3] += byte(k.nextIP)
	return ip.String()
}

// run starts a Pod's processes once and reports it Ready when its
// dataplane answers.
func (k *Kubelet) run(ctx context.Context, d *appsv1.Deployment, pod *corev1.Pod) error {
	if !pod.DeletionTimestamp.IsZero() {
		return nil
	}
	key := pod.Namespace + "/" + pod.Name
	k.mu.Lock()
	p := k.pods[key]
	k.mu.Unlock()
	if p != nil {
		return nil
	}
	if len(pod.Spec.Containers) == 0 {
		return fmt.Errorf("pod %s has no container", key)
	}
	c := pod.Spec.Containers[0]
	k.mu.Lock()
	ip := k.nextAddress()
	k.mu.Unlock()
	env, err := k.env(ctx, pod, ip, c.Env)
	if err != nil {
		return err
	}

	// UNIX socket paths are short: keep each pod's directory short too.
	dir := filepath.Join(k.Dir, strings.ReplaceAll(ip, ".", "-"))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// Secret volumes are projected into the Pod's directory, and paths
	// under their mount points in the arguments point there.
	volumes, err := k.secretVolumes(ctx, pod, c, dir)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.nextIP++
	k.mu.Unlock()
	var args []string
	listenPort := "5555"
	for _, a := range c.Args {
		// As a kubelet does: $(VAR) in arguments is the container's
		// variable (the dataplane listens on $(POD_IP)).
		a = expand(a, env)
		for _, v := range volumes {
			a = strings.ReplaceAll(a, v.mountPath+"/", v.dir+"/")
		}
		switch {
		case strings.HasPrefix(a, "--listen="):
			_, listenPort, _ = net.SplitHostPort(strings.TrimPrefix(a, "--listen="))
			args = append(args, a)
		case strings.HasPrefix(a, "--config-dir="), strings.HasPrefix(a, "--run-dir="), strings.HasPrefix(a, "--cert-dir="):
		default:
			args = append(args, a)
		}
	}
	args = append(args,
		"--bind-address="+ip,
		"--config-dir="+filepath.Join(dir, "config"),
		"--run-dir="+filepath.Join(dir, "run"),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--haproxy="+k.HAProxy,
		"--reload-delay=100ms",
	)
	pctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(pctx, k.Binary, args...)
	for name, val := range env {
		cmd.Env = append(cmd.Env, name+"="+val)
	}
	cmd.Env = append(os.Environ(), cmd.Env...)
	logFile, err := os.Create(filepath.Join(dir, "pod.log"))
	if err != nil {
		cancel()
		return err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		cancel()
		return fmt.Errorf("start pod %s: %w", key, err)
	}
	proc := &process{cmd: cmd, ip: ip, done: make(chan struct{}), cancel: cancel, volumes: volumes}
	go func() { _ = cmd.Wait(); logFile.Close(); close(proc.done) }()
	k.mu.Lock()
	k.pods[key] = proc
	k.mu.Unlock()
	k.Log.Info("Started pod", "pod", key, "ip", ip)

	addr := net.JoinHostPort(ip, listenPort)
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pod %s: dataplane did not listen on %s (see %s)", key, addr, logFile.Name())
		}
		select {
		case <-proc.done:
			return fmt.Errorf("pod %s exited (see %s)", key, logFile.Name())
		case <-time.After(20 * time.Millisecond):
		}
	}
	now := metav1.Now()
	pod.Status = corev1.PodStatus{
		Phase:  corev1.PodRunning,
		PodIP:  ip,
		PodIPs: []corev1.PodIP{{IP: ip}},
		HostIP: ip,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
		StartTime: &now,
	}
	if err := k.Client.Status().Update(ctx, pod); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("report pod %s ready: %w", key, err)
	}
	return nil
}

// env resolves the container's environment: values, Secret references
// and the downward API fields a Pod's own (its IP, name and namespace).
func (k *Kubelet) env(ctx context.Context, pod *corev1.Pod, ip string, vars []corev1.EnvVar) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range vars {
		val := expand(v.Value, out)
		switch from := v.ValueFrom; {
		case from != nil && from.SecretKeyRef != nil:
			ref := from.SecretKeyRef
			var s corev1.Secret
			if err := k.Client.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: ref.Name}, &s); err != nil {
				return nil, fmt.Errorf("env %s: %w", v.Name, err)
			}
			val = string(s.Data[ref.Key])
		case from != nil && from.FieldRef != nil:
			switch from.FieldRef.FieldPath {
			case "status.podIP", "status.podIPs", "status.hostIP":
				val = ip
			case "metadata.name":
				val = pod.Name
			case "metadata.namespace":
				val = pod.Namespace
			default:
				return nil, fmt.Errorf("env %s: field %s is not supported by the local kubelet", v.Name, from.FieldRef.FieldPath)
			}
		case from != nil:
			return nil, fmt.Errorf("env %s: only values, Secret keys and Pod fields are supported by the local kubelet", v.Name)
		}
		out[v.Name] = val
	}
	return out, nil
}

// expand replaces $(NAME) with the variable's value, as the kubelet does
// in arguments and values; unknown names stay as written.
func expand(s string, env map[string]string) string {
	if !strings.Contains(s, "$(") {
		return s
	}
	for name, val := range env {
		s = strings.ReplaceAll(s, "$("+name+")", val)
	}
	return s
}
