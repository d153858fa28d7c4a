package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// apiFloor is what the API server alone needs for a burst, with no
// operator watching: how long it takes to create the burst's mappings and
// then to take one status write for each. A burst cannot serve before it
// is created, nor be Programmed before its statuses are written, so these
// are the floor under the operator's burst figures on the same machine.
type apiFloor struct {
	Created, StatusWritten time.Duration
	// CreatedBusy and StatusBusy are the share of the machine's CPU time
	// that was busy (not idle, not waiting for I/O) while each took place:
	// near 1, the API server and etcd were bound by the CPUs, and more
	// writers at once would not make them faster.
	CreatedBusy, StatusBusy float64
}

// apiFloors measures apiFloor runs times on a second API server and etcd
// of their own, started here and stopped before the operator's runs: the
// operator under test neither sees these mappings nor shares the CPUs
// with them. The writers are as many as the benchmark's creators (16) and
// the operator's status workers (32).
func apiFloors(b *testing.B, sb *scaleBench, runs int) []apiFloor {
	env, cfg := secondAPIServer(b)
	defer func() { _ = env.Stop() }()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0
	c, err := client.New(cfg, client.Options{Scheme: cluster.client.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	var out []apiFloor
	for r := 0; r < runs; r++ {
		// A namespace per run rather than a teardown: deleting 10,000
		// mappings takes longer than the measurement.
		ns := fmt.Sprintf("floor-%d", r)
		if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		objs := sb.burst()
		for _, o := range objs {
			o.Namespace = ns
		}
		var f apiFloor
		cpu, start := readCPUTimes(b), time.Now()
		parallelDo(b, 16, len(objs), func(i int) error { return c.Create(context.Background(), objs[i]) })
		f.Created, f.CreatedBusy = time.Since(start), readCPUTimes(b).busySince(cpu)
		cpu, start = readCPUTimes(b), time.Now()
		parallelDo(b, 32, len(objs), func(i int) error {
			objs[i].Status = programmedStatus(objs[i], sb.ns+"/haproxy")
			return c.Status().Update(context.Background(), objs[i])
		})
		f.StatusWritten, f.StatusBusy = time.Since(start), readCPUTimes(b).busySince(cpu)
		fmt.Fprintf(os.Stderr, "scale %d, API server alone, run %d of %d: %+v\n", sb.scale, r+1, runs, f)
		out = append(out, f)
	}
	return out
}

// programmedStatus is a status of the shape and size the operator writes
// for a mapping one HAProxy serves.
func programmedStatus(m *v1alpha1.TCPMapping, haproxy string) v1alpha1.TCPMappingStatus {
	now := metav1.Now()
	conds := func() []metav1.Condition {
		var out []metav1.Condition
		for _, t := range []string{v1alpha1.ConditionAccepted, v1alpha1.ConditionResolvedRefs, v1alpha1.ConditionProgrammed} {
			out = append(out, metav1.Condition{Type: t, Status: metav1.ConditionTrue, Reason: t, ObservedGeneration: 1, LastTransitionTime: now,
				Message: "running in 1 of 1 ready instances"})
		}
		return out
	}
	fe, be := fmt.Sprintf("tcp_%d", m.Spec.Port), fmt.Sprintf("%s_%s", m.Namespace, m.Name)
	return v1alpha1.TCPMappingStatus{
		Conditions:   conds(),
		Parents:      []v1alpha1.ParentStatus{{HAProxy: haproxy, Conditions: conds(), Frontend: fe, Backend: be}},
		Frontend:     fe,
		Backend:      be,
		LastAccepted: &v1alpha1.AcceptedTCPMapping{Generation: 1, Spec: *m.Spec.DeepCopy()},
	}
}

// cpuTimes are the machine's CPU times, summed over its CPUs, in clock
// ticks: busy (user, nice, system, irq, softirq, steal) and the rest
// (idle, iowait).
type cpuTimes struct{ busy, rest float64 }

func readCPUTimes(b *testing.B) cpuTimes {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		b.Fatalf("/proc/stat begins %q, not the cpu line", line)
	}
	var t cpuTimes
	for i, f := range fields[1:9] {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			b.Fatalf("/proc/stat: %v", err)
		}
		if i == 3 || i == 4 { // idle, iowait
			t.rest += v
		} else {
			t.busy += v
		}
	}
	return t
}

// busySince is the share of the CPU time since before that was busy.
func (t cpuTimes) busySince(before cpuTimes) float64 {
	busy, all := t.busy-before.busy, t.busy-before.busy+t.rest-before.rest
	if all <= 0 {
		return 0
	}
	return busy / all
}
