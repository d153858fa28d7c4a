package apply_test

import (
	"net"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/apply"
)

// passthrough adds a mapping passing host on port through to Service
// name, whose one endpoint is 10.0.0.<ip>:443.
func (w *world) passthrough(name, host string, port int, ip byte) {
	w.service(name, &dataplanetest.Backend{Name: name, Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, ip), Port: 443}})
	w.snap.TCPMappings = append(w.snap.TCPMappings, &v1alpha1.TCPMapping{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       v1alpha1.TCPMappingSpec{Port: int32(port), Host: host, Service: name + ":80"},
	})
}

func (w *world) remove(name string) {
	var ms []*v1alpha1.TCPMapping
	for _, m := range w.snap.TCPMappings {
		if m.Name != name {
			ms = append(ms, m)
		}
	}
	w.snap.TCPMappings = ms
}

// TestHostsComeAndGoOnAPortWithoutReload: a new SNI host on a port that
// already passes TLS through takes a free backend of the port's pool at
// runtime, and a removed one gives it back, neither reloading.
func TestHostsComeAndGoOnAPortWithoutReload(t *testing.T) {
	r := newMapRecorder()
	a := apply.NewApplier()
	w := newWorld()
	w.passthrough("a", "a.example.com", 8443, 1)
	runMaps(t, a, r, w.desired(t))
	r.take()

	w.passthrough("b", "b.example.com", 8443, 2)
	out := runMaps(t, a, r, w.desired(t))
	calls := r.take()
	t.Logf("new host: %q", calls)
	if out.Reloaded {
		t.Fatalf("a new host reloaded: %q", calls)
	}
	for _, want := range []string{"POST raw runtime", "add server ", "add map tcpm-fe-8443-hosts.map b.example.com "} {
		if !containsPrefix(calls, want) {
			t.Errorf("a new host: no %q in %q", want, calls)
		}
	}
	// It serves before the text is stored: servers, then the route, then
	// the push.
	if add, route, push := indexPrefix(calls, "add server "), indexPrefix(calls, "add map tcpm-fe-8443-hosts.map b.example.com "), indexPrefix(calls, "POST raw runtime"); !(add < route && route < push) {
		t.Errorf("a new host: server at %d, route at %d, push at %d in %q", add, route, push, calls)
	}

	w.remove("a")
	out = runMaps(t, a, r, w.desired(t))
	calls = r.take()
	if out.Reloaded {
		t.Fatalf("a removed host reloaded: %q", calls)
	}
	if !containsPrefix(calls, "del map tcpm-fe-8443-hosts.map a.example.com") {
		t.Errorf("a removed host: %q", calls)
	}
	// Its route goes before the push puts its server in maintenance.
	if route, push := indexPrefix(calls, "del map tcpm-fe-8443-hosts.map a.example.com"), indexPrefix(calls, "POST raw runtime"); route > push {
		t.Errorf("a removed host: route removed at %d, after the push at %d: %q", route, push, calls)
	}

	// The host comes back to its pool backend, whose server is still
	// there in maintenance: the push makes it ready before the route
	// points at it.
	w.passthrough("a", "a.example.com", 8443, 1)
	out = runMaps(t, a, r, w.desired(t))
	calls = r.take()
	t.Logf("host back: %q", calls)
	if out.Reloaded {
		t.Fatalf("a host back reloaded: %q", calls)
	}
	if route, push := indexPrefix(calls, "add map tcpm-fe-8443-hosts.map a.example.com "), indexPrefix(calls, "POST raw runtime"); route < push {
		t.Errorf("a host back: routed at %d, before the push at %d made its server ready: %q", route, push, calls)
	}
}

// indexPrefix is the index of the first call with prefix, or -1.
func indexPrefix(calls []string, prefix string) int {
	for i, c := range calls {
		if strings.HasPrefix(c, prefix) {
			return i
		}
	}
	return -1
}

func containsPrefix(calls []string, prefix string) bool {
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}
