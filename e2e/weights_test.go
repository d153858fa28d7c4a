package e2e

import (
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/localcluster"
)

// TestExactWeightsWhateverTheEndpointCounts: a 1% canary with 3
// endpoints beside a stable with 50 gets 1% ± 0.3 points of 20,000
// connections (a mapping's share does not depend on how many endpoints
// it has); raising it to 20% and removing one of its endpoints take
// effect without a reload.
func TestExactWeightsWhateverTheEndpointCounts(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	var stable, canary []*localcluster.Backend
	for i := 0; i < 50; i++ {
		stable = append(stable, backend(t, "stable", ""))
	}
	for i := 0; i < 3; i++ {
		canary = append(canary, backend(t, fmt.Sprintf("canary-%d", i), ""))
	}
	service(t, ns, "stable", map[string]int32{"": 80})
	publish(t, ns, "stable", "", stable...)
	service(t, ns, "canary", map[string]int32{"": 80})
	publish(t, ns, "canary", "", canary...)
	const port = 3100
	create(t,
		mapping(ns, "stable", v1alpha1.TCPMappingSpec{Port: port, Service: "stable"}),
		mapping(ns, "canary", v1alpha1.TCPMappingSpec{Port: port, Service: "canary", Weight: ptr.To(int32(1))}),
	)
	for _, m := range []string{"stable", "canary"} {
		condition(t, ns, m, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	address := addr(ip, port)
	routesTo(t, address, "", "stable")

	const n = 20000
	s := parallelSplit(address, n, 8)
	if s["failed"] != 0 {
		t.Errorf("%d of %d connections failed: %v", s["failed"], n, s)
	}
	got := 100 * float64(canaryCount(s)) / n
	t.Logf("canary share: %.2f%% of %d connections (%v)", got, n, s)
	if math.Abs(got-1) > 0.3 {
		t.Errorf("the 1%% canary got %.2f%% of %d connections, want 1%% ± 0.3: %v", got, n, s)
	}

	before := reloadCount(t, ns, ip)
	setWeight(t, ns, "canary", 20)
	eventually(t, 30*time.Second, "20% in effect", func() error {
		if s := parallelSplit(address, 400, 8); canaryCount(s) < 40 {
			return fmt.Errorf("split %v", s)
		}
		return nil
	})
	const m = 4000
	s = parallelSplit(address, m, 8)
	got = 100 * float64(canaryCount(s)) / m
	if math.Abs(got-20) > 2.5 || s["failed"] != 0 {
		t.Errorf("the 20%% canary got %.2f%% of %d connections: %v", got, m, s)
	}
	if after := reloadCount(t, ns, ip); after != before {
		t.Errorf("changing a weight reloaded HAProxy %d times", after-before)
	}

	publish(t, ns, "canary", "", canary[:2]...)
	eventually(t, 30*time.Second, "canary-2 gone", func() error {
		s := parallelSplit(address, 400, 8)
		if s["canary-2"] != 0 || s["canary-0"] == 0 || s["canary-1"] == 0 || s["failed"] != 0 {
			return fmt.Errorf("split %v", s)
		}
		return nil
	})
	s = parallelSplit(address, m, 8)
	got = 100 * float64(canaryCount(s)) / m
	if math.Abs(got-20) > 2.5 || s["failed"] != 0 {
		t.Errorf("with 2 endpoints the 20%% canary got %.2f%% of %d connections: %v", got, m, s)
	}
	if after := reloadCount(t, ns, ip); after != before {
		t.Errorf("a weight and an endpoint change reloaded HAProxy %d times", after-before)
	}
}

func canaryCount(s map[string]int) int {
	n := 0
	for name, c := range s {
		if strings.HasPrefix(name, "canary") {
			n += c
		}
	}
	return n
}

// parallelSplit is split over workers connections at a time.
func parallelSplit(address string, n, workers int) map[string]int {
	var mu sync.Mutex
	out := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		count := n / workers
		if w < n%workers {
			count++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := split(address, count)
			mu.Lock()
			defer mu.Unlock()
			for k, v := range mine {
				out[k] += v
			}
		}()
	}
	wg.Wait()
	return out
}

// setWeight changes a mapping's weight.
func setWeight(t testing.TB, ns, name string, w int32) {
	t.Helper()
	var obj v1alpha1.TCPMapping
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: name}, &obj); err != nil {
		t.Fatal(err)
	}
	obj.Spec.Weight = ptr.To(w)
	if err := cluster.client.Update(ctxFor(t), &obj); err != nil {
		t.Fatal(err)
	}
}

// onlyServerRow waits until backend be shows one server on the stats page
// and returns its proxy/server row.
func onlyServerRow(t *testing.T, ns, ip, be string) string {
	t.Helper()
	var row string
	eventually(t, 10*time.Second, "the server of "+be+" on the stats page", func() error {
		var rows []string
		for r := range stats(t, ns, ip) {
			if serverOf(r, be) {
				rows = append(rows, r)
			}
		}
		if len(rows) != 1 {
			return fmt.Errorf("rows %v", rows)
		}
		row = rows[0]
		return nil
	})
	return row
}

// TestLimitsHoldForAWeightGroupTogether: two mappings sharing a port
// 50/50 have a backend each, and their maxConnections 3 and rate limit
// bound their connections together: with three held open (across both),
// a fourth is refused; a client's connections to either count towards
// one rate.
func TestLimitsHoldForAWeightGroupTogether(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "left")
	serviceWithBackend(t, ns, "right")
	const capped, rated = 3110, 3111
	limit := func(name string, port int32, spec v1alpha1.TCPMappingSpec) *v1alpha1.TCPMapping {
		spec.Port, spec.Service, spec.Weight = port, strings.TrimSuffix(name, "-rated"), ptr.To(int32(50))
		return mapping(ns, name, spec)
	}
	rate := &v1alpha1.ConnectionRateLimit{Connections: 4, PeriodMs: ptr.To(int64(20000))}
	create(t,
		limit("left", capped, v1alpha1.TCPMappingSpec{MaxConnections: ptr.To(int32(3))}),
		limit("right", capped, v1alpha1.TCPMappingSpec{MaxConnections: ptr.To(int32(3))}),
		limit("left-rated", rated, v1alpha1.TCPMappingSpec{ConnectionRateLimit: rate}),
		limit("right-rated", rated, v1alpha1.TCPMappingSpec{ConnectionRateLimit: rate}),
	)
	for _, m := range []string{"left", "right", "left-rated", "right-rated"} {
		condition(t, ns, m, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	eventually(t, 30*time.Second, "both mappings serve", func() error {
		if s := split(addr(ip, capped), 20); s["left"] == 0 || s["right"] == 0 {
			return fmt.Errorf("split %v", s)
		}
		return nil
	})

	var held []net.Conn
	release := func() {
		for _, c := range held {
			c.Close()
		}
		held = nil
	}
	defer release()
	reached := map[string]int{}
	// HAProxy may still count a connection of the split above that the
	// client already closed: when one of the three is refused, all are
	// let go and taken again. A cap below three never lets that happen.
	eventually(t, 15*time.Second, "three connections held at once", func() error {
		release()
		reached = map[string]int{}
		for len(held) < 3 {
			got, conn, err := greetFrom(clientOne, addr(ip, capped), "")
			if err != nil {
				return fmt.Errorf("connection %d of 3: %w", len(held)+1, err)
			}
			held = append(held, conn)
			reached[got]++
		}
		return nil
	})
	for i := 0; i < 10; i++ {
		if got, conn, err := greetFrom(clientOne, addr(ip, capped), ""); err == nil {
			conn.Close()
			t.Fatalf("a connection reached %q with three held (%v) and maxConnections 3 for the group", got, reached)
		}
	}

	// From clientTwo (which the rated port has not seen): 4 connections
	// in 20 s to the group, then refused, whichever mapping it would go to.
	served := map[string]int{}
	for i := 0; i < 4; i++ {
		got, conn, err := greetFrom(clientTwo, addr(ip, rated), "")
		if err != nil {
			t.Fatalf("connection %d of 4 to the rated group: %v", i+1, err)
		}
		conn.Close()
		served[got]++
	}
	for i := 0; i < 6; i++ {
		if got, conn, err := greetFrom(clientTwo, addr(ip, rated), ""); err == nil {
			conn.Close()
			t.Fatalf("connection %d to the rated group reached %q after 4 (%v) within the period", 5+i, got, served)
		}
	}
}
