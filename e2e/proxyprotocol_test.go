package e2e

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/localcluster"
)

// proxySignatureV2 starts a binary PROXY protocol header.
var proxySignatureV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")

// readProxyHeader reads a PROXY protocol v1 or v2 header and returns the
// version and the source address it carries.
func readProxyHeader(r *bufio.Reader) (string, string, error) {
	first, err := r.Peek(12)
	if err != nil {
		return "", "", err
	}
	if string(first) == string(proxySignatureV2) {
		head := make([]byte, 16)
		if _, err := io.ReadFull(r, head); err != nil {
			return "", "", err
		}
		body := make([]byte, binary.BigEndian.Uint16(head[14:16]))
		if _, err := io.ReadFull(r, body); err != nil {
			return "", "", err
		}
		switch head[13] >> 4 {
		case 1: // AF_INET
			return "v2", net.IP(body[0:4]).String(), nil
		case 2: // AF_INET6
			return "v2", net.IP(body[0:16]).String(), nil
		}
		return "v2", "", fmt.Errorf("v2 header with family %#x", head[13])
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != "PROXY" {
		return "", "", fmt.Errorf("no PROXY header: %q", line)
	}
	return "v1", f[2], nil
}

// proxyReadingBackend starts a backend on the test host that reads a
// PROXY protocol header and greets with "<version> <source address>".
func proxyReadingBackend(t testing.TB, name string) *localcluster.Backend {
	t.Helper()
	ln, err := bed.host.Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				version, src, err := readProxyHeader(bufio.NewReader(c))
				if err != nil {
					fmt.Fprintf(c, "error %v\n", err)
					return
				}
				fmt.Fprintf(c, "%s %s\n", version, src)
			}()
		}
	}()
	return &localcluster.Backend{Name: name, Addr: ln.Addr().(*net.TCPAddr)}
}

// viaProxy connects to address, sends header first when set, and returns
// the backend's line and the connection's own address.
func viaProxy(address, header string) (line, self string, err error) {
	c, err := net.DialTimeout("tcp", address, 2*time.Second)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if header != "" {
		if _, err := io.WriteString(c, header); err != nil {
			return "", "", err
		}
	}
	line, err = bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), c.LocalAddr().(*net.TCPAddr).IP.String(), err
}

// TestProxyProtocolCarriesTheClientAddress: the backend reads the client's
// real address from the header HAProxy sends (v1 and v2); a port that
// accepts the PROXY protocol passes on the address its own header names;
// mappings that disagree on accepting it on one port: the newer is a
// Conflict.
func TestProxyProtocolCarriesTheClientAddress(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	service(t, ns, "pp", map[string]int32{"": 80})
	publish(t, ns, "pp", "", proxyReadingBackend(t, "pp"))
	create(t,
		mapping(ns, "v1", v1alpha1.TCPMappingSpec{Port: 2950, Service: "pp", SendProxyProtocol: "v1"}),
		mapping(ns, "v2", v1alpha1.TCPMappingSpec{Port: 2951, Service: "pp", SendProxyProtocol: "v2"}),
		mapping(ns, "behind-lb", v1alpha1.TCPMappingSpec{Port: 2952, Service: "pp", SendProxyProtocol: "v2", AcceptProxyProtocol: ptr.To(true)}),
	)
	for _, m := range []string{"v1", "v2", "behind-lb"} {
		condition(t, ns, m, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	for _, tc := range []struct {
		port    int32
		version string
	}{{2950, "v1"}, {2951, "v2"}} {
		eventually(t, 30*time.Second, fmt.Sprintf("port %d sends a %s header with the client's address", tc.port, tc.version), func() error {
			line, self, err := viaProxy(addr(ip, tc.port), "")
			if err != nil {
				return err
			}
			if line != tc.version+" "+self {
				return fmt.Errorf("backend read %q, want %q", line, tc.version+" "+self)
			}
			return nil
		})
	}
	// A load balancer in front says the client is 203.0.113.7.
	eventually(t, 30*time.Second, "port 2952 passes on the address of the header it accepted", func() error {
		line, _, err := viaProxy(addr(ip, 2952), "PROXY TCP4 203.0.113.7 192.0.2.1 40000 2952\r\n")
		if err != nil {
			return err
		}
		if line != "v2 203.0.113.7" {
			return fmt.Errorf("backend read %q, want %q", line, "v2 203.0.113.7")
		}
		return nil
	})
	// Without a header, that port closes the connection.
	if line, _, err := viaProxy(addr(ip, 2952), ""); err == nil {
		t.Errorf("a connection without a PROXY header on an accepting port reached the backend: %q", line)
	}

	// Two passthrough mappings on one port disagree: the older one holds.
	create(t, mapping(ns, "sni-old", v1alpha1.TCPMappingSpec{Port: 2953, Host: "a.example.com", Service: "pp", AcceptProxyProtocol: ptr.To(true)}))
	condition(t, ns, "sni-old", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	create(t, mapping(ns, "sni-new", v1alpha1.TCPMappingSpec{Port: 2953, Host: "b.example.com", Service: "pp"}))
	c := condition(t, ns, "sni-new", v1alpha1.ConditionAccepted, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonConflict || !strings.Contains(c.Message, "acceptProxyProtocol") || !strings.Contains(c.Message, "sni-old") {
		t.Errorf("the newer mapping's Accepted: %s %q, want a Conflict naming acceptProxyProtocol and sni-old", c.Reason, c.Message)
	}
	condition(t, ns, "sni-old", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
}

// TestProxyProtocolBadInputIsRefusedNamingTheField: only v1 and v2 pass
// the API server.
func TestProxyProtocolBadInputIsRefusedNamingTheField(t *testing.T) {
	refusedNamingTheField(t,
		"apiVersion: haproxy-operator.io/v1alpha1\nkind: TCPMapping\nmetadata:\n  name: bad-proxy\n  namespace: default\nspec:\n  port: 2222\n  service: qotm\n  sendProxyProtocol: v3\n  acceptProxyProtocol: yes-please\n",
		"spec.sendProxyProtocol", "Unsupported value", "spec.acceptProxyProtocol")
}
