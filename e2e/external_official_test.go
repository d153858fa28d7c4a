package e2e

import (
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
)

// officialInstance starts HAProxy and the official dataplaneapi (the
// binary bin) driving it, serving its API over TLS with a certificate of
// ca on a loopback address, as on a VM. Nothing of the operator's is
// set up there but the listen address HAProxy expands
// (TCPM_BIND_ADDR). It returns the address and HAProxy's master socket.
func officialInstance(t testing.TB, bin string, ca *testCA, user, password string) (ip, master string) {
	t.Helper()
	ip = fmt.Sprintf("127.%d.%d.201", 1+mrand.IntN(250), mrand.IntN(250))
	// UNIX socket paths are short: a directory under /tmp.
	dir, err := os.MkdirTemp("", "official")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"certs", "run", "general", "maps", "spoe", "transactions", "spoe-transactions", "backups"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	certPEM, keyPEM := ca.serverCert(t, ip)
	for name, data := range map[string][]byte{"api.crt": certPEM, "api.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	master = filepath.Join(dir, "master.sock")
	cfg := filepath.Join(dir, "haproxy.cfg")
	// The runtime socket's directory is where the operator will keep
	// HAProxy's sockets.
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global
    master-worker
    stats socket %s/run/admin.sock mode 600 level admin expose-fd listeners
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
`, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	haproxyBin := "/usr/sbin/haproxy"
	if p := os.Getenv("HAPROXY_BIN"); p != "" {
		haproxyBin = p
	}
	env := append(os.Environ(), "TCPM_BIND_ADDR="+ip)
	logFile, err := os.Create(filepath.Join(dir, "processes.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	start := func(name string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
		})
	}
	start(haproxyBin, "-W", "-S", master+",mode,600", "-f", cfg, "-p", filepath.Join(dir, "haproxy.pid"))
	// HAProxy 2.6 reloads through reload_cmd: this test binary, which
	// waits for the new worker (dataplanetest.ReloadThroughMaster), so a
	// reload the API reports as done is one that serves.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	reload := strings.Join([]string{self, master, filepath.Join(dir, "processes.log")}, " ")
	yaml := dataplanetest.OfficialConfig{
		Host: ip, Port: 5555, TLSCert: dir + "/api.crt", TLSKey: dir + "/api.key",
		User: user, Password: password, Dir: dir,
		HAProxyConfig: cfg, HAProxyBinary: haproxyBin, ReloadCmd: reload,
	}.YAML()
	if err := os.WriteFile(filepath.Join(dir, "dataplaneapi.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env = append(env, dataplanetest.ReloadHelperEnv+"=1")
	start(bin, "-f", filepath.Join(dir, "dataplaneapi.yaml"))
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"processes.log", "dataplaneapi.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					lines := strings.Split(strings.TrimSpace(string(b)), "\n")
					if len(lines) > 40 {
						lines = lines[len(lines)-40:]
					}
					t.Logf("%s:\n%s", f, strings.Join(lines, "\n"))
				}
			}
		}
	})
	eventually(t, 30*time.Second, "the official dataplaneapi listens", func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "5555"), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return ip, master
}

// masterReloads is the reload count of HAProxy's master (show proc),
// read again while the master re-executes after a reload.
func masterReloads(t testing.TB, socket string) int {
	t.Helper()
	var n int
	eventually(t, 15*time.Second, "HAProxy's master answers show proc", func() error {
		p, err := dataplanetest.ShowProc(socket)
		n = p.Reloads
		return err
	})
	return n
}

// TestExternalOfficialInstance: with DATAPLANEAPI_BIN naming the official
// dataplaneapi (v2.9), an HAProxy resource programs an instance it
// serves, over HTTPS: weighted mappings route real traffic and their
// weights change without a reload, and a TLSContext verifying client
// certificates of a CA is served (its CA bundle in the API's general
// storage).
func TestExternalOfficialInstance(t *testing.T) {
	bin := os.Getenv("DATAPLANEAPI_BIN")
	if bin == "" {
		t.Skip("DATAPLANEAPI_BIN names no official dataplaneapi")
	}
	ns := newNamespace(t, nil)
	apiCA := newTestCA(t, "official-api")
	ip, master := officialInstance(t, bin, apiCA, "admin", "s3cret-for-the-edge")
	clients := newTestCA(t, "edge clients")
	create(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "edge-creds", Namespace: ns}, Data: map[string][]byte{"username": []byte("admin"), "password": []byte("s3cret-for-the-edge")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "edge-ca", Namespace: ns}, Data: map[string][]byte{"ca.crt": apiCA.pem}},
		&v1alpha1.HAProxy{
			ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ns},
			Spec: v1alpha1.HAProxySpec{
				Replicas: ptr.To(int32(1)), ServiceType: corev1.ServiceTypeClusterIP,
				Stats:             v1alpha1.StatsSpec{Enabled: ptr.To(false)},
				ExternalInstances: []v1alpha1.ExternalInstance{{Name: "edge-1", URL: "https://" + net.JoinHostPort(ip, "5555"), CredentialsSecret: "edge-creds", CASecret: "edge-ca"}},
			},
		})
	canaryRelease(t, ns, 3700, 90, 10)
	condition(t, ns, "canary", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 3700), "", "stable")

	before := masterReloads(t, master)
	updateMapping(t, ns, "stable", func(m *v1alpha1.TCPMapping) { m.Spec.Weight = ptr.To(int32(50)) })
	updateMapping(t, ns, "canary", func(m *v1alpha1.TCPMapping) { m.Spec.Weight = ptr.To(int32(50)) })
	eventually(t, 30*time.Second, "50/50 on the official instance", func() error {
		s := split(addr(ip, 3700), 200)
		if s["canary"] < 70 || s["stable"] < 70 {
			return fmt.Errorf("split %v", s)
		}
		return nil
	})
	if after := masterReloads(t, master); after != before {
		t.Errorf("changing weights reloaded the official instance's HAProxy %d times", after-before)
	}

	// Client certificates of a CA: the CA bundle cannot go to the
	// official certificate storage.
	tlsSecret(t, ns, "mutual-cert", "mutual.example.com")
	create(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "clients-ca", Namespace: ns}, Data: map[string][]byte{"ca.crt": clients.pem}},
		&v1alpha1.TLSContext{ObjectMeta: metav1.ObjectMeta{Name: "mutual", Namespace: ns},
			Spec: v1alpha1.TLSContextSpec{Secret: "mutual-cert", CASecret: "clients-ca", CertRequired: ptr.To(true)}},
		mapping(ns, "mutual", v1alpha1.TCPMappingSpec{Port: 3701, Service: "stable", TLS: "mutual"}),
	)
	condition(t, ns, "mutual", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	client1 := clients.client(t, "client one")
	eventually(t, 30*time.Second, "a client of the CA is served", func() error {
		got, err := mtlsGreeting(addr(ip, 3701), "", &client1)
		if err != nil || got != "stable" {
			return fmt.Errorf("greeting %q, %v", got, err)
		}
		return nil
	})
	if got, err := mtlsGreeting(addr(ip, 3701), "", nil); err == nil {
		t.Errorf("a client without a certificate was served %q", got)
	}

	var hap v1alpha1.HAProxy
	eventually(t, 30*time.Second, "status lists the official instance as programmed", func() error {
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "edge"}, &hap); err != nil {
			return err
		}
		if len(hap.Status.Instances) != 1 {
			return fmt.Errorf("instances %+v", hap.Status.Instances)
		}
		in := hap.Status.Instances[0]
		if in.Pod != "edge-1" || !in.Programmed || in.ConfigHash != hap.Status.ConfigHash {
			return fmt.Errorf("instance %+v, desired %s", in, hap.Status.ConfigHash)
		}
		return nil
	})
}
