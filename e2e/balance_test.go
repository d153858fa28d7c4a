package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// TestLoadBalancers: leastconn sends new connections away from a server
// that holds one open; source keeps one client on one server; the
// default roundrobin takes the servers in turn.
func TestLoadBalancers(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	service(t, ns, "pair", map[string]int32{"": 80})
	publish(t, ns, "pair", "", backend(t, "left", ""), backend(t, "right", ""))
	create(t,
		mapping(ns, "least", v1alpha1.TCPMappingSpec{Port: 2900, Service: "pair", LoadBalancer: "leastconn"}),
		mapping(ns, "sticky", v1alpha1.TCPMappingSpec{Port: 2901, Service: "pair", LoadBalancer: "source"}),
		mapping(ns, "turns", v1alpha1.TCPMappingSpec{Port: 2902, Service: "pair"}),
	)
	for _, m := range []string{"least", "sticky", "turns"} {
		condition(t, ns, m, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	eventually(t, 30*time.Second, "both servers reachable", func() error {
		if s := split(addr(ip, 2902), 4); s["left"] == 0 || s["right"] == 0 {
			return fmt.Errorf("split %v", s)
		}
		return nil
	})

	// A connection held open on one server of the leastconn mapping.
	held, err := net.DialTimeout("tcp", addr(ip, 2900), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	_ = held.SetReadDeadline(time.Now().Add(3 * time.Second))
	line := make([]byte, 16)
	n, err := held.Read(line)
	if err != nil {
		t.Fatal(err)
	}
	busy := strings.TrimSpace(string(line[:n]))
	other := map[string]string{"left": "right", "right": "left"}[busy]
	const k = 10
	if s := closedSplit(addr(ip, 2900), k); s[other] != k {
		t.Errorf("leastconn with %s busy: %v, want all %d on %s", busy, s, k, other)
	}

	s := split(addr(ip, 2901), k)
	if len(s) != 1 || s["failed"] != 0 {
		t.Errorf("source: one client's connections went to %v, want one server", s)
	}
	if s := split(addr(ip, 2902), k); s["left"] != k/2 || s["right"] != k/2 {
		t.Errorf("roundrobin: %v, want %d each", s, k/2)
	}
}

// TestLoadBalancerBadInputIsRefusedNamingTheField: only the three
// algorithms pass the API server.
func TestLoadBalancerBadInputIsRefusedNamingTheField(t *testing.T) {
	refusedNamingTheField(t,
		"apiVersion: haproxy-operator.io/v1alpha1\nkind: TCPMapping\nmetadata:\n  name: bad-balance\n  namespace: default\nspec:\n  port: 2222\n  service: qotm\n  loadBalancer: \"source\\n    bind :1\"\n",
		"spec.loadBalancer", "Unsupported value", "roundrobin", "leastconn", "source")
}

// closedSplit is split with connections that end completely, both ways,
// before the next one starts, so a balancer counting active connections
// sees only the ones held elsewhere.
func closedSplit(address string, n int) map[string]int {
	out := map[string]int{}
	for i := 0; i < n; i++ {
		name, err := closedGreeting(address)
		if err != nil {
			name = "failed"
		}
		out[name]++
	}
	return out
}

func closedGreeting(address string) (string, error) {
	conn, err := net.DialTimeout("tcp", address, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	// Half-close and wait for the backend's end: the connection is over
	// on both sides once EOF arrives.
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return "", err
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}
