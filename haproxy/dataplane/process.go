package dataplane

import (
	"bufio"
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
	"sync"
	"syscall"
	"time"
)

// master is the HAProxy master process of the instance and its master CLI.
//
// HAProxy runs in its own process group (its workers inherit it), so the
// whole group can be killed at once, and the master gets SIGKILL when the
// dataplane dies (Linux's parent-death signal); its workers exit on their
// own when the master is gone (they watch the master's socket pair). The
// master's PID is kept in a pidfile so a later dataplane of the same
// directory kills a master left behind before starting its own.
type master struct {
	bin     string
	cfg     string
	socket  string
	pidfile string
	env     []string
	out     *outputTap

	mu     sync.Mutex // guards cmd and exited across restarts
	cmd    *exec.Cmd
	exited chan struct{}
}

// errMasterExited is returned while HAProxy's master is not running.
var errMasterExited = errors.New("haproxy master exited")

// start runs haproxy in master-worker mode in the foreground and waits
// until its master CLI lists a worker.
func (m *master) start() error {
	_ = os.Remove(m.socket)
	cmd := exec.Command(m.bin, "-W", "-db", "-S", m.socket+",mode,600", "-f", m.cfg)
	cmd.Env = append(os.Environ(), m.env...)
	cmd.Stdout, cmd.Stderr = m.out, m.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start haproxy: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()
	if err := os.WriteFile(m.pidfile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
		m.killGroup()
		return fmt.Errorf("write %s: %w", m.pidfile, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := m.state(); err == nil && len(st.workers) > 0 {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("haproxy exited at start: %v", cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Never leave a master behind that nobody controls.
	m.killGroup()
	return fmt.Errorf("haproxy master socket %s did not answer within 10s", m.socket)
}

// current is the running master command and its exit channel.
func (m *master) current() (*exec.Cmd, chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd, m.exited
}

// running reports whether the master process is alive.
func (m *master) running() bool {
	cmd, exited := m.current()
	if cmd == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// killGroup sends SIGKILL to the master's process group (the master and
// every worker) and waits for the master to be reaped.
func (m *master) killGroup() {
	cmd, exited := m.current()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
	_ = os.Remove(m.pidfile)
}

// stop soft-stops HAProxy: SIGUSR1 closes the listeners and lets
// connections finish (bounded by hard-stop-after); what is left when ctx
// ends is killed.
func (m *master) stop(ctx context.Context) {
	cmd, exited := m.current()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGUSR1)
	select {
	case <-exited:
		// Workers may still finish connections; they are ours to end.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = os.Remove(m.pidfile)
	case <-ctx.Done():
		m.killGroup()
	}
}

// killStale kills the HAProxy process group a previous dataplane of the
// same directory left behind (recorded in the pidfile), so no second
// HAProxy keeps serving an old configuration. A PID now used by another
// program is left alone.
func killStale(pidfile, bin string) error {
	b, err := os.ReadFile(pidfile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", pidfile, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return os.Remove(pidfile)
	}
	if !isHAProxy(pid, bin) {
		return os.Remove(pidfile)
	}
	// The group holds the old master and its workers.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for isHAProxy(pid, bin) {
		if time.Now().After(deadline) {
			return fmt.Errorf("haproxy %d left by a previous dataplane did not die", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return os.Remove(pidfile)
}

// isHAProxy reports whether pid is a live (not zombie) process running
// the haproxy binary bin.
func isHAProxy(pid int, bin string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	if i := strings.LastIndexByte(string(stat), ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	argv0, _, _ := strings.Cut(string(cmdline), "\x00")
	return filepath.Base(argv0) == filepath.Base(bin)
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
		return string(b), fmt.Errorf("master socket: %w", err)
	}
	return string(b), nil
}

// worker is one worker line of the master's "show proc".
type worker struct {
	PID     string
	Reloads int
}

// procState is what the master's "show proc" says. HAProxy 2.6 prints
// "<pid> master <reloads> [failed: <n>] ...": reloads counts every reload
// asked for, failed counts the reloads that failed since the last one
// that succeeded (a success resets it to 0). A failed reload leaves the
// master running with its old workers, so the failure shows as a higher
// reload count with the same current worker and failed > 0.
type procState struct {
	reloads, failed int
	// workers are the current workers; old ones (finishing connections
	// after a reload) are in old.
	workers, old []worker
}

// stateOnce reads "show proc" once.
func (m *master) stateOnce() (procState, error) {
	if !m.running() {
		return procState{}, errMasterExited
	}
	out, err := m.command("show proc")
	if err != nil {
		return procState{}, err
	}
	return parseShowProc(out)
}

// masterReexecWait bounds how long the master CLI may be away while the
// master re-executes itself: HAProxy 2.6 does so after every successful
// load (to drop the configuration's memory, "wait mode") and on reload.
const masterReexecWait = 5 * time.Second

// state reads "show proc", waiting out the moments the master CLI is
// closed because the master re-executes itself.
func (m *master) state() (procState, error) {
	deadline := time.Now().Add(masterReexecWait)
	for {
		st, err := m.stateOnce()
		if err == nil || errors.Is(err, errMasterExited) {
			return st, err
		}
		var opErr *net.OpError
		if !errors.As(err, &opErr) || opErr.Op != "dial" || time.Now().After(deadline) {
			return procState{}, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func parseShowProc(out string) (procState, error) {
	var st procState
	sawMaster := false
	section := "workers"
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "# workers":
			section = "workers"
			continue
		case line == "# old workers":
			section = "old"
			continue
		case strings.HasPrefix(line, "#"):
			section = "other"
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		switch f[1] {
		case "master":
			if _, err := fmt.Sscanf(strings.Join(f[2:], " "), "%d [failed: %d]", &st.reloads, &st.failed); err != nil {
				return st, fmt.Errorf("read master line %q: %w", line, err)
			}
			sawMaster = true
		case "worker":
			w := worker{PID: f[0]}
			_, _ = fmt.Sscanf(f[2], "%d", &w.Reloads)
			if section == "old" {
				st.old = append(st.old, w)
			} else if section == "workers" {
				st.workers = append(st.workers, w)
			}
		}
	}
	if !sawMaster {
		return st, fmt.Errorf("no master in show proc: %q", out)
	}
	return st, nil
}

// workers lists the current workers, or fails when there is none.
func (m *master) workers() ([]worker, error) {
	st, err := m.state()
	if err != nil {
		return nil, err
	}
	if len(st.workers) == 0 {
		return nil, errors.New("haproxy has no current worker")
	}
	return st.workers, nil
}

// reloadCount is how many times the master reloaded, from show proc.
func (m *master) reloadCount() (int, error) {
	st, err := m.state()
	return st.reloads, err
}

// failedReload waits until the failure has settled, so the answer comes
// when the previous worker serves again: the master answers once more
// (it re-executes itself after a failed load) and the old worker has
// resumed the listeners it paused. Then it reports HAProxy's lines.
func (m *master) failedReload(before procState, capture *lineCapture, reason string) error {
	lines := capture.wait(time.Second)
	deadline := time.Now().Add(masterReexecWait)
	for time.Now().Before(deadline) {
		if st, err := m.stateOnce(); err == nil && st.reloads > before.reloads {
			break
		}
		if !m.running() {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	capture.waitResumed(2 * time.Second)
	return &ReloadError{Reason: reason, Lines: lines}
}

// ReloadError is a reload HAProxy could not complete: the new worker did
// not start. Lines are HAProxy's own messages emitted during the reload.
type ReloadError struct {
	Reason string
	Lines  []string
}

func (e *ReloadError) Error() string {
	if len(e.Lines) == 0 {
		return e.Reason
	}
	return e.Reason + ":\n" + strings.Join(e.Lines, "\n")
}

// reloadTimeout bounds a reload whose outcome the master never reports.
const reloadTimeout = 30 * time.Second

// slowAsk is how often a reload asks the master CLI before the master
// printed the outcome of the load.
const slowAsk = time.Second

// reload asks the master to load the configuration file again and waits
// for the outcome the master reports: a new current worker (its listeners
// are bound by the master before it forks the worker, so a new worker
// means the new listeners are up) or a higher failed-reload count (the
// old worker keeps serving). Listeners pass to the new worker through the
// stats socket's expose-fd; old workers finish their connections.
func (m *master) reload() error {
	before, err := m.state()
	if err != nil {
		return err
	}
	if len(before.workers) == 0 {
		return errors.New("haproxy has no current worker to reload")
	}
	capture := m.out.capture()
	defer m.out.release(capture)
	if _, err := m.command("reload"); err != nil {
		// The master re-executes itself on reload and resets the
		// connection; only a failed dial means the reload was not asked.
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			return fmt.Errorf("ask for a reload: %w", err)
		}
	}
	deadline := time.Now().Add(reloadTimeout)
	// While the new master loads the configuration, connections to its
	// CLI delay the load: with 10,000 mappings, polling every 10 ms made
	// it fork the new worker 3.1-3.3 s after the reload instead of
	// 1.5-2.1 s. The CLI is asked often only once the master printed
	// the load's outcome; until then, rarely, in case the line is lost.
	nextAsk := time.Now().Add(slowAsk)
	for {
		_, exited := m.current()
		if !capture.succeeded() && !capture.finished() && time.Now().Before(nextAsk) {
			select {
			case <-exited:
				return &ReloadError{Reason: "haproxy master exited during the reload", Lines: capture.wait(time.Second)}
			case <-capture.loaded:
			case <-capture.done:
			case <-time.After(time.Until(nextAsk)):
			}
			continue
		}
		nextAsk = time.Now().Add(slowAsk)
		st, err := m.stateOnce()
		if err == nil && st.reloads > before.reloads {
			if len(st.workers) > 0 && st.workers[0].PID != before.workers[0].PID && st.failed == 0 {
				return nil
			}
			if st.failed > 0 {
				return m.failedReload(before, capture, fmt.Sprintf("haproxy could not start the new worker (failed reloads: %d); the previous worker keeps serving", st.failed))
			}
		}
		if capture.finished() {
			// The master printed "Loading failure!" after its alerts.
			return m.failedReload(before, capture, "haproxy could not start the new worker; the previous worker keeps serving")
		}
		if time.Now().After(deadline) {
			return &ReloadError{Reason: fmt.Sprintf("no new worker within %s of the reload", reloadTimeout), Lines: capture.lines()}
		}
		select {
		case <-exited:
			return &ReloadError{Reason: "haproxy master exited during the reload", Lines: capture.wait(time.Second)}
		case <-time.After(10 * time.Millisecond):
		}
	}
}
