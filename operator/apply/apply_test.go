package apply_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/apply"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/render"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// world builds snapshots of mappings and Services backed by loopback
// backends.
type world struct {
	snap snapshot.Snapshot
}

func newWorld() *world {
	return &world{snap: snapshot.Snapshot{
		HAProxy:    v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "haproxy", Namespace: "default"}},
		Namespaces: []corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "default"}}},
	}}
}

// service sets Service name's ready endpoints to the given backends.
func (w *world) service(name string, backends ...*dataplanetest.Backend) {
	var svcs []corev1.Service
	for _, s := range w.snap.Services {
		if s.Name != name {
			svcs = append(svcs, s)
		}
	}
	w.snap.Services = append(svcs, corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	})
	var slices []discoveryv1.EndpointSlice
	for _, s := range w.snap.EndpointSlices {
		if s.Labels[discoveryv1.LabelServiceName] != name {
			slices = append(slices, s)
		}
	}
	// One slice per backend: endpoints on loopback differ by port.
	for i, b := range backends {
		slices = append(slices, discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("%s-%d", name, i), Namespace: "default",
				Labels: map[string]string{discoveryv1.LabelServiceName: name},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Port: ptr.To(int32(b.Addr.Port))}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{b.Addr.IP.String()}}},
		})
	}
	w.snap.EndpointSlices = slices
}

func (w *world) mapping(name string, port int, service string, weight *int32) {
	var ms []*v1alpha1.TCPMapping
	for _, m := range w.snap.TCPMappings {
		if m.Name != name {
			ms = append(ms, m)
		}
	}
	w.snap.TCPMappings = append(ms, &v1alpha1.TCPMapping{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       v1alpha1.TCPMappingSpec{Port: int32(port), Service: service, Weight: weight},
	})
}

func (w *world) desired(t testing.TB) apply.Desired {
	t.Helper()
	res := translate.Translate(w.snap)
	for _, m := range res.Mappings {
		if !m.Programmable() {
			t.Fatalf("mapping %s rejected: %+v %+v", m.Name, m.Accepted, m.ResolvedRefs)
		}
	}
	cfg, err := render.Config(res.Config)
	if err != nil {
		t.Fatal(err)
	}
	return apply.Desired{Config: cfg, Model: res.Config, Certificates: res.Config.Certificates}
}

// loopbackPort is a free port on 127.0.0.1 and its address.
func loopbackPort(t testing.TB) (int, string) {
	port := dataplanetest.FreePort(t, "127.0.0.1")
	return port, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

func reloads(t testing.TB, inst *dataplanetest.Instance) int {
	t.Helper()
	n, err := inst.Server.ReloadCount()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// appliers keeps one Applier per test instance, as the controller keeps
// one per HAProxy resource.
var appliers sync.Map

func applyTo(ctx context.Context, inst *dataplanetest.Instance, d apply.Desired) (apply.Outcome, error) {
	a, _ := appliers.LoadOrStore(inst, apply.NewApplier())
	return a.(*apply.Applier).Apply(ctx, inst.Server.Addr(), inst.Client, d)
}

func mustApply(t testing.TB, inst *dataplanetest.Instance, d apply.Desired) apply.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := applyTo(ctx, inst, d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFirstApplyRelaysTCP(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	qotm := dataplanetest.StartBackend(t, "qotm", "127.0.0.1")
	port, addr := loopbackPort(t)
	w := newWorld()
	w.service("qotm", qotm)
	w.mapping("qotm-mapping", port, "qotm", nil)

	out := mustApply(t, inst, w.desired(t))
	if !out.Changed || !out.Reloaded {
		t.Errorf("first apply: %+v, want a change with a reload", out)
	}
	dataplanetest.Eventually(t, 5*time.Second, "echo through haproxy", func() bool {
		got, err := dataplanetest.Greeting(addr)
		return err == nil && got == "qotm"
	})
	again := mustApply(t, inst, w.desired(t))
	if again.Changed {
		t.Errorf("applying the same configuration again changed something: %+v", again)
	}
}

func within(t *testing.T, split map[string]int, name string, n int, wantPct, tolerance float64) {
	t.Helper()
	got := 100 * float64(split[name]) / float64(n)
	if math.Abs(got-wantPct) > tolerance {
		t.Errorf("%s got %.1f%% of %d connections, want %.0f%% ± %.0f (split %v)", name, got, n, wantPct, tolerance, split)
	}
}

// TestWeightChangesNeedNoReload moves 1,000 connections from one service to
// another in three steps through weight map entries alone.
func TestWeightChangesNeedNoReload(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	stable := dataplanetest.StartBackend(t, "stable", "127.0.0.1")
	canary := dataplanetest.StartBackend(t, "canary", "127.0.0.1")
	port, addr := loopbackPort(t)
	w := newWorld()
	w.service("stable", stable)
	w.service("canary", canary)

	steps := []struct{ stable, canary int32 }{{100, 0}, {50, 50}, {0, 100}}
	var before int
	for i, step := range steps {
		w.mapping("stable", port, "stable", ptr.To(step.stable))
		w.mapping("canary", port, "canary", ptr.To(step.canary))
		out := mustApply(t, inst, w.desired(t))
		if i == 0 {
			before = reloads(t, inst)
			dataplanetest.Eventually(t, 5*time.Second, "first connection", func() bool {
				_, err := dataplanetest.Greeting(addr)
				return err == nil
			})
		} else if out.Reloaded || len(out.MapChanges) == 0 {
			t.Errorf("step %d: %+v, want map changes and no reload", i, out)
		}
		const n = 1000
		split := dataplanetest.Split(addr, n)
		within(t, split, "stable", n, float64(step.stable), 5)
		within(t, split, "canary", n, float64(step.canary), 5)
		if split[""] != 0 {
			t.Errorf("step %d: %d failed connections", i, split[""])
		}
	}
	if after := reloads(t, inst); after != before {
		t.Errorf("HAProxy reloaded %d times during weight changes", after-before)
	}
}

// TestEndpointChangesNeedNoReload scales a Service 1 → 3 → 1 behind a
// mapping; every endpoint receives traffic and HAProxy never reloads.
func TestEndpointChangesNeedNoReload(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	var bs []*dataplanetest.Backend
	for i := 0; i < 3; i++ {
		bs = append(bs, dataplanetest.StartBackend(t, fmt.Sprintf("pod-%d", i), "127.0.0.1"))
	}
	port, addr := loopbackPort(t)
	w := newWorld()
	w.mapping("app", port, "app", nil)

	w.service("app", bs[0])
	mustApply(t, inst, w.desired(t))
	dataplanetest.Eventually(t, 5*time.Second, "first connection", func() bool {
		_, err := dataplanetest.Greeting(addr)
		return err == nil
	})
	before := reloads(t, inst)

	for _, scale := range [][]*dataplanetest.Backend{bs, bs[:1]} {
		w.service("app", scale...)
		out := mustApply(t, inst, w.desired(t))
		if out.Reloaded {
			t.Errorf("scaling to %d endpoints reloaded HAProxy: %+v", len(scale), out)
		}
		split := dataplanetest.Split(addr, 300)
		for _, b := range scale {
			if split[b.Name] == 0 {
				t.Errorf("with %d endpoints, %s received nothing: %v", len(scale), b.Name, split)
			}
		}
		if len(split) != len(scale) {
			t.Errorf("with %d endpoints, traffic went to %v", len(scale), split)
		}
	}
	if after := reloads(t, inst); after != before {
		t.Errorf("HAProxy reloaded %d times while endpoints changed", after-before)
	}
}
