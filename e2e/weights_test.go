package e2e

import (
	"fmt"
	"math"
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
			if strings.HasPrefix(r, be+"/") && r != be+"/BACKEND" {
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
