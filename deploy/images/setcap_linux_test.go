package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nobody is the unprivileged user the test runs haproxy as.
const nobody = "65534"

// TestSetcapLetsNonRootHAProxyBindLowPorts runs the instance image's
// setcap step on a copy of this machine's /usr/sbin/haproxy and starts it
// as an unprivileged user listening on a loopback port below 1024: it
// serves. Without the step the same start is refused.
func TestSetcapLetsNonRootHAProxyBindLowPorts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: setting a file capability and switching to an unprivileged user take it (CI runs as root)")
	}
	step := setcapFromDockerfile(t)
	for _, tool := range []string{"setcap", "getcap", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (setcap and getcap are in Debian's libcap2-bin, setpriv in util-linux): %v", tool, err)
		}
	}
	start := unprivilegedPortStart(t)
	if start <= 1 {
		t.Skipf("net.ipv4.ip_unprivileged_port_start is %d here: every user binds every port, so no capability is needed", start)
	}

	dir, err := os.MkdirTemp("", "tcpm-setcap-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Flags&unix.ST_NOSUID != 0 {
		t.Skipf("%s is on a nosuid mount, where the kernel ignores file capabilities; set TMPDIR to another file system", dir)
	}
	// The unprivileged user reads the binary and the configuration.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	capped := filepath.Join(dir, "haproxy")
	plain := filepath.Join(dir, "haproxy-plain")
	for _, p := range []string{capped, plain} {
		copyFile(t, "/usr/sbin/haproxy", p, 0o755)
	}
	// The Dockerfile's own step, on the copy.
	cmd := strings.Replace(step, "/usr/sbin/haproxy", capped, 1)
	if out, err := exec.Command("sh", "-c", cmd).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	out, err := exec.Command("getcap", capped).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "cap_net_bind_service=ep") {
		t.Fatalf("getcap %s = %q, %v; want cap_net_bind_service=ep", capped, out, err)
	}

	port := freeLowPort(t, start)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg := filepath.Join(dir, "haproxy.cfg")
	conf := fmt.Sprintf("global\n  log stderr format raw local0 err\n\ndefaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\nfrontend low\n  bind %s\n  tcp-request content reject\n", addr)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("with the capability, nobody binds the low port", func(t *testing.T) {
		p := startAsNobody(t, capped, cfg)
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if p.exited() {
				t.Fatalf("haproxy as uid %s exited: %v\n%s", nobody, p.err, p.out.String())
			}
			if time.Now().After(deadline) {
				t.Fatalf("haproxy as uid %s does not listen on %s within 10s: %v\n%s", nobody, addr, err, p.out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := p.stop(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("without it, nobody may not bind", func(t *testing.T) {
		p := startAsNobody(t, plain, cfg)
		p.refused(t, addr)
	})
}

// setcapFromDockerfile is the setcap step of the instance image.
func setcapFromDockerfile(t *testing.T) string {
	t.Helper()
	ins, err := Parse("../../haproxy.Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range FinalStage(ins) {
		for _, s := range Steps(in.Args) {
			if in.Command == "RUN" && strings.HasPrefix(s, "setcap ") {
				return s
			}
		}
	}
	t.Fatal("haproxy.Dockerfile has no setcap step")
	return ""
}

func unprivilegedPortStart(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// freeLowPort is a loopback port below 1024 and below start that no one
// listens on: root binds it to find out.
func freeLowPort(t *testing.T, start int) int {
	t.Helper()
	top := min(start, 1024)
	for p := top - 1; p > max(top-300, 0); p-- {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatalf("no free loopback port below %d", top)
	return 0
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// process is haproxy running as nobody.
type process struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
	err  error
}

// startAsNobody starts bin in the foreground as uid and gid 65534 with no
// supplementary groups and no capabilities of its own.
func startAsNobody(t *testing.T, bin, cfg string) *process {
	t.Helper()
	args := []string{"--reuid=" + nobody, "--regid=" + nobody, "--clear-groups", "--", bin, "-db", "-f", cfg}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	p := &process{cmd: exec.CommandContext(ctx, "setpriv", args...), out: new(bytes.Buffer), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { _ = p.stop() })
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends haproxy and waits for it.
func (p *process) stop() error {
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(unix.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop haproxy: %w", err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("haproxy did not stop within 10s of SIGTERM")
	}
}

// refused waits for haproxy to exit for want of permission to bind addr.
func (p *process) refused(t *testing.T, addr string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("haproxy as uid %s still runs after 10s; it should fail to bind %s\n%s", nobody, addr, p.out.String())
	}
	if p.err == nil {
		t.Fatalf("haproxy as uid %s exited 0; it should fail to bind %s\n%s", nobody, addr, p.out.String())
	}
	if out := p.out.String(); !strings.Contains(out, "Permission denied") && !strings.Contains(out, "cannot bind") {
		t.Fatalf("haproxy as uid %s failed, but not for want of permission to bind %s: %v\n%s", nobody, addr, p.err, out)
	}
}
