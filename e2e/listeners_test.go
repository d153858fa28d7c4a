package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// twoTenants creates namespaces a and b (labelled team=a and team=b) and
// one HAProxy in a that serves both; it returns them and the instance's
// address.
func twoTenants(t *testing.T, mutate ...func(*v1alpha1.HAProxy)) (a, b, ip string) {
	t.Helper()
	group := "listeners-" + strconv.FormatInt(time.Now().UnixNano()%1000000, 10)
	a = newNamespace(t, map[string]string{"group": group, "team": "a"})
	b = newNamespace(t, map[string]string{"group": group, "team": "b"})
	serve := func(h *v1alpha1.HAProxy) {
		h.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"group": group}}
	}
	ip = newHAProxy(t, a, 1, append([]func(*v1alpha1.HAProxy){serve}, mutate...)...)[0]
	serviceWithBackend(t, a, "app-a")
	serviceWithBackend(t, b, "app-b")
	return a, b, ip
}

// heldBy checks that the newer mapping was refused with Conflict and that
// its message names the holder's namespace and nothing of its mappings.
func heldBy(t *testing.T, ns, name, holder string, port int32) {
	t.Helper()
	c := condition(t, ns, name, v1alpha1.ConditionAccepted, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonConflict {
		t.Errorf("%s/%s: reason %s, want %s (%s)", ns, name, c.Reason, v1alpha1.ReasonConflict, c.Message)
	}
	if want := fmt.Sprintf("port %d is held by namespace %s", port, holder); !strings.Contains(c.Message, want) {
		t.Errorf("%s/%s: message %q does not say %q", ns, name, c.Message, want)
	}
	for _, leak := range []string{"app-a", "older-"} {
		if strings.Contains(c.Message, leak) {
			t.Errorf("%s/%s: message %q carries the other tenant's %q", ns, name, c.Message, leak)
		}
	}
}

// allTo checks that 100 connections through address all reach want.
func allTo(t *testing.T, address, want string) {
	t.Helper()
	const n = 100
	s := split(address, n)
	t.Logf("%d connections to %s: %v", n, address, s)
	if s[want] != n {
		t.Errorf("split %v: want all %d connections at %s", s, n, want)
	}
}

// TestListenerHeldByOlderNamespace: a cleartext mapping of another
// namespace on a held port is refused and takes no traffic, until the
// holder goes.
func TestListenerHeldByOlderNamespace(t *testing.T) {
	a, b, ip := twoTenants(t)
	const port = 4100
	create(t, mapping(a, "older-a", v1alpha1.TCPMappingSpec{Port: port, Service: "app-a"}))
	condition(t, a, "older-a", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, port), "", "app-a")

	create(t, mapping(b, "newer-b", v1alpha1.TCPMappingSpec{Port: port, Service: "app-b"}))
	heldBy(t, b, "newer-b", a, port)
	allTo(t, addr(ip, port), "app-a")
	condition(t, a, "older-a", v1alpha1.ConditionAccepted, metav1.ConditionTrue)

	// Once the holder goes, the port is the newer mapping's: its object
	// did not change, its verdict did, and its status says so.
	deleteObject(t, mapping(a, "older-a", v1alpha1.TCPMappingSpec{}))
	condition(t, b, "newer-b", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, port), "", "app-b")
}

// TestListenerAddressesOverlap: the instance's own address and 0.0.0.0
// overlap a mapping on all addresses of the same port.
func TestListenerAddressesOverlap(t *testing.T) {
	a, b, ip := twoTenants(t)
	for i, address := range []string{ip, "0.0.0.0"} {
		port := int32(4110 + i)
		t.Run(address, func(t *testing.T) {
			create(t, mapping(a, fmt.Sprintf("older-a-%d", port), v1alpha1.TCPMappingSpec{Port: port, Service: "app-a"}))
			condition(t, a, fmt.Sprintf("older-a-%d", port), v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
			routesTo(t, addr(ip, port), "", "app-a")

			create(t, mapping(b, fmt.Sprintf("newer-b-%d", port), v1alpha1.TCPMappingSpec{Port: port, Address: address, Service: "app-b"}))
			heldBy(t, b, fmt.Sprintf("newer-b-%d", port), a, port)
			allTo(t, addr(ip, port), "app-a")
		})
	}
}

// TestListenerPortRangesPerNamespace: spec.listeners open 4200-4299 to
// team a only and 4300 to everyone.
func TestListenerPortRangesPerNamespace(t *testing.T) {
	a, b, ip := twoTenants(t, func(h *v1alpha1.HAProxy) {
		h.Spec.Listeners = []v1alpha1.ListenerSpec{
			{Ports: "4200-4299", Namespaces: &v1alpha1.ListenerNamespaces{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}}},
			{Ports: "4300"},
		}
	})
	create(t, mapping(b, "outside", v1alpha1.TCPMappingSpec{Port: 4250, Service: "app-b"}))
	c := condition(t, b, "outside", v1alpha1.ConditionAccepted, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonNotAllowedByListeners || !strings.Contains(c.Message, "port 4250") || !strings.Contains(c.Message, b) {
		t.Errorf("Accepted %s %q: want %s naming port 4250 and namespace %s", c.Reason, c.Message, v1alpha1.ReasonNotAllowedByListeners, b)
	}

	create(t, mapping(a, "inside", v1alpha1.TCPMappingSpec{Port: 4250, Service: "app-a"}))
	condition(t, a, "inside", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 4250), "", "app-a")

	create(t, mapping(b, "open", v1alpha1.TCPMappingSpec{Port: 4300, Service: "app-b"}))
	condition(t, b, "open", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 4300), "", "app-b")

	create(t, mapping(b, "unlisted", v1alpha1.TCPMappingSpec{Port: 4400, Service: "app-b"}))
	if c := condition(t, b, "unlisted", v1alpha1.ConditionAccepted, metav1.ConditionFalse); c.Reason != v1alpha1.ReasonNotAllowedByListeners {
		t.Errorf("a port in no entry: Accepted %s %q, want %s", c.Reason, c.Message, v1alpha1.ReasonNotAllowedByListeners)
	}
}

// TestListenerPortsAreValidated: the API server refuses a reversed range,
// naming the rule.
func TestListenerPortsAreValidated(t *testing.T) {
	ns := newNamespace(t, nil)
	for _, ports := range []string{"4000-3000", "0", "70000", "80,443"} {
		hap := &v1alpha1.HAProxy{
			ObjectMeta: metav1.ObjectMeta{Name: "bad-" + strconv.Itoa(len(ports)), Namespace: ns},
			Spec:       v1alpha1.HAProxySpec{Listeners: []v1alpha1.ListenerSpec{{Ports: ports}}},
		}
		err := cluster.client.Create(ctxFor(t), hap)
		if err == nil || !strings.Contains(err.Error(), "ports must be a port N or a range N-M") {
			t.Errorf("ports %q: want the CRD's message, got %v", ports, err)
		}
	}
}
