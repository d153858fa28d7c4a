package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	dpclient "github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
)

// serverCert issues a certificate for ip from ca, as PEM files.
func (ca *testCA) serverCert(t testing.TB, ip string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: ip},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP(ip)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// externalInstance starts a dataplane and HAProxy outside any Deployment,
// as on a VM, serving its API over TLS with a certificate of ca. It
// returns the instance's address.
func externalInstance(t testing.TB, ca *testCA, user, password string) string {
	t.Helper()
	ip := fmt.Sprintf("127.%d.%d.200", 1+mrand.IntN(250), mrand.IntN(250))
	dir, err := os.MkdirTemp("", "ext")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := ca.serverCert(t, ip)
	for name, data := range map[string][]byte{"api.crt": certPEM, "api.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	haproxyBin := "/usr/sbin/haproxy"
	if p := os.Getenv("HAPROXY_BIN"); p != "" {
		haproxyBin = p
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bed.binary, "dataplane",
		"--listen="+net.JoinHostPort(ip, "5555"), "--bind-address="+ip,
		"--config-dir="+filepath.Join(dir, "config"), "--run-dir="+filepath.Join(dir, "run"), "--cert-dir="+filepath.Join(dir, "certs"),
		"--haproxy="+haproxyBin, "--reload-delay=100ms",
		"--tls-cert="+filepath.Join(dir, "api.crt"), "--tls-key="+filepath.Join(dir, "api.key"))
	cmd.Env = append(os.Environ(), "DATAPLANE_USER="+user, "DATAPLANE_PASSWORD="+password)
	logFile, err := os.Create(filepath.Join(dir, "dataplane.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cancel()
			<-done
		}
		cancel()
		logFile.Close()
		os.RemoveAll(dir)
	})
	eventually(t, 20*time.Second, "the external dataplane listens", func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "5555"), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return ip
}

func trusting(ca *testCA) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// TestExternalInstance: an HAProxy resource programs an instance the
// operator does not run, over HTTPS verified with the CA it was given:
// mappings route real traffic there, weights change at runtime, and no
// Deployment or Service is made for it.
func TestExternalInstance(t *testing.T) {
	ns := newNamespace(t, nil)
	ca := newTestCA(t, "edge-api")
	ip := externalInstance(t, ca, "admin", "s3cret-for-the-vm")
	create(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "vm-creds", Namespace: ns}, Data: map[string][]byte{"username": []byte("admin"), "password": []byte("s3cret-for-the-vm")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "vm-ca", Namespace: ns}, Data: map[string][]byte{"ca.crt": ca.pem}},
		&v1alpha1.HAProxy{
			ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ns},
			Spec: v1alpha1.HAProxySpec{
				Replicas: ptr.To(int32(1)), ServiceType: corev1.ServiceTypeClusterIP,
				ExternalInstances: []v1alpha1.ExternalInstance{{Name: "vm-1", URL: "https://" + net.JoinHostPort(ip, "5555"), CredentialsSecret: "vm-creds", CASecret: "vm-ca"}},
			},
		})
	canaryRelease(t, ns, 3700, 90, 10)
	condition(t, ns, "canary", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 3700), "", "stable")

	api := dpclient.New("https://"+net.JoinHostPort(ip, "5555"), "admin", "s3cret-for-the-vm", trusting(ca))
	reloads := func() int {
		rl, err := api.Reloads(ctxFor(t))
		if err != nil {
			t.Fatal(err)
		}
		return len(rl)
	}
	before := reloads()
	updateMapping(t, ns, "stable", func(m *v1alpha1.TCPMapping) { m.Spec.Weight = ptr.To(int32(50)) })
	updateMapping(t, ns, "canary", func(m *v1alpha1.TCPMapping) { m.Spec.Weight = ptr.To(int32(50)) })
	eventually(t, 30*time.Second, "50/50 on the external instance", func() error {
		s := split(addr(ip, 3700), 200)
		if s["canary"] < 70 || s["stable"] < 70 {
			return fmt.Errorf("split %v", s)
		}
		return nil
	})
	if after := reloads(); after != before {
		t.Errorf("changing weights reloaded the external HAProxy %d times", after-before)
	}

	var hap v1alpha1.HAProxy
	eventually(t, 30*time.Second, "status lists the external instance", func() error {
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "edge"}, &hap); err != nil {
			return err
		}
		if len(hap.Status.Instances) != 1 {
			return fmt.Errorf("instances %+v", hap.Status.Instances)
		}
		in := hap.Status.Instances[0]
		if in.Pod != "vm-1" || !strings.HasPrefix(in.URL, "https://") || !in.Programmed || in.ConfigHash != hap.Status.ConfigHash {
			return fmt.Errorf("instance %+v, desired %s", in, hap.Status.ConfigHash)
		}
		return nil
	})
	for _, o := range []client.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "haproxy-edge", Namespace: ns}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "haproxy-edge", Namespace: ns}},
	} {
		if err := cluster.client.Get(ctxFor(t), client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
			t.Errorf("%T haproxy-edge exists for an HAProxy of external instances (%v)", o, err)
		}
	}

	// A CA that did not sign the instance's certificate: the operator
	// refuses to talk to it, and says so.
	stranger := newTestCA(t, "someone-else")
	var caSecret corev1.Secret
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "vm-ca"}, &caSecret); err != nil {
		t.Fatal(err)
	}
	caSecret.Data["ca.crt"] = stranger.pem
	if err := cluster.client.Update(ctxFor(t), &caSecret); err != nil {
		t.Fatal(err)
	}
	updateMapping(t, ns, "canary", func(m *v1alpha1.TCPMapping) { m.Spec.Weight = ptr.To(int32(40)) })
	eventually(t, time.Minute, "the instance with an unverifiable certificate is reported", func() error {
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "edge"}, &hap); err != nil {
			return err
		}
		if len(hap.Status.Instances) != 1 || hap.Status.Instances[0].Programmed || !strings.Contains(hap.Status.Instances[0].Message, "certificate") {
			return fmt.Errorf("instances %+v", hap.Status.Instances)
		}
		return nil
	})
}
