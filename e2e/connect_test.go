package e2e

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/localcluster"
)

// TestRedispatchSkipsADeadServer: of a Service's two endpoints one refuses
// connections. With retries and redispatch every client reaches the live
// one; with retries alone, the attempts that picked the dead one fail.
func TestRedispatchSkipsADeadServer(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	alive, dead := backend(t, "alive", ""), backend(t, "dead", "")
	if err := dead.Close(); err != nil {
		t.Fatal(err)
	}
	service(t, ns, "half", map[string]int32{"": 80})
	publish(t, ns, "half", "", alive, dead)
	create(t,
		mapping(ns, "redispatching", v1alpha1.TCPMappingSpec{Port: 2800, Service: "half", Retries: ptr.To(int32(1)), Redispatch: ptr.To(true), ConnectTimeoutMs: ptr.To(int64(500))}),
		mapping(ns, "stubborn", v1alpha1.TCPMappingSpec{Port: 2801, Service: "half", Retries: ptr.To(int32(1))}),
	)
	for _, m := range []string{"redispatching", "stubborn"} {
		condition(t, ns, m, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	routesTo(t, addr(ip, 2800), "", "alive")

	const n = 20
	if s := split(addr(ip, 2800), n); s["alive"] != n {
		t.Errorf("with redispatch: %v, want all %d connections to reach alive", s, n)
	}
	if s := split(addr(ip, 2801), n); s["failed"] == 0 || s["alive"] == 0 {
		t.Errorf("without redispatch: %v, want some connections to fail on the dead server and the others to reach alive", s)
	}
}

// TestConnectionSettingsBadInputIsRefusedNamingTheField: the API server
// refuses connection settings out of range.
func TestConnectionSettingsBadInputIsRefusedNamingTheField(t *testing.T) {
	mapping := func(spec string) string {
		return "apiVersion: haproxy-operator.io/v1alpha1\nkind: TCPMapping\nmetadata:\n  name: bad-connect\n  namespace: default\nspec:\n  port: 2222\n  service: qotm\n" + spec
	}
	tests := map[string]struct {
		yaml string
		want []string
	}{
		"connectTimeoutMs 0":   {mapping("  connectTimeoutMs: 0\n"), []string{"spec.connectTimeoutMs", "greater than or equal to 1"}},
		"retries -1":           {mapping("  retries: -1\n"), []string{"spec.retries", "greater than or equal to 0"}},
		"retries 101":          {mapping("  retries: 101\n"), []string{"spec.retries", "less than or equal to 100"}},
		"redispatch as a word": {mapping("  redispatch: sometimes\n"), []string{"spec.redispatch", "boolean"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { refusedNamingTheField(t, tc.yaml, tc.want...) })
	}
}

// silentListener opens, inside the test host, a listening socket that
// never accepts and whose accept queue is full: the kernel drops further
// SYNs, so connecting to it neither succeeds nor fails until the
// connecting side gives up. It returns the port.
func silentListener(t testing.TB) int {
	t.Helper()
	type result struct {
		fd   int
		port int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// A thread of its own: it leaves for the test host's namespace and
		// never comes back, so it ends with the goroutine.
		runtime.LockOSThread()
		target, err := os.Open("/var/run/netns/" + bed.host.Name)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: err}
			return
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			done <- result{err: err}
			return
		}
		ip := net.ParseIP(bed.host.IP).To4()
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte(ip)}); err != nil {
			done <- result{err: err}
			return
		}
		if err := unix.Listen(fd, 0); err != nil {
			done <- result{err: err}
			return
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{fd: fd, port: sa.(*unix.SockaddrInet4).Port}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("silent listener in the test host: %v", r.err)
	}
	t.Cleanup(func() { unix.Close(r.fd) })
	// Fill the accept queue (backlog 0 holds one connection).
	for i := 0; i < 2; i++ {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(bed.host.IP, strconv.Itoa(r.port)), 200*time.Millisecond)
		if err != nil {
			break // the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	return r.port
}

// TestConnectTimeoutBoundsTheWaitForAServer: a server that never answers
// the SYN is given up after connectTimeoutMs, and the client's connection
// closed; without it, the default 5 s still holds the client.
func TestConnectTimeoutBoundsTheWaitForAServer(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	port := silentListener(t)
	silent := &localcluster.Backend{Name: "silent", Addr: &net.TCPAddr{IP: net.ParseIP(bed.host.IP), Port: port}}
	service(t, ns, "silent", map[string]int32{"": 80})
	publish(t, ns, "silent", "", silent)
	create(t,
		mapping(ns, "quick", v1alpha1.TCPMappingSpec{Port: 2810, Service: "silent", ConnectTimeoutMs: ptr.To(int64(300)), Retries: ptr.To(int32(0))}),
		mapping(ns, "patient", v1alpha1.TCPMappingSpec{Port: 2811, Service: "silent", Retries: ptr.To(int32(0))}),
	)
	for _, m := range []string{"quick", "patient"} {
		condition(t, ns, m, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	// How long HAProxy keeps a client whose server never answers.
	held := func(address string) (time.Duration, error) {
		c, err := net.DialTimeout("tcp", address, 2*time.Second)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(3 * time.Second))
		_, err = c.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return 3 * time.Second, nil
		}
		return time.Since(start), nil
	}
	eventually(t, 30*time.Second, "the quick mapping gives up within a second", func() error {
		d, err := held(addr(ip, 2810))
		if err != nil || d > time.Second {
			return fmt.Errorf("held %v (%v)", d, err)
		}
		return nil
	})
	if d, err := held(addr(ip, 2811)); err != nil || d < 3*time.Second {
		t.Errorf("without connectTimeoutMs the client was let go after %v (%v), want the default 5 s", d, err)
	}
}
