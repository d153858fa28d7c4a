package compat_test

import (
	"bufio"
	"errors"
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

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
)

// reloadHelperEnv makes the test binary act as the official API's reload
// command: HAProxy 2.6's master CLI "reload" answers before the new
// worker runs and says nothing of a failure, so the helper waits for a
// new worker, or for the master's failed-reload count to grow.
const reloadHelperEnv = "COMPAT_RELOAD_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(reloadHelperEnv) == "1" && len(os.Args) == 3 {
		if err := reloadThroughMaster(os.Args[1], os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// masterCommand sends one command to the master CLI and reads the answer.
func masterCommand(socket, cmd string) (string, error) {
	c, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", err
	}
	// The 2.6 master CLI answers in full only once the request side is
	// closed.
	_ = c.(*net.UnixConn).CloseWrite()
	b, err := io.ReadAll(c)
	return string(b), err
}

// processes is what show proc says: failed reloads and worker PIDs.
type processes struct {
	failed  int
	workers map[string]bool
}

func showProc(socket string) (processes, error) {
	out, err := masterCommand(socket, "show proc")
	if err != nil {
		return processes{}, err
	}
	p := processes{failed: -1, workers: map[string]bool{}}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[1] {
		case "master":
			if _, after, ok := strings.Cut(line, "[failed: "); ok {
				n, _, _ := strings.Cut(after, "]")
				p.failed, _ = strconv.Atoi(n)
			}
		case "worker":
			p.workers[f[0]] = true
		}
	}
	if p.failed < 0 {
		return p, fmt.Errorf("unexpected show proc answer: %q", out)
	}
	return p, nil
}

func reloadThroughMaster(socket, logFile string) error {
	before, err := showProc(socket)
	if err != nil {
		return fmt.Errorf("show proc before the reload: %w", err)
	}
	var logSize int64
	if st, err := os.Stat(logFile); err == nil {
		logSize = st.Size()
	}
	_, _ = masterCommand(socket, "reload")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling a process outside Go
		now, err := showProc(socket)
		if err != nil {
			continue // the master is re-executing
		}
		if now.failed > before.failed {
			msg := "reload failed"
			if b, err := os.ReadFile(logFile); err == nil && int64(len(b)) > logSize {
				msg += ":\n" + string(b[logSize:])
			}
			return errors.New(msg)
		}
		for pid := range now.workers {
			if !before.workers[pid] {
				return nil
			}
		}
	}
	return errors.New("no new worker within 30s")
}

// startOfficial starts HAProxy in master-worker mode and the Data Plane
// API binary bin (the official dataplaneapi) driving it, as its
// documentation describes, with this binary as the reload command.
func startOfficial(t testing.TB, tg *target, bin string) {
	t.Helper()
	// UNIX socket paths are short: a directory under /tmp.
	dir, err := os.MkdirTemp("", "tcpm-official-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"certs", "run", "general", "maps", "spoe", "transactions", "spoe-transactions", "backups"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	master := filepath.Join(dir, "master.sock")
	logFile := filepath.Join(dir, "haproxy.log")
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global
    master-worker
    stats socket %s/run/haproxy.sock mode 600 level admin expose-fd listeners
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend placeholder
    bind 127.0.0.1:%d
`, dir, freePort(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	// Nothing of the operator's environment is set: the applier finds
	// the directories in the API's answers and in this configuration's
	// stats socket line, and writes them in.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TCPM_") {
			env = append(env, kv)
		}
	}
	log, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	haproxy := exec.Command(dataplanetest.HAProxyBinary(t), "-W", "-S", master+",mode,600", "-f", cfg)
	haproxy.Env, haproxy.Stdout, haproxy.Stderr = env, log, log
	haproxy.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := haproxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(haproxy) })
	dataplanetest.Eventually(t, 10*time.Second, "HAProxy runs a worker", func() bool {
		p, err := showProc(master)
		return err == nil && len(p.workers) > 0
	})

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	port := int(freePort(t))
	reload := fmt.Sprintf("%s %s %s", self, master, logFile)
	yaml := fmt.Sprintf(`name: compat
dataplaneapi:
  host: 127.0.0.1
  port: %d
  scheme: [http]
  user:
  - name: admin
    insecure: true
    password: compat-password
  transaction:
    transaction_dir: %[2]s/transactions
    backups_dir: %[2]s/backups
  resources:
    maps_dir: %[2]s/maps
    ssl_certs_dir: %[2]s/certs
    general_storage_dir: %[2]s/general
    spoe_dir: %[2]s/spoe
    spoe_transaction_dir: %[2]s/spoe-transactions
haproxy:
  config_file: %[3]s
  haproxy_bin: %[4]s
  reload:
    reload_strategy: custom
    reload_delay: 1
    reload_cmd: %[5]s
    restart_cmd: %[5]s
log:
  log_to: file
  log_file: %[2]s/dataplaneapi.log
  log_level: info
`, port, dir, cfg, dataplanetest.HAProxyBinary(t), reload)
	if err := os.WriteFile(filepath.Join(dir, "dataplaneapi.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	api := exec.Command(bin, "-f", filepath.Join(dir, "dataplaneapi.yaml"))
	api.Env = append(env, reloadHelperEnv+"=1")
	api.Stdout, api.Stderr = log, log
	api.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := api.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop(api)
		if t.Failed() {
			for _, f := range []string{"haproxy.log", "dataplaneapi.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					t.Logf("%s:\n%s", f, tailLines(string(b), 30))
				}
			}
		}
	})
	tg.endpoint = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	tg.user, tg.pass = "admin", "compat-password"
	tg.reloads = func() (int, error) { return masterReloads(master) }
	dataplanetest.Eventually(t, 30*time.Second, "the Data Plane API answers", func() bool {
		req, _ := http.NewRequest(http.MethodGet, tg.endpoint+"/v2/info", nil)
		req.SetBasicAuth(tg.user, tg.pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// stop ends a process this suite started, by its own process group.
func stop(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
