package compat_test

import (
	"fmt"
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

func TestMain(m *testing.M) {
	dataplanetest.RunReloadHelper()
	os.Exit(m.Run())
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
		p, err := dataplanetest.ShowProc(master)
		return err == nil && len(p.Workers) > 0
	})

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	port := int(freePort(t))
	reload := fmt.Sprintf("%s %s %s", self, master, logFile)
	yaml := dataplanetest.OfficialConfig{
		Host: "127.0.0.1", Port: port, User: "admin", Password: "compat-password", Dir: dir,
		HAProxyConfig: cfg, HAProxyBinary: dataplanetest.HAProxyBinary(t), ReloadCmd: reload,
	}.YAML()
	if err := os.WriteFile(filepath.Join(dir, "dataplaneapi.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	api := exec.Command(bin, "-f", filepath.Join(dir, "dataplaneapi.yaml"))
	api.Env = append(env, dataplanetest.ReloadHelperEnv+"=1")
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
