package dataplane_test

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
)

// childEnv names the options of a dataplane the test binary runs as a
// child process (see TestMain), so a test can kill -9 a whole dataplane.
const childEnv = "TCPM_DATAPLANE_TEST_CHILD"

// TestMain runs the tests with every answer of the dataplanes they start
// validated against the Data Plane API specification (see specCheck); a
// mismatch, or an endpoint no test exercised, fails the run.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		runChild(spec)
		return
	}
	check, err := newSpecCheck()
	if err != nil {
		fmt.Fprintln(os.Stderr, "load the Data Plane API specification:", err)
		os.Exit(1)
	}
	spec = check
	dataplanetest.Transport = check
	testHTTP.Transport = check
	code := m.Run()
	fullRun := flag.Lookup("test.run").Value.String() == ""
	if problems := check.report(fullRun); len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "%d answers do not conform to the Data Plane API specification:\n", len(problems))
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "  "+strings.ReplaceAll(p, "\n", "\n    "))
		}
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// runChild runs a dataplane with the JSON options in spec, prints its
// API address and serves until killed.
func runChild(spec string) {
	var opt dataplane.Options
	if err := json.Unmarshal([]byte(spec), &opt); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	opt.HAProxyLog, opt.Logger = io.Discard, logr.Discard()
	srv, err := dataplane.New(opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := srv.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Printf("%s %d\n", srv.Addr(), srv.MasterPID())
	select {}
}

// alive reports whether a process with this PID exists (zombies
// aside).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

// groupMembers lists the live processes of process group pgid.
func groupMembers(t *testing.T, pgid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err == nil && g == pgid && alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// TestKilledMasterIsRestartedWithTheStoredConfiguration: kill -9 of the
// HAProxy master; traffic comes back within 5 s with no manual step.
func TestKilledMasterIsRestartedWithTheStoredConfiguration(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	backend := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	port := dataplanetest.FreePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	push(t, inst.Client, relayConfig(port, backend, 0))
	ctx := context.Background()
	_, version, _ := inst.Client.RawConfiguration(ctx)

	old := inst.Server.MasterPID()
	if old == 0 {
		t.Fatal("no master running")
	}
	workers := groupMembers(t, old)
	if len(workers) < 2 {
		t.Fatalf("process group %d holds %v, want the master and its worker", old, workers)
	}
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	dataplanetest.Eventually(t, 5*time.Second, "traffic through a restarted HAProxy", func() bool {
		got, err := dataplanetest.Greeting(addr)
		pid := inst.Server.MasterPID()
		return err == nil && got == "app" && pid != 0 && pid != old
	})
	t.Logf("traffic back %s after kill -9 of the master", time.Since(start).Round(time.Millisecond))
	for _, pid := range workers {
		if alive(pid) {
			t.Errorf("process %d of the killed master's group still runs", pid)
		}
	}
	// The master CLI is away for a moment while a new master re-executes
	// itself, so health and readiness come back shortly after traffic.
	dataplanetest.Eventually(t, 5*time.Second, "health after the restart", func() bool {
		up, err := inst.Client.Health(ctx)
		return err == nil && up
	})
	if _, v, _ := inst.Client.RawConfiguration(ctx); v != version {
		t.Errorf("version after the restart %d, want %d", v, version)
	}
	for _, probe := range []string{"/healthz", "/readyz"} {
		dataplanetest.Eventually(t, 5*time.Second, probe+" after the restart", func() bool {
			resp, err := testHTTP.Get(inst.URL + probe) // no credentials
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
}

// startChild runs a dataplane in a child process (the test binary) on
// the given directories and returns it, its API address and its HAProxy
// master's PID.
func startChild(t *testing.T, opt dataplane.Options) (*exec.Cmd, string, int) {
	t.Helper()
	spec, err := json.Marshal(opt)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child dataplane: %v", err)
	}
	var addr string
	var master int
	if _, err := fmt.Sscanf(line, "%s %d", &addr, &master); err != nil {
		t.Fatalf("child dataplane said %q: %v", line, err)
	}
	return cmd, addr, master
}

// TestRestartedDataplaneNeverLeavesASecondHAProxy: kill -9 of a whole
// dataplane takes its HAProxy down with it (parent-death signal), and a
// dataplane started on the same directories kills a master a previous one
// left (pidfile) before starting its own: only the new one serves.
func TestRestartedDataplaneNeverLeavesASecondHAProxy(t *testing.T) {
	old := dataplanetest.StartBackend(t, "old", "127.0.0.1")
	fresh := dataplanetest.StartBackend(t, "new", "127.0.0.1")
	port := dataplanetest.FreePort(t, "127.0.0.1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	dir := t.TempDir()
	runDir, err := os.MkdirTemp("", "tcpm-run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	opt := dataplane.Options{
		Listen: "127.0.0.1:0", HAProxy: dataplanetest.HAProxyBinary(t),
		Dir: dir, RunDir: runDir, CertDir: filepath.Join(dir, "certs"), BindAddr: "127.0.0.1",
		User: dataplanetest.User, Password: dataplanetest.Password, ReloadDelay: 100 * time.Millisecond,
	}

	// Dataplane A serves "old", then dies with kill -9.
	a, aAddr, aMaster := startChild(t, opt)
	push(t, client.New("http://"+aAddr, dataplanetest.User, dataplanetest.Password, dataplanetest.HTTPClient()), relayConfig(port, old, 0))
	if got, err := dataplanetest.Greeting(addr); err != nil || got != "old" {
		t.Fatalf("through A: %q, %v", got, err)
	}
	aGroup := groupMembers(t, aMaster)
	if err := a.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = a.Wait()
	dataplanetest.Eventually(t, 5*time.Second, "A's HAProxy dies with A", func() bool {
		return len(groupMembers(t, aMaster)) == 0
	})
	t.Logf("A's HAProxy group %v died with A", aGroup)

	// A master that outlived its dataplane (started by hand here, as if
	// the parent-death signal had not reached it) serves "old" on the
	// port and is named in the pidfile.
	leftover := exec.Command(opt.HAProxy, "-W", "-db", "-f", filepath.Join(dir, "haproxy.cfg"))
	leftover.Env = append(os.Environ(), "TCPM_RUN_DIR="+runDir, "TCPM_CERT_DIR="+opt.CertDir, "TCPM_BIND_ADDR=127.0.0.1")
	leftover.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := leftover.Start(); err != nil {
		t.Fatal(err)
	}
	leftoverDone := make(chan struct{})
	go func() { _ = leftover.Wait(); close(leftoverDone) }()
	t.Cleanup(func() { _ = syscall.Kill(-leftover.Process.Pid, syscall.SIGKILL) })
	if err := os.WriteFile(filepath.Join(dir, "haproxy.pid"), []byte(strconv.Itoa(leftover.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dataplanetest.Eventually(t, 5*time.Second, "the leftover HAProxy serves", func() bool {
		got, err := dataplanetest.Greeting(addr)
		return err == nil && got == "old"
	})

	// Dataplane B on the same directories.
	b := dataplanetest.Start(t, "127.0.0.1", func(o *dataplane.Options) { o.Dir, o.RunDir, o.CertDir = opt.Dir, opt.RunDir, opt.CertDir })
	select {
	case <-leftoverDone:
	case <-time.After(5 * time.Second):
		t.Fatal("B did not kill the HAProxy left behind")
	}
	push(t, b.Client, relayConfig(port, fresh, 0))
	if split := dataplanetest.Split(addr, 20); split["new"] != 20 {
		t.Errorf("20 connections after B started: %v, want all to new", split)
	}
}
