package e2e

import (
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// TestOperatorRestartChangesNothingRunning restarts the operator while a
// connection is open: no reload, the connection lives, status holds, and
// the new operator still acts on changes.
func TestOperatorRestartChangesNothingRunning(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	first, second := backend(t, "first", ""), backend(t, "second", "")
	service(t, ns, "app", map[string]int32{"": 80})
	publish(t, ns, "app", "", first)
	create(t, mapping(ns, "steady", v1alpha1.TCPMappingSpec{Port: 3200, Service: "app"}))
	programmed := condition(t, ns, "steady", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 3200), "", "first")

	conn, err := net.Dial("tcp", addr(ip, 3200))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.ReadFull(conn, make([]byte, 6)); err != nil {
		t.Fatal(err)
	}
	before := reloadCount(t, ns, ip)

	stopOperatorProcess()
	if err := runOperator(); err != nil {
		t.Fatal(err)
	}
	// A change after the restart shows the new operator has caught up; it
	// needs no reload either.
	publish(t, ns, "app", "", first, second)
	eventually(t, 30*time.Second, "the restarted operator adds an endpoint", func() error {
		if s := split(addr(ip, 3200), 20); s["second"] == 0 {
			return fmt.Errorf("split %v", s)
		}
		return nil
	})
	if after := reloadCount(t, ns, ip); after != before {
		t.Errorf("restarting the operator reloaded HAProxy %d times", after-before)
	}
	assertEchoes(t, conn, "the connection opened before the restart")
	var m v1alpha1.TCPMapping
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "steady"}, &m); err != nil {
		t.Fatal(err)
	}
	now := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionProgrammed)
	if now == nil || now.Status != metav1.ConditionTrue || !now.LastTransitionTime.Equal(&programmed.LastTransitionTime) {
		t.Errorf("Programmed after the restart: %+v, before: %+v", now, programmed)
	}
}

// BenchmarkNewMappingToTraffic measures, for a new mapping, the time from
// its creation to its first routed connection and to Programmed=True.
func BenchmarkNewMappingToTraffic(b *testing.B) {
	ns := newNamespace(b, nil)
	ip := newHAProxy(b, ns, 1)[0]
	service(b, ns, "app", map[string]int32{"": 80})
	publish(b, ns, "app", "", backend(b, "app", ""))
	var routed, programmed []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		port := int32(4000 + i)
		name := "bench-" + strconv.Itoa(i)
		start := time.Now()
		create(b, mapping(ns, name, v1alpha1.TCPMappingSpec{Port: port, Service: "app"}))
		for {
			if got, _, err := greeting(addr(ip, port), ""); err == nil && got == "app" {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		routed = append(routed, time.Since(start))
		for {
			var m v1alpha1.TCPMapping
			if err := cluster.client.Get(ctxFor(b), client.ObjectKey{Namespace: ns, Name: name}, &m); err == nil {
				if c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionProgrammed); c != nil && c.Status == metav1.ConditionTrue {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
		programmed = append(programmed, time.Since(start))
	}
	median := func(d []time.Duration) float64 {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[len(d)/2].Microseconds()) / 1000
	}
	b.ReportMetric(median(routed), "routed-median-ms")
	b.ReportMetric(median(programmed), "programmed-median-ms")
}
