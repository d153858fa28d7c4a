package localcluster

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// TestHost is a network namespace this process creates, joined to the
// host by a veth pair: a machine of its own for backends. The API server
// refuses loopback addresses in EndpointSlices, so backends that Services
// point at live here, at an address only this machine can reach.
type TestHost struct {
	Name string
	// IP is the test host's address; the host side of the link is the
	// address below it.
	IP     string
	hostIf string
}

var testHostSeq atomic.Int32

// NewTestHost creates a namespace with address 10.213.<n>.2, reachable
// from this machine through 10.213.<n>.1, with n free on this machine
// (other processes may hold test hosts too). It needs root (CAP_NET_ADMIN
// and CAP_SYS_ADMIN) and iproute2.
func NewTestHost() (*TestHost, error) {
	start := int(testHostSeq.Add(1)) + os.Getpid()
	var lastErr error
	for attempt := 0; attempt < 250; attempt++ {
		n := (start+attempt)%250 + 1
		if out, err := exec.Command("ip", "-o", "addr", "show", "to", fmt.Sprintf("10.213.%d.0/30", n)).Output(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			continue // in use by another test host
		}
		h, err := createTestHost(n)
		if err == nil {
			return h, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no free test host address: %w", lastErr)
}

func createTestHost(n int) (*TestHost, error) {
	name := fmt.Sprintf("tcpm-%d-%d", os.Getpid(), n)
	h := &TestHost{Name: name, IP: fmt.Sprintf("10.213.%d.2", n), hostIf: fmt.Sprintf("tcpmh%d", n)}
	hostIP := fmt.Sprintf("10.213.%d.1/30", n)
	steps := [][]string{
		{"netns", "add", name},
		{"link", "add", h.hostIf, "type", "veth", "peer", "name", "eth0", "netns", name},
		{"addr", "add", hostIP, "dev", h.hostIf},
		{"link", "set", h.hostIf, "up"},
		{"-n", name, "addr", "add", h.IP + "/30", "dev", "eth0"},
		{"-n", name, "link", "set", "eth0", "up"},
		{"-n", name, "link", "set", "lo", "up"},
	}
	for i, args := range steps {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			if i > 0 {
				// Remove only what this call created: the link may be
				// another process's when it already existed.
				if i > 1 {
					_ = exec.Command("ip", "link", "del", h.hostIf).Run()
				}
				_ = exec.Command("ip", "netns", "del", name).Run()
			}
			return nil, fmt.Errorf("create test host %s: ip %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
	}
	return h, nil
}

// Listen opens a TCP listener on port inside the test host. The socket
// belongs to the namespace it was created in, so it keeps serving there
// after this thread returns to the host's namespace.
func (h *TestHost) Listen(port int) (net.Listener, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	defer self.Close()
	target, err := os.Open("/var/run/netns/" + h.Name)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("enter test host %s: %w", h.Name, err)
	}
	ln, lerr := net.Listen("tcp", net.JoinHostPort(h.IP, fmt.Sprint(port)))
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// This thread is in the wrong namespace: never reuse it.
		runtime.Goexit()
	}
	return ln, lerr
}

// Close removes the namespace and its link.
func (h *TestHost) Close() error {
	_ = exec.Command("ip", "link", "del", h.hostIf).Run()
	if out, err := exec.Command("ip", "netns", "del", h.Name).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
		return fmt.Errorf("remove test host %s: %v: %s", h.Name, err, out)
	}
	return nil
}
