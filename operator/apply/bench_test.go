package apply_test

import (
	"context"
	"sort"
	"strconv"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/apply"
)

func reportMedian(b *testing.B, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(samples[len(samples)*9/10].Microseconds())/1000, "p90-ms")
}

// BenchmarkWeightChange measures from the apply request until the next
// connection lands where the new weights send it.
func BenchmarkWeightChange(b *testing.B) {
	inst := dataplanetest.Start(b, "127.0.0.1")
	blue := dataplanetest.StartBackend(b, "blue", "127.0.0.1")
	green := dataplanetest.StartBackend(b, "green", "127.0.0.1")
	port, addr := loopbackPort(b)
	w := newWorld()
	w.service("blue", blue)
	w.service("green", green)
	w.mapping("blue", port, "blue", ptr.To(int32(100)))
	w.mapping("green", port, "green", ptr.To(int32(0)))
	mustApply(b, inst, w.desired(b))
	dataplanetest.Eventually(b, 5*time.Second, "first connection", func() bool {
		got, err := dataplanetest.Greeting(addr)
		return err == nil && got == "blue"
	})

	var samples []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		to, from := "green", "blue"
		if i%2 == 1 {
			to, from = "blue", "green"
		}
		w.mapping(to, port, to, ptr.To(int32(100)))
		w.mapping(from, port, from, ptr.To(int32(0)))
		d := w.desired(b)
		start := time.Now()
		type result struct {
			out apply.Outcome
			err error
		}
		done := make(chan result, 1)
		go func() {
			out, err := applyTo(context.Background(), inst, d)
			done <- result{out, err}
		}()
		// Traffic moves before the file is validated and stored.
		for {
			if got, err := dataplanetest.Greeting(addr); err == nil && got == to {
				break
			}
		}
		samples = append(samples, time.Since(start))
		if r := <-done; r.err != nil || r.out.Reloaded {
			b.Fatalf("weight change: %+v, %v; want no reload", r.out, r.err)
		}
	}
	reportMedian(b, samples)
}

// BenchmarkStructuralApply measures from the apply request that adds a
// mapping on a new port until that port relays a connection, with a
// handful of mappings already running.
func BenchmarkStructuralApply(b *testing.B) {
	inst := dataplanetest.Start(b, "127.0.0.1")
	app := dataplanetest.StartBackend(b, "app", "127.0.0.1")
	w := newWorld()
	w.service("app", app)
	for i := 0; i < 5; i++ {
		w.mapping("base-"+strconv.Itoa(i), dataplanetest.FreePort(b, "127.0.0.1"), "app", nil)
	}
	mustApply(b, inst, w.desired(b))

	var samples []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		port, addr := loopbackPort(b)
		w.mapping("new-"+strconv.Itoa(i%3), port, "app", nil)
		d := w.desired(b)
		start := time.Now()
		mustApply(b, inst, d)
		for {
			if got, err := dataplanetest.Greeting(addr); err == nil && got == "app" {
				break
			}
		}
		samples = append(samples, time.Since(start))
	}
	reportMedian(b, samples)
}
