package e2e

import (
	"errors"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// TestSNIHostsComeAndGoWithoutReload: on a port that already passes TLS
// through and on one that already terminates it, a new host serves, an
// endpoint change takes effect, a weight change moves the traffic and a
// removed host stops serving, with no reload: hosts and weights are map
// entries, the new mappings take free backends of the port's pool and
// their servers are added at runtime.
func TestSNIHostsComeAndGoWithoutReload(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	for _, name := range []string{"alpha", "beta"} {
		service(t, ns, name, map[string]int32{"tls": 443})
		publish(t, ns, name, "tls", backend(t, name, name+".upstream"))
	}
	for _, name := range []string{"gamma", "delta"} {
		serviceWithBackend(t, ns, name)
	}
	tlsSecret(t, ns, "edge-cert", "edge.example")
	const passthrough, terminated = 3200, 3201
	create(t, tlsContext(ns, "edge", "edge-cert"),
		mapping(ns, "alpha", v1alpha1.TCPMappingSpec{Port: passthrough, Host: "alpha.example", Service: "alpha:443"}),
		mapping(ns, "gamma", v1alpha1.TCPMappingSpec{Port: terminated, Host: "gamma.example", TLS: "edge", Service: "gamma"}),
	)
	for _, m := range []string{"alpha", "gamma"} {
		condition(t, ns, m, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	if sub := routesTo(t, addr(ip, passthrough), "alpha.example", "alpha"); sub != "alpha.upstream" {
		t.Errorf("passthrough served %q, want the backend's own certificate", sub)
	}
	if sub := routesTo(t, addr(ip, terminated), "gamma.example", "gamma"); sub != "edge.example" {
		t.Errorf("termination served %q, want the TLSContext's certificate", sub)
	}
	before := reloadCount(t, ns, ip)
	reloads := func(what string) {
		t.Helper()
		if after := reloadCount(t, ns, ip); after != before {
			t.Errorf("%s reloaded HAProxy %d times", what, after-before)
		}
	}

	start := time.Now()
	create(t,
		mapping(ns, "beta", v1alpha1.TCPMappingSpec{Port: passthrough, Host: "beta.example", Service: "beta:443"}),
		mapping(ns, "delta", v1alpha1.TCPMappingSpec{Port: terminated, Host: "delta.example", TLS: "edge", Service: "delta"}),
	)
	routesTo(t, addr(ip, passthrough), "beta.example", "beta")
	routesTo(t, addr(ip, terminated), "delta.example", "delta")
	t.Logf("two new hosts on existing ports served after %s", time.Since(start).Round(time.Millisecond))
	for _, m := range []string{"beta", "delta"} {
		condition(t, ns, m, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	routesTo(t, addr(ip, passthrough), "alpha.example", "alpha")
	routesTo(t, addr(ip, terminated), "gamma.example", "gamma")
	reloads("new hosts")

	// A second endpoint for beta: both serve.
	publish(t, ns, "beta", "tls", backend(t, "beta-1", "beta.upstream"), backend(t, "beta-2", "beta.upstream"))
	eventually(t, 30*time.Second, "beta's new endpoints serve", func() error {
		seen := map[string]int{}
		for i := 0; i < 20; i++ {
			name, _, err := greeting(addr(ip, passthrough), "beta.example")
			if err != nil {
				return err
			}
			seen[name]++
		}
		if seen["beta-1"] == 0 || seen["beta-2"] == 0 || len(seen) != 2 {
			return fmt.Errorf("beta.example reached %v", seen)
		}
		return nil
	})
	// And a second endpoint for delta, behind the terminating port.
	publish(t, ns, "delta", "", backend(t, "delta-1", ""), backend(t, "delta-2", ""))
	eventually(t, 30*time.Second, "delta's new endpoints serve", func() error {
		seen := map[string]int{}
		for i := 0; i < 20; i++ {
			name, _, err := greeting(addr(ip, terminated), "delta.example")
			if err != nil {
				return err
			}
			seen[name]++
		}
		if seen["delta-1"] == 0 || seen["delta-2"] == 0 || len(seen) != 2 {
			return fmt.Errorf("delta.example reached %v", seen)
		}
		return nil
	})
	reloads("endpoint changes")

	// A canary beside each host, first at weight 0, then taking all of
	// the host's traffic: weights are map entries on both kinds of port.
	service(t, ns, "beta-canary", map[string]int32{"tls": 443})
	publish(t, ns, "beta-canary", "tls", backend(t, "beta-canary", "beta.upstream"))
	serviceWithBackend(t, ns, "delta-canary")
	canaries := []*v1alpha1.TCPMapping{
		mapping(ns, "beta-canary", v1alpha1.TCPMappingSpec{Port: passthrough, Host: "beta.example", Service: "beta-canary:443", Weight: ptr.To[int32](0)}),
		mapping(ns, "delta-canary", v1alpha1.TCPMappingSpec{Port: terminated, Host: "delta.example", TLS: "edge", Service: "delta-canary", Weight: ptr.To[int32](0)}),
	}
	create(t, canaries[0], canaries[1])
	for _, m := range canaries {
		condition(t, ns, m.Name, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	for _, m := range canaries {
		before := m.DeepCopy()
		m.Spec.Weight = ptr.To[int32](100)
		if err := cluster.client.Patch(ctxFor(t), m, client.MergeFrom(before)); err != nil {
			t.Fatal(err)
		}
	}
	routesTo(t, addr(ip, passthrough), "beta.example", "beta-canary")
	routesTo(t, addr(ip, terminated), "delta.example", "delta-canary")
	reloads("canaries and weight changes")
	for _, m := range canaries {
		if err := cluster.client.Delete(ctxFor(t), m); err != nil {
			t.Fatal(err)
		}
	}

	for _, m := range []string{"alpha", "gamma"} {
		if err := cluster.client.Delete(ctxFor(t), mapping(ns, m, v1alpha1.TCPMappingSpec{})); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		port int32
		host string
	}{{passthrough, "alpha.example"}, {terminated, "gamma.example"}} {
		eventually(t, 30*time.Second, c.host+" no longer served", func() error {
			if name, _, err := greeting(addr(ip, c.port), c.host); err == nil {
				return errors.New("still reaches " + name)
			}
			return nil
		})
	}
	routesTo(t, addr(ip, passthrough), "beta.example", "beta-1")
	routesTo(t, addr(ip, terminated), "delta.example", "delta-1")
	reloads("removed hosts")
}

// TestAHostTakenOverWhenItsHolderGoes: two mappings for one host on a
// port share its traffic only when they agree; the newer, which asks for
// another idle timeout, is refused while the older holds the host. Once
// the older goes, the newer serves the host and its status says so,
// though its own object did not change: only its verdict did, when the
// port was translated again.
func TestAHostTakenOverWhenItsHolderGoes(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	for _, name := range []string{"first", "second", "other"} {
		service(t, ns, name, map[string]int32{"tls": 443})
		publish(t, ns, name, "tls", backend(t, name, name+".upstream"))
	}
	const port = 3250
	create(t,
		mapping(ns, "first", v1alpha1.TCPMappingSpec{Port: port, Host: "shared.example", Service: "first:443"}),
		mapping(ns, "other", v1alpha1.TCPMappingSpec{Port: port, Host: "other.example", Service: "other:443"}),
	)
	condition(t, ns, "first", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	create(t, mapping(ns, "second", v1alpha1.TCPMappingSpec{Port: port, Host: "shared.example", Service: "second:443", IdleTimeoutMs: ptr.To[int64](5000)}))
	if c := condition(t, ns, "second", v1alpha1.ConditionAccepted, metav1.ConditionFalse); c.Reason != v1alpha1.ReasonConflict {
		t.Errorf("second: Accepted %s %q, want %s", c.Reason, c.Message, v1alpha1.ReasonConflict)
	}
	routesTo(t, addr(ip, port), "shared.example", "first")
	// Another host on the port, once the refusal is written: the
	// reconcile for it reads the refused mapping's status as seen, so the
	// one after the deletion finds the newer mapping only by its port.
	create(t, mapping(ns, "third", v1alpha1.TCPMappingSpec{Port: port, Host: "third.example", Service: "other:443"}))
	condition(t, ns, "third", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)

	deleteObject(t, mapping(ns, "first", v1alpha1.TCPMappingSpec{}))
	routesTo(t, addr(ip, port), "shared.example", "second")
	condition(t, ns, "second", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, port), "other.example", "other")
}
