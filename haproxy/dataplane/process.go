package dataplane

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// master is the HAProxy master process of the instance and its master CLI.
type master struct {
	bin    string
	cfg    string
	socket string
	env    []string
	cmd    *exec.Cmd
	exited chan struct{}
	logTo  io.Writer
}

// start runs haproxy in master-worker mode in the foreground.
func (m *master) start() error {
	_ = os.Remove(m.socket)
	m.cmd = exec.Command(m.bin, "-W", "-db", "-S", m.socket+",mode,600", "-f", m.cfg)
	m.cmd.Env = append(os.Environ(), m.env...)
	m.cmd.Stdout, m.cmd.Stderr = m.logTo, m.logTo
	if err := m.cmd.Start(); err != nil {
		return fmt.Errorf("start haproxy: %w", err)
	}
	m.exited = make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(m.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := m.workers(); err == nil {
			return nil
		}
		select {
		case <-m.exited:
			return fmt.Errorf("haproxy exited at start: %v", m.cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Never leave a master behind that nobody controls.
	_ = m.cmd.Process.Kill()
	<-m.exited
	return fmt.Errorf("haproxy master socket %s did not answer within 10s", m.socket)
}

func (m *master) stop(ctx context.Context) {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	// SIGUSR1 is HAProxy's soft stop: listeners close, connections finish
	// (bounded by hard-stop-after).
	_ = m.cmd.Process.Signal(syscall.SIGUSR1)
	select {
	case <-m.exited:
	case <-ctx.Done():
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
}

// command sends one command to the master CLI and returns its answer.
func (m *master) command(cmd string) (string, error) {
	conn, err := net.DialTimeout("unix", m.socket, 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("master socket: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(cmd + "\n")); err != nil {
		return "", fmt.Errorf("master socket: %w", err)
	}
	// The master CLI answers and closes only once our side is closed.
	if uc, ok := conn.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return "", fmt.Errorf("master socket: %w", err)
	}
	return string(b), nil
}

// worker is one line of the master's "show proc".
type worker struct {
	PID     string
	Reloads int
}

// workers lists the current and old workers; the first is the current one.
func (m *master) workers() ([]worker, error) {
	out, err := m.command("show proc")
	if err != nil {
		return nil, err
	}
	var ws []worker
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		var reloads int
		_, _ = fmt.Sscanf(f[2], "%d", &reloads)
		if f[1] == "worker" {
			ws = append(ws, worker{PID: f[0], Reloads: reloads})
		}
	}
	if len(ws) == 0 {
		return nil, fmt.Errorf("no worker in show proc: %q", out)
	}
	return ws, nil
}

// reloadCount is how many times the master reloaded, from show proc.
func (m *master) reloadCount() (int, error) {
	out, err := m.command("show proc")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[1] == "master" {
			var n int
			_, err := fmt.Sscanf(f[2], "%d", &n)
			return n, err
		}
	}
	return 0, fmt.Errorf("no master in show proc: %q", out)
}

// reload asks the master to load the configuration file again and waits
// until a new worker runs it. Listeners pass to the new worker through the
// stats socket's expose-fd; old workers finish their connections.
func (m *master) reload() error {
	before, err := m.workers()
	if err != nil {
		return err
	}
	if _, err := m.command("reload"); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ws, err := m.workers()
		if err == nil && ws[0].PID != before[0].PID {
			return nil
		}
		select {
		case <-m.exited:
			return fmt.Errorf("haproxy exited during reload")
		case <-time.After(5 * time.Millisecond):
		}
	}
	return fmt.Errorf("no new worker within 30s of the reload")
}
