package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// TestNewPortsThatKeepComingShareAReload: with --reload-interval=3s, a
// new port after a quiet spell reloads at once; ports that keep coming
// within the interval are held, neither served nor Programmed, until they
// stop for the interval, and then go out in one reload.
func TestNewPortsThatKeepComingShareAReload(t *testing.T) {
	restartOperatorWith(t, "--reload-interval=3s")
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "app")
	create(t, mapping(ns, "steady", v1alpha1.TCPMappingSpec{Port: 2950, Service: "app"}))
	condition(t, ns, "steady", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 2950), "", "app")
	// Past the interval: the first new port is a change after a quiet
	// spell.
	eventually(t, time.Minute, "the interval since the last reload to pass", func() error {
		// The end is known to the second: 5 s make 4 at least.
		if since := time.Since(lastReload(t, ns, ip)); since < 5*time.Second {
			return fmt.Errorf("the last reload ended %s ago", since)
		}
		return nil
	})
	before := reloadCount(t, ns, ip)
	scrape := operatorMetricsScraper(t, ns)
	heldGauge := `haproxy_tcp_operator_reload_held{haproxy="` + ns + `/edge"} `

	const ports = 5
	for i := range ports {
		if i > 0 {
			// The scenario: a port every half second, each within the
			// interval of the one before; not a synchronisation.
			time.Sleep(500 * time.Millisecond)
		}
		create(t, mapping(ns, fmt.Sprintf("p%d", i), v1alpha1.TCPMappingSpec{Port: int32(2951 + i), Service: "app"}))
	}
	// The last port came 0.5 s after the one before: the held reload
	// waits 3 s more. p1 was created 1.5 s ago and is held with the rest.
	if got, _, err := greeting(addr(ip, 2952), ""); err == nil {
		t.Errorf("port 2952 serves (%q) while its reload is held", got)
	}
	if m := scrape(); !strings.Contains(m, heldGauge+"1") {
		t.Errorf("operator /metrics lacks %s1 while a reload is held", heldGauge)
	}
	var held v1alpha1.TCPMapping
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "p1"}, &held); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(held.Status.Conditions, v1alpha1.ConditionProgrammed); c != nil && c.Status == metav1.ConditionTrue {
		t.Errorf("p1 is Programmed while its reload is held: %+v", c)
	}

	for i := range ports {
		condition(t, ns, fmt.Sprintf("p%d", i), v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
		routesTo(t, addr(ip, int32(2951+i)), "", "app")
	}
	if m := scrape(); !strings.Contains(m, heldGauge+"0") {
		t.Errorf("operator /metrics lacks %s0 once the held reload went out", heldGauge)
	}
	// One reload for p0, one for p1 to p4.
	if n := reloadCount(t, ns, ip) - before; n > 2 {
		t.Errorf("%d new ports, half a second apart, reloaded HAProxy %d times, want at most 2", ports, n)
	}
	routesTo(t, addr(ip, 2950), "", "app")
}

// restartOperatorWith runs the operator with extra flags for the rest of
// the test, and as before after it.
func restartOperatorWith(t *testing.T, args ...string) {
	t.Helper()
	saved := bed.operatorArgs
	stopOperatorProcess()
	bed.operatorArgs = append(append([]string{}, saved...), args...)
	if err := runOperator(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopOperatorProcess()
		bed.operatorArgs = saved
		if err := runOperator(); err != nil {
			t.Errorf("start the operator again: %v", err)
		}
	})
}

// lastReload is when the newest reload an instance's dataplane lists
// ended, to the second below.
func lastReload(t *testing.T, ns, ip string) time.Time {
	t.Helper()
	rl, err := instanceClient(t, ns, ip).Reloads(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for _, r := range rl {
		last = max(last, r.ReloadTimestamp)
	}
	return time.Unix(last, 0)
}
