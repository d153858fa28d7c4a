package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// TestREADMEMappingToALocalProcess: the README's mapping to a process on
// this machine, applied with the test's own loopback listener as its
// service, carries connections through a local HAProxy instance to it.
func TestREADMEMappingToALocalProcess(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, found := strings.Cut(string(readme), "<!-- localprocess:begin -->\n```yaml\n")
	if !found {
		t.Fatal("README has no localprocess block")
	}
	doc, _, found := strings.Cut(rest, "```\n<!-- localprocess:end -->")
	if !found {
		t.Fatal("the localprocess block does not end")
	}
	var m v1alpha1.TCPMapping
	if err := yaml.UnmarshalStrict([]byte(doc), &m); err != nil {
		t.Fatalf("the README's mapping: %v", err)
	}
	host, _, err := net.SplitHostPort(m.Spec.Service)
	if err != nil {
		t.Fatalf("the README's service %q is no address:port: %v", m.Spec.Service, err)
	}
	if a, err := netip.ParseAddr(host); err != nil || !a.IsLoopback() {
		t.Fatalf("the README's service %q does not name a loopback address", m.Spec.Service)
	}

	// "Your process": a listener of this test on the README's address.
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "my-process")
			c.Close()
		}
	}()
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	m.Namespace = ns
	m.Spec.Service = l.Addr().String()
	create(t, &m)
	routesTo(t, addr(ip, m.Spec.Port), "", "my-process")
	condition(t, ns, m.Name, v1alpha1.ConditionProgrammed, "True")
}
