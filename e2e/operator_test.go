package e2e

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/localcluster"
)

// tlsSecret creates a kubernetes.io/tls Secret for a fresh certificate of cn.
func tlsSecret(t testing.TB, ns, name, cn string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Type: corev1.SecretTypeTLS, Data: certData(t, cn)}
	create(t, s)
	return s
}

func certData(t testing.TB, cn string) map[string][]byte {
	t.Helper()
	cert, err := localcluster.SelfSigned(cn)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
}

func tlsContext(ns, name, secret string) *v1alpha1.TLSContext {
	return &v1alpha1.TLSContext{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: v1alpha1.TLSContextSpec{Secret: secret}}
}

// TestSeedExamplesRouteTraffic sets up every example of the seed and sends
// real connections through the operator's HAProxy.
func TestSeedExamplesRouteTraffic(t *testing.T) {
	ns := newNamespace(t, nil)
	ips := newHAProxy(t, ns, 1)
	qotm, qotmTLS := backend(t, "qotm", ""), backend(t, "qotm-tls", "qotm.upstream")
	qotm1, qotm2 := backend(t, "qotm1", "qotm1.upstream"), backend(t, "qotm2", "qotm2.upstream")
	service(t, ns, "qotm", map[string]int32{"tcp": 80, "tls": 443})
	service(t, ns, "qotm1", map[string]int32{"tls": 443})
	service(t, ns, "qotm2", map[string]int32{"tls": 443})
	publish(t, ns, "qotm", "tcp", qotm)
	publish(t, ns, "qotm", "tls", qotmTLS)
	publish(t, ns, "qotm1", "tls", qotm1)
	publish(t, ns, "qotm2", "tls", qotm2)
	tlsSecret(t, ns, "some-cert", "some-context.example")
	// The backends' certificates are self-signed: nothing to verify them by.
	selfSigned := &v1alpha1.UpstreamTLS{InsecureSkipVerify: true}
	create(t, tlsContext(ns, "some-context", "some-cert"),
		mapping(ns, "qotm-mapping", v1alpha1.TCPMappingSpec{Port: 2222, Service: "qotm"}),
		mapping(ns, "quote-mapping", v1alpha1.TCPMappingSpec{Port: 2223, TLS: "some-context", Service: "qotm"}),
		mapping(ns, "quote-mapping-https", v1alpha1.TCPMappingSpec{Port: 2224, TLS: "some-context", Service: "https://qotm", UpstreamTLS: selfSigned}),
		mapping(ns, "quote-mapping-1", v1alpha1.TCPMappingSpec{Port: 2225, TLS: "some-context", Host: "host1", Service: "https://qotm1", UpstreamTLS: selfSigned}),
		mapping(ns, "quote-mapping-2", v1alpha1.TCPMappingSpec{Port: 2225, TLS: "some-context", Host: "host2", Service: "https://qotm2", UpstreamTLS: selfSigned}),
	)
	for _, m := range []string{"qotm-mapping", "quote-mapping", "quote-mapping-https", "quote-mapping-1", "quote-mapping-2"} {
		condition(t, ns, m, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	ip := ips[0]
	routesTo(t, addr(ip, 2222), "", "qotm")
	if sub := routesTo(t, addr(ip, 2223), "anything", "qotm"); sub != "some-context.example" {
		t.Errorf("TLS on 2223 served %q, want the TLSContext's certificate", sub)
	}
	routesTo(t, addr(ip, 2224), "anything", "qotm-tls") // re-encrypted to the TLS port
	routesTo(t, addr(ip, 2225), "host1", "qotm1")
	routesTo(t, addr(ip, 2225), "host2", "qotm2")
}

// TestPassthroughReachesTheBackendsOwnTLS: host without tls passes the TLS
// connection through, so the client sees the backend's certificate.
func TestPassthroughReachesTheBackendsOwnTLS(t *testing.T) {
	ns := newNamespace(t, nil)
	ips := newHAProxy(t, ns, 1)
	db := backend(t, "db", "db.upstream")
	service(t, ns, "db", map[string]int32{"tls": 443})
	publish(t, ns, "db", "tls", db)
	create(t, mapping(ns, "db", v1alpha1.TCPMappingSpec{Port: 2300, Host: "db.example.com", Service: "db:443"}))
	condition(t, ns, "db", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	if sub := routesTo(t, addr(ips[0], 2300), "db.example.com", "db"); sub != "db.upstream" {
		t.Errorf("passthrough served %q, want the backend's own db.upstream", sub)
	}
}

// reloadCount is how many reloads an instance's dataplane has made.
func reloadCount(t testing.TB, ns, ip string) int {
	t.Helper()
	c := instanceClient(t, ns, ip)
	rl, err := c.Reloads(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	// The API lists only the last 100 reloads: the newest one's number,
	// which ends its ID ("<date>-<n>"), counts them all.
	n := 0
	for _, r := range rl {
		seq, err := strconv.Atoi(r.ID[strings.LastIndexByte(r.ID, '-')+1:])
		if err != nil {
			t.Fatalf("reload ID %q does not end with its number", r.ID)
		}
		n = max(n, seq)
	}
	return n
}

func split(address string, n int) map[string]int {
	out := map[string]int{}
	for i := 0; i < n; i++ {
		name, _, err := greeting(address, "")
		if err != nil {
			name = "failed"
		}
		out[name]++
	}
	return out
}

// TestWeightsSplitAndChangeWithoutReload: 90/10 over two services, then
// 50/50 with no reload.
func TestWeightsSplitAndChangeWithoutReload(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	canaryRelease(t, ns, 2400, 90, 10)
	condition(t, ns, "canary", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 2400), "", "stable")

	check := func(stable float64) {
		t.Helper()
		const n = 2000
		s := split(addr(ip, 2400), n)
		got := 100 * float64(s["stable"]) / n
		if math.Abs(got-stable) > 3 || s["failed"] > 0 {
			t.Errorf("split %v: stable got %.1f%%, want %.0f%% ± 3", s, got, stable)
		}
	}
	check(90)
	before := reloadCount(t, ns, ip)
	for _, m := range []struct {
		name string
		w    int32
	}{{"stable", 50}, {"canary", 50}} {
		var obj v1alpha1.TCPMapping
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: m.name}, &obj); err != nil {
			t.Fatal(err)
		}
		obj.Spec.Weight = ptr.To(m.w)
		if err := cluster.client.Update(ctxFor(t), &obj); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, "50/50 in effect", func() error {
		s := split(addr(ip, 2400), 100)
		if s["canary"] < 40 {
			return fmt.Errorf("split %v", s)
		}
		return nil
	})
	check(50)
	if after := reloadCount(t, ns, ip); after != before {
		t.Errorf("changing weights reloaded HAProxy %d times", after-before)
	}
}

// TestIdleTimeoutClosesOnlyIdleConnections: idleTimeoutMs 500 closes a
// silent connection after about half a second, not a talking one.
func TestIdleTimeoutClosesOnlyIdleConnections(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "echo")
	create(t, mapping(ns, "echo", v1alpha1.TCPMappingSpec{Port: 2500, Service: "echo", IdleTimeoutMs: ptr.To(int64(500))}))
	condition(t, ns, "echo", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 2500), "", "echo")

	idle, err := net.Dial("tcp", addr(ip, 2500))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	talking, err := net.Dial("tcp", addr(ip, 2500))
	if err != nil {
		t.Fatal(err)
	}
	defer talking.Close()
	greet := make([]byte, 5)
	for _, c := range []net.Conn{idle, talking} {
		if _, err := io.ReadFull(c, greet); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := idle.Read(make([]byte, 1))
		if err == io.EOF {
			closed <- time.Since(start)
		} else {
			closed <- -1
		}
	}()
	// Talk every 200 ms for 1.5 s: well past the timeout.
	buf := make([]byte, 3)
	for i := 0; i < 8; i++ {
		if _, err := talking.Write([]byte("hi\n")); err != nil {
			t.Fatalf("the talking connection broke after %s: %v", time.Since(start), err)
		}
		_ = talking.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadFull(talking, buf); err != nil {
			t.Fatalf("the talking connection broke after %s: %v", time.Since(start), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	d := <-closed
	if d < 400*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("the idle connection closed after %s, want about 500ms", d)
	}
}

// TestServiceInAnotherNamespace: service name.othernamespace, which the
// other namespace permits with a ReferenceGrant.
func TestServiceInAnotherNamespace(t *testing.T) {
	ns := newNamespace(t, nil)
	other := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	service(t, other, "qotm", map[string]int32{"": 80})
	publish(t, other, "qotm", "", backend(t, "qotm-other", ""))
	create(t, referenceGrant(other, "qotm-for-mappings", "TCPMapping", ns, "", "Service", "qotm"))
	create(t, mapping(ns, "cross", v1alpha1.TCPMappingSpec{Port: 2600, Service: "qotm." + other}))
	condition(t, ns, "cross", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 2600), "", "qotm-other")
}

// TestEndpointsScaleWithoutReload: 1 → 3 → 1 endpoints all get traffic.
func TestEndpointsScaleWithoutReload(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	bs := []*localcluster.Backend{backend(t, "pod-0", ""), backend(t, "pod-1", ""), backend(t, "pod-2", "")}
	service(t, ns, "app", map[string]int32{"": 80})
	publish(t, ns, "app", "", bs[0])
	create(t, mapping(ns, "app", v1alpha1.TCPMappingSpec{Port: 2700, Service: "app"}))
	condition(t, ns, "app", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 2700), "", "pod-0")
	before := reloadCount(t, ns, ip)
	for _, scale := range [][]*localcluster.Backend{bs, bs[:1]} {
		publish(t, ns, "app", "", scale...)
		eventually(t, 30*time.Second, fmt.Sprintf("%d endpoints serve", len(scale)), func() error {
			s := split(addr(ip, 2700), 60)
			if len(s) != len(scale) {
				return fmt.Errorf("split %v", s)
			}
			for _, b := range scale {
				if s[b.Name] == 0 {
					return fmt.Errorf("split %v", s)
				}
			}
			return nil
		})
	}
	if after := reloadCount(t, ns, ip); after != before {
		t.Errorf("scaling endpoints reloaded HAProxy %d times", after-before)
	}
}

// TestConflictAndLateTLSContext: the newer conflicting mapping is refused
// naming the winner, which keeps working, and takes the port once the
// winner goes; a mapping whose TLSContext is missing starts working once
// it appears.
func TestConflictAndLateTLSContext(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "app")
	create(t, mapping(ns, "winner", v1alpha1.TCPMappingSpec{Port: 2800, Service: "app"}))
	// Programmed, hence Accepted: even created in the same second, the
	// winner keeps its port though "loser" sorts first.
	condition(t, ns, "winner", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	create(t, mapping(ns, "loser", v1alpha1.TCPMappingSpec{Port: 2800, Host: "x.example.com", Service: "app"}))
	c := condition(t, ns, "loser", v1alpha1.ConditionAccepted, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonConflict || !strings.Contains(c.Message, ns+"/winner") {
		t.Errorf("loser: %s: %s; want Conflict naming %s/winner", c.Reason, c.Message, ns)
	}
	routesTo(t, addr(ip, 2800), "", "app")

	create(t, mapping(ns, "late", v1alpha1.TCPMappingSpec{Port: 2801, TLS: "late-context", Service: "app"}))
	c = condition(t, ns, "late", v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonTLSContextNotFound {
		t.Errorf("late: %s: %s; want TLSContextNotFound", c.Reason, c.Message)
	}
	tlsSecret(t, ns, "late-cert", "late.example")
	create(t, tlsContext(ns, "late-context", "late-cert"))
	condition(t, ns, "late", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	if sub := routesTo(t, addr(ip, 2801), "late.example", "app"); sub != "late.example" {
		t.Errorf("served %q", sub)
	}

	// Once the winner goes, the port is the loser's: its object did not
	// change, its verdict did, and its status says so.
	deleteObject(t, mapping(ns, "winner", v1alpha1.TCPMappingSpec{}))
	condition(t, ns, "loser", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
}

// TestCertificateRotationKeepsConnections: a new certificate in the Secret
// reaches new connections; an established one keeps working.
func TestCertificateRotationKeepsConnections(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "app")
	secret := tlsSecret(t, ns, "cert", "first.example")
	create(t, tlsContext(ns, "ctx", "cert"), mapping(ns, "tls", v1alpha1.TCPMappingSpec{Port: 2900, TLS: "ctx", Service: "app"}))
	condition(t, ns, "tls", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 2900), "first.example", "app")

	raw, err := net.Dial("tcp", addr(ip, 2900))
	if err != nil {
		t.Fatal(err)
	}
	established := tlsClient(t, raw)
	defer established.Close()

	secret.Data = certData(t, "second.example")
	if err := cluster.client.Update(ctxFor(t), secret); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the new certificate is served", func() error {
		_, sub, err := greeting(addr(ip, 2900), "x")
		if err != nil {
			return err
		}
		if sub != "second.example" {
			return fmt.Errorf("served %q", sub)
		}
		return nil
	})
	assertEchoes(t, established, "the established connection after rotation")
}

// TestOwnedServiceIsPutRight: the HAProxy's Service, changed or deleted
// by someone else, is put back at once, with no other change to wake the
// operator; a weight change in between (which skips the owned objects
// when nothing they are made from moved) does not hide the tampering.
func TestOwnedServiceIsPutRight(t *testing.T) {
	ns := newNamespace(t, nil)
	newHAProxy(t, ns, 1)
	serviceWithBackend(t, ns, "app")
	m := mapping(ns, "exposed", v1alpha1.TCPMappingSpec{Port: 3100, Service: "app"})
	create(t, m)
	condition(t, ns, "exposed", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	key := client.ObjectKey{Namespace: ns, Name: "haproxy-edge"}
	exposes := func(what string) {
		t.Helper()
		eventually(t, 30*time.Second, what, func() error {
			var svc corev1.Service
			if err := cluster.client.Get(ctxFor(t), key, &svc); err != nil {
				return err
			}
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 3100 {
				return fmt.Errorf("ports %+v", svc.Spec.Ports)
			}
			return nil
		})
	}
	exposes("the HAProxy's Service exposes port 3100")

	var svc corev1.Service
	if err := cluster.client.Get(ctxFor(t), key, &svc); err != nil {
		t.Fatal(err)
	}
	svc.Spec.Ports = []corev1.ServicePort{{Name: "other", Port: 9999, TargetPort: intstr.FromInt32(9999)}}
	if err := cluster.client.Update(ctxFor(t), &svc); err != nil {
		t.Fatal(err)
	}
	exposes("the changed Service exposes port 3100 again")

	// A weight change reconciles with the owned objects' inputs unchanged.
	if err := cluster.client.Get(ctxFor(t), client.ObjectKeyFromObject(m), m); err != nil {
		t.Fatal(err)
	}
	m.Spec.Weight = ptr.To[int32](50)
	if err := cluster.client.Update(ctxFor(t), m); err != nil {
		t.Fatal(err)
	}
	if err := cluster.client.Delete(ctxFor(t), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	exposes("the deleted Service is made again")
}

// TestDeletingCleansUp: deleting a mapping closes its port; deleting the
// HAProxy removes everything it owned.
func TestDeletingCleansUp(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "app")
	m := mapping(ns, "gone", v1alpha1.TCPMappingSpec{Port: 3000, Service: "app"})
	create(t, m)
	condition(t, ns, "gone", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 3000), "", "app")
	servicePorts := func() (map[int32]bool, error) {
		var svc corev1.Service
		ports := map[int32]bool{}
		err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "haproxy-edge"}, &svc)
		if apierrors.IsNotFound(err) {
			// With no mapping left there is nothing to expose.
			return ports, nil
		}
		if err != nil {
			return nil, err
		}
		for _, p := range svc.Spec.Ports {
			ports[p.Port] = true
		}
		return ports, nil
	}
	eventually(t, 30*time.Second, "the HAProxy's Service exposes port 3000", func() error {
		ports, err := servicePorts()
		if err != nil || !ports[3000] || ports[8404] {
			return fmt.Errorf("ports %v (%v)", ports, err)
		}
		return nil
	})
	if err := cluster.client.Delete(ctxFor(t), m); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the Service drops port 3000", func() error {
		ports, err := servicePorts()
		if err != nil || ports[3000] {
			return fmt.Errorf("ports %v (%v)", ports, err)
		}
		return nil
	})
	eventually(t, 30*time.Second, "port 3000 closes", func() error {
		if c, err := net.DialTimeout("tcp", addr(ip, 3000), time.Second); err == nil {
			c.Close()
			return fmt.Errorf("still open")
		}
		return nil
	})

	var hap v1alpha1.HAProxy
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "edge"}, &hap); err != nil {
		t.Fatal(err)
	}
	if err := cluster.client.Delete(ctxFor(t), &hap); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "everything the HAProxy owned is gone", func() error {
		for _, o := range []client.Object{
			&v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ns}},
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "haproxy-edge", Namespace: ns}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "haproxy-edge-dataplane", Namespace: ns}},
		} {
			if err := cluster.client.Get(ctxFor(t), client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%T %s still there (%v)", o, o.GetName(), err)
			}
		}
		var pods corev1.PodList
		if err := cluster.client.List(ctxFor(t), &pods, client.InNamespace(ns)); err != nil || len(pods.Items) > 0 {
			return fmt.Errorf("%d pods left (%v)", len(pods.Items), err)
		}
		if c, err := net.DialTimeout("tcp", addr(ip, 5555), time.Second); err == nil {
			c.Close()
			return fmt.Errorf("the instance still runs")
		}
		return nil
	})
}

// TestTwoReplicasServeTheSameConfiguration.
func TestTwoReplicasServeTheSameConfiguration(t *testing.T) {
	ns := newNamespace(t, nil)
	ips := newHAProxy(t, ns, 2)
	serviceWithBackend(t, ns, "app")
	create(t, mapping(ns, "both", v1alpha1.TCPMappingSpec{Port: 3100, Service: "app"}))
	condition(t, ns, "both", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	for _, ip := range ips {
		routesTo(t, addr(ip, 3100), "", "app")
	}
	var pdb policyv1.PodDisruptionBudget
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "haproxy-edge"}, &pdb); err != nil {
		t.Errorf("two replicas need a PodDisruptionBudget: %v", err)
	}
	eventually(t, 30*time.Second, "both instances report one hash", func() error {
		var hap v1alpha1.HAProxy
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "edge"}, &hap); err != nil {
			return err
		}
		st := hap.Status
		if len(st.Instances) != 2 || st.ProgrammedReplicas != 2 {
			return fmt.Errorf("status %+v", st)
		}
		for _, in := range st.Instances {
			if in.ConfigHash != st.ConfigHash || in.ConfigHash == "" {
				return fmt.Errorf("instances %+v, desired %s", st.Instances, st.ConfigHash)
			}
		}
		return nil
	})
}

func tlsClient(t testing.TB, raw net.Conn) *tls.Conn {
	t.Helper()
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: "x"})
	greet := make([]byte, 4)
	if _, err := io.ReadFull(c, greet); err != nil {
		t.Fatal(err)
	}
	return c
}

// canaryRelease creates Services stable and canary, each with one backend
// of that name, and two mappings splitting port between them by weight.
func canaryRelease(t testing.TB, ns string, port, stableWeight, canaryWeight int32) {
	t.Helper()
	serviceWithBackend(t, ns, "stable")
	serviceWithBackend(t, ns, "canary")
	create(t,
		mapping(ns, "stable", v1alpha1.TCPMappingSpec{Port: port, Service: "stable", Weight: ptr.To(stableWeight)}),
		mapping(ns, "canary", v1alpha1.TCPMappingSpec{Port: port, Service: "canary", Weight: ptr.To(canaryWeight)}),
	)
}
