package dataplanetest

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

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
)

// Official is a running official dataplaneapi with the HAProxy it drives.
type Official struct {
	// URL is the API's base URL (http://host:port).
	URL            string
	User, Password string
	// Dir holds haproxy.cfg and the API's storage directories (maps,
	// certs, general, ...); MasterSocket is HAProxy's master CLI.
	Dir, MasterSocket string
	Client            *client.Client
}

// StartOfficial starts HAProxy in master-worker mode and the official
// dataplaneapi binary bin driving it (OfficialConfig), with the test
// binary as its reload command: the test binary's TestMain must call
// RunReloadHelper. Both are stopped when the test ends.
func StartOfficial(t testing.TB, bin string) *Official {
	t.Helper()
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
`, dir, FreePort(t, "127.0.0.1"))), 0o644); err != nil {
		t.Fatal(err)
	}
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
	haproxy := exec.Command(HAProxyBinary(t), "-W", "-S", master+",mode,600", "-f", cfg)
	haproxy.Env, haproxy.Stdout, haproxy.Stderr = env, log, log
	haproxy.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := haproxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopGroup(haproxy) })
	Eventually(t, 10*time.Second, "HAProxy runs a worker", func() bool {
		p, err := ShowProc(master)
		return err == nil && len(p.Workers) > 0
	})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	port := FreePort(t, "127.0.0.1")
	o := &Official{
		URL:  "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		User: "admin", Password: "official-password", Dir: dir, MasterSocket: master,
	}
	yaml := OfficialConfig{
		Host: "127.0.0.1", Port: port, User: o.User, Password: o.Password, Dir: dir,
		HAProxyConfig: cfg, HAProxyBinary: HAProxyBinary(t), ReloadCmd: fmt.Sprintf("%s %s %s", self, master, logFile),
	}.YAML()
	if err := os.WriteFile(filepath.Join(dir, "dataplaneapi.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	api := exec.Command(bin, "-f", filepath.Join(dir, "dataplaneapi.yaml"))
	api.Env = append(env, ReloadHelperEnv+"=1")
	api.Stdout, api.Stderr = log, log
	api.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := api.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopGroup(api)
		if t.Failed() {
			for _, f := range []string{"haproxy.log", "dataplaneapi.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					t.Logf("%s:\n%s", f, b)
				}
			}
		}
	})
	Eventually(t, 30*time.Second, "the official Data Plane API answers", func() bool {
		req, _ := http.NewRequest(http.MethodGet, o.URL+"/v2/info", nil)
		req.SetBasicAuth(o.User, o.Password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	o.Client = client.New(o.URL, o.User, o.Password, HTTPClient())
	return o
}

// stopGroup ends a process a test started, by its own process group.
func stopGroup(cmd *exec.Cmd) {
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
