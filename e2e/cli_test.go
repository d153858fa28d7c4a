package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cliResult is what one run of the operator binary did.
type cliResult struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// runCLI runs binary with args and env added to this process's
// environment, and returns its exit code and output.
func runCLI(t *testing.T, binary string, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	res := cliResult{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("%s %s: %v", binary, strings.Join(args, " "), err)
	}
	return res
}

// commandsIn reads the command names off the root help, so a command
// added later is covered without touching this test.
func commandsIn(t *testing.T, help string) []string {
	t.Helper()
	_, list, found := strings.Cut(help, "Commands:\n")
	if !found {
		t.Fatalf("the help lists no commands:\n%s", help)
	}
	var names []string
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() && strings.TrimSpace(sc.Text()) != "" {
		names = append(names, strings.Fields(sc.Text())[0])
	}
	return names
}

// TestCLIHelp: --help and -h exit 0 and print the usage with the logging
// flags, for the binary and every command it lists.
func TestCLIHelp(t *testing.T) {
	root := runCLI(t, bed.binary, nil, "--help")
	if root.code != 0 {
		t.Fatalf("--help exited %d:\n%s%s", root.code, root.stdout, root.stderr)
	}
	commands := commandsIn(t, root.stdout)
	for _, want := range []string{"run", "dataplane", "render", "convert"} {
		if !strings.Contains(" "+strings.Join(commands, " ")+" ", " "+want+" ") {
			t.Errorf("the help does not list the command %s: %v", want, commands)
		}
	}
	cases := [][]string{{"--help"}, {"-h"}, {"help"}}
	for _, c := range commands {
		cases = append(cases, []string{c, "--help"}, []string{c, "-h"}, []string{"help", c})
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCLI(t, bed.binary, nil, args...)
			if r.code != 0 {
				t.Fatalf("exit code %d, want 0:\n%s%s", r.code, r.stdout, r.stderr)
			}
			help := r.stdout + r.stderr
			for _, want := range []string{"Usage", "-zap-log-level", "-zap-encoder"} {
				if !strings.Contains(help, want) {
					t.Errorf("the help lacks %q:\n%s", want, help)
				}
			}
			if strings.Contains(help, "flag: help requested") {
				t.Errorf("the help reports itself as an error:\n%s", help)
			}
		})
	}
}

// TestCLIVersion: --version prints the version set at link time, and in
// a development build "dev" and the commit it was built from.
func TestCLIVersion(t *testing.T) {
	dir := t.TempDir()
	release := filepath.Join(dir, "release")
	build(t, "-ldflags", "-X github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/cli.version=v9.8.7-e2e", "-o", release)
	r := runCLI(t, release, nil, "--version")
	if r.code != 0 || r.stdout != "haproxy-tcp-operator v9.8.7-e2e\n" {
		t.Errorf("--version of a release build: exit %d, stdout %q, stderr %q; want 0 and %q", r.code, r.stdout, r.stderr, "haproxy-tcp-operator v9.8.7-e2e\n")
	}

	// A development build: "dev" and the revision the toolchain stamped,
	// read back with go version -m (there is none outside a git checkout,
	// or in a git worktree).
	dev := filepath.Join(dir, "dev")
	build(t, "-buildvcs=auto", "-o", dev)
	info, err := exec.Command("go", "version", "-m", dev).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	want := "haproxy-tcp-operator dev"
	settings := map[string]string{}
	for _, line := range strings.Split(string(info), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "build" {
			k, v, _ := strings.Cut(f[1], "=")
			settings[k] = v
		}
	}
	if rev := settings["vcs.revision"]; rev != "" {
		want += "+" + rev[:12]
		if settings["vcs.modified"] == "true" {
			want += ".dirty"
		}
	} else {
		t.Logf("the toolchain stamped no revision (not a git checkout, or a worktree)")
	}
	r = runCLI(t, dev, nil, "--version")
	if r.code != 0 || r.stdout != want+"\n" {
		t.Errorf("--version of a development build: exit %d, stdout %q; want 0 and %q", r.code, r.stdout, want+"\n")
	}
}

func build(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("go", append(append([]string{"build"}, args...), "../operator/cmd/haproxy-tcp-operator")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", args, err, out)
	}
}

// TestCLIBadCommandLine: an unknown flag, a bad logging flag value or an
// unknown command exit 2 with the usage on stderr.
func TestCLIBadCommandLine(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"run", "--no-such-flag"},
		{"render", "--no-such-flag"},
		{"convert", "--no-such-flag"},
		{"render", "--zap-log-level=loud", "-f", "../deploy/samples"},
		{"no-such-command"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCLI(t, bed.binary, nil, args...)
			if r.code != 2 {
				t.Errorf("exit code %d, want 2:\n%s%s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, "Usage") {
				t.Errorf("no usage on stderr:\n%s", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout should be empty, got:\n%s", r.stdout)
			}
		})
	}
}

// writeKubeconfig writes a kubeconfig for a cluster at server.
func writeKubeconfig(t *testing.T, server string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: down
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: someone
  user: {token: not-a-real-token}
contexts:
- name: down-context
  context: {cluster: down, user: someone}
current-context: down-context
`, server)
	if err := os.WriteFile(f, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestCLIRunUnreachableCluster: with a configured cluster that refuses
// connections or never answers, run fails within seconds, names the
// server, and starts no local cluster. Run with no command says first
// that it runs the operator.
func TestCLIRunUnreachableCluster(t *testing.T) {
	// A port that refuses connections: bound, then closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing := "https://" + l.Addr().String()
	l.Close()
	// A port that accepts connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	silentURL := "https://" + silent.Addr().String()

	const deadline = 15 * time.Second
	for _, tc := range []struct {
		name, server string
		env          func(kubeconfig string) []string
		args         func(kubeconfig string) []string
	}{
		{"refused, --kubeconfig", refusing, nil, func(kc string) []string { return []string{"run", "--kubeconfig", kc} }},
		{"refused, $KUBECONFIG, no command", refusing, func(kc string) []string { return []string{"KUBECONFIG=" + kc} }, nil},
		{"never answers, $KUBECONFIG", silentURL, func(kc string) []string { return []string{"KUBECONFIG=" + kc} }, func(string) []string { return []string{"run"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc := writeKubeconfig(t, tc.server)
			var env, args []string
			if tc.env != nil {
				env = tc.env(kc)
			}
			if tc.args != nil {
				args = tc.args(kc)
			}
			// Out of a Pod, whatever this test runs in.
			env = append(env, "KUBERNETES_SERVICE_HOST=")
			r := runCLI(t, bed.binary, env, args...)
			t.Logf("exit %d after %s; stderr:\n%s", r.code, r.took.Round(time.Millisecond), r.stderr)
			if r.code != 1 {
				t.Errorf("exit code %d, want 1", r.code)
			}
			if r.took > deadline {
				t.Errorf("took %s, want under %s", r.took, deadline)
			}
			for _, want := range []string{"cluster " + tc.server, "does not answer", "--local"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q", want)
				}
			}
			for _, unwanted := range []string{"local cluster (", "Starting a local", "stacktrace", "Local cluster:"} {
				if strings.Contains(r.stderr+r.stdout, unwanted) {
					t.Errorf("output has %q: a configured cluster must not be replaced by a local one, nor fail with a stack trace", unwanted)
				}
			}
			if len(args) == 0 {
				first, _, _ := strings.Cut(r.stderr, "\n")
				if !strings.Contains(first, "No command given") || !strings.Contains(first, "run") {
					t.Errorf("the first log line does not say that it runs the operator: %s", first)
				}
			}
		})
	}
}

// TestCLILoggingFlags: the zap flags change the log format, before or
// after the command name.
func TestCLILoggingFlags(t *testing.T) {
	kc := writeKubeconfig(t, "https://127.0.0.1:1")
	for _, args := range [][]string{
		{"run", "--kubeconfig", kc, "--zap-encoder=console"},
		{"--zap-encoder", "console", "run", "--kubeconfig", kc},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCLI(t, bed.binary, []string{"KUBERNETES_SERVICE_HOST="}, append(args, "--zap-log-level=debug")...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1 (unreachable cluster):\n%s", r.code, r.stderr)
			}
			if strings.Contains(r.stderr, `{"level"`) || !strings.Contains(r.stderr, "\tINFO\t") {
				t.Errorf("want console-encoded logs, got:\n%s", r.stderr)
			}
		})
	}
	r := runCLI(t, bed.binary, []string{"KUBERNETES_SERVICE_HOST="}, "run", "--kubeconfig", kc, "--zap-log-level=error")
	if strings.Contains(r.stderr, `"level":"info"`) {
		t.Errorf("--zap-log-level=error still logs info lines:\n%s", r.stderr)
	}
}

// TestCLIRunWithoutCluster: the shipped binary, with no cluster
// configured, says so at once and names the development build, which
// offers the local cluster (--local) that make run starts.
func TestCLIRunWithoutCluster(t *testing.T) {
	env := []string{"KUBECONFIG=" + filepath.Join(t.TempDir(), "missing"), "KUBERNETES_SERVICE_HOST=", "HOME=" + t.TempDir()}
	r := runCLI(t, bed.binary, env, "run")
	if r.code != 1 || r.took > 15*time.Second {
		t.Errorf("exit %d after %s, want 1 within 15s:\n%s", r.code, r.took, r.stderr)
	}
	for _, want := range []string{"no cluster configured", "haproxy-tcp-operator-dev"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if help := runCLI(t, bed.binary, nil, "run", "--help"); strings.Contains(help.stdout, "-local") {
		t.Errorf("the shipped binary offers --local:\n%s", help.stdout)
	}

	dev := filepath.Join(t.TempDir(), "haproxy-tcp-operator-dev")
	cmd := exec.Command("go", "build", "-o", dev, "../operator/cmd/haproxy-tcp-operator-dev")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the development binary: %v\n%s", err, out)
	}
	help := runCLI(t, dev, nil, "run", "--help")
	for _, want := range []string{"Usage: haproxy-tcp-operator-dev run", "-local", "-k8s-assets", "-zap-log-level"} {
		if help.code != 0 || !strings.Contains(help.stdout, want) {
			t.Errorf("haproxy-tcp-operator-dev run --help: exit %d, lacks %q:\n%s", help.code, want, help.stdout)
		}
	}
}
