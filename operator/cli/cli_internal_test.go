package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

func TestSplitLoggingFlags(t *testing.T) {
	for _, tc := range []struct {
		args          []string
		logArgs, rest string
	}{
		{[]string{"run", "--local"}, "", "run --local"},
		{[]string{"--zap-log-level=debug", "run"}, "--zap-log-level=debug", "run"},
		{[]string{"--zap-log-level", "debug", "run", "--local"}, "--zap-log-level debug", "run --local"},
		{[]string{"run", "-zap-devel", "--local"}, "-zap-devel", "run --local"},
		{[]string{"run", "--zap-encoder", "console", "--kubeconfig", "k"}, "--zap-encoder console", "run --kubeconfig k"},
		// A value-less flag at the end is left to the parser to refuse.
		{[]string{"run", "--zap-encoder"}, "--zap-encoder", "run"},
		// After "--" nothing is a flag.
		{[]string{"convert", "--", "--zap-devel"}, "", "convert -- --zap-devel"},
		// Not a logging flag, even if it looks close.
		{[]string{"--zap", "zap-devel"}, "", "--zap zap-devel"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			logArgs, rest := splitLoggingFlags(loggingFlags(&zap.Options{}), tc.args)
			if got := strings.Join(logArgs, " "); got != tc.logArgs {
				t.Errorf("logging args %q, want %q", got, tc.logArgs)
			}
			if got := strings.Join(rest, " "); got != tc.rest {
				t.Errorf("rest %q, want %q", got, tc.rest)
			}
		})
	}
}

func TestMainExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		stdout   string // substring
		stderr   string // substring
		noStdout bool
	}{
		{args: []string{"--help"}, code: 0, stdout: "Commands:"},
		{args: []string{"-h"}, code: 0, stdout: "Commands:"},
		{args: []string{"help"}, code: 0, stdout: "Commands:"},
		{args: []string{"help", "render"}, code: 0, stdout: "Usage: haproxy-tcp-operator render"},
		{args: []string{"render", "--help"}, code: 0, stdout: "-zap-log-level"},
		{args: []string{"convert", "-h"}, code: 0, stdout: "-namespace"},
		{args: []string{"run", "-h"}, code: 0, stdout: "-kubeconfig"},
		{args: []string{"dataplane", "--help"}, code: 0, stdout: "-zap-log-level"},
		{args: []string{"dataplane", "--bogus"}, code: 2, stderr: "flag provided but not defined: -bogus", noStdout: true},
		{args: []string{"--version"}, code: 0, stdout: "haproxy-tcp-operator dev"},
		{args: []string{"render", "--bogus"}, code: 2, stderr: "flag provided but not defined: -bogus", noStdout: true},
		{args: []string{"run", "--bogus"}, code: 2, stderr: "Usage: haproxy-tcp-operator run", noStdout: true},
		{args: []string{"run", "extra"}, code: 2, stderr: `unexpected argument "extra"`, noStdout: true},
		{args: []string{"--zap-log-level=loud", "render"}, code: 2, stderr: "Commands:", noStdout: true},
		{args: []string{"nope"}, code: 2, stderr: `unknown command "nope"`, noStdout: true},
		{args: []string{"render"}, code: 1, stderr: "no input", noStdout: true},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr.String())
			}
			if tc.noStdout && stdout.Len() > 0 {
				t.Errorf("stdout should be empty:\n%s", stdout.String())
			}
		})
	}
}

func TestVersionSetAtLinkTime(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "v1.2.3"
	var stdout bytes.Buffer
	if code := Main(context.Background(), []string{"--version"}, &stdout, &bytes.Buffer{}); code != 0 || stdout.String() != "haproxy-tcp-operator v1.2.3\n" {
		t.Errorf("--version: exit %d, %q", code, stdout.String())
	}
}

func TestFindCluster(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://192.0.2.1:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")

	for _, tc := range []struct {
		name        string
		flag        string
		env         map[string]string
		wantNone    bool
		wantServer  string
		wantFrom    string
		wantErrPart string
	}{
		{name: "$KUBECONFIG names no existing file", env: map[string]string{"KUBECONFIG": missing, "KUBERNETES_SERVICE_HOST": ""}, wantNone: true},
		{name: "$KUBECONFIG", env: map[string]string{"KUBECONFIG": missing + ":" + kubeconfig, "KUBERNETES_SERVICE_HOST": ""},
			wantServer: "https://192.0.2.1:6443", wantFrom: "kubeconfig " + kubeconfig + ", context ctx"},
		{name: "--kubeconfig", flag: kubeconfig, env: map[string]string{"KUBECONFIG": missing},
			wantServer: "https://192.0.2.1:6443", wantFrom: "--kubeconfig " + kubeconfig + ", context ctx"},
		{name: "--kubeconfig names no file", flag: missing, wantErrPart: missing},
		{name: "an empty kubeconfig is an error, not none", env: map[string]string{"KUBECONFIG": empty, "KUBERNETES_SERVICE_HOST": ""}, wantErrPart: "kubeconfig " + empty},
		// In a Pod without a service account token.
		{name: "in a Pod", env: map[string]string{"KUBECONFIG": "", "KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}, wantErrPart: "in-cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := findCluster(tc.flag)
			switch {
			case tc.wantErrPart != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErrPart) {
					t.Fatalf("err %v, want one naming %q", err, tc.wantErrPart)
				}
			case err != nil:
				t.Fatal(err)
			case tc.wantNone:
				if c != nil {
					t.Fatalf("found %s (%s), want none", c.config.Host, c.from)
				}
			case c == nil:
				t.Fatal("found none")
			default:
				if c.config.Host != tc.wantServer || c.from != tc.wantFrom {
					t.Errorf("found %s (%s), want %s (%s)", c.config.Host, c.from, tc.wantServer, tc.wantFrom)
				}
			}
		})
	}
}

func TestMetricsURL(t *testing.T) {
	for addr, want := range map[string]string{
		":8443":          "https://localhost:8443/metrics",
		"0.0.0.0:8080":   "https://localhost:8080/metrics",
		"127.0.0.1:9090": "https://127.0.0.1:9090/metrics",
		"[::1]:8080":     "https://[::1]:8080/metrics",
		"0":              "",
		"":               "",
		"not an address": "",
	} {
		if got := metricsURL(addr); got != want {
			t.Errorf("metricsURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestRunWithoutClusterInTheShippedBinary: with no cluster configured and
// no local cluster linked in, run says what to do instead of starting
// anything.
func TestRunWithoutClusterInTheShippedBinary(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "missing"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), []string{"run"}, &stdout, &stderr); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	for _, want := range []string{"no cluster configured", "--kubeconfig", "haproxy-tcp-operator-dev"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	var help bytes.Buffer
	Main(context.Background(), []string{"run", "--help"}, &help, &bytes.Buffer{})
	if strings.Contains(help.String(), "-local") {
		t.Errorf("the shipped binary offers --local:\n%s", help.String())
	}
}

func TestGCPercentToSet(t *testing.T) {
	for _, tc := range []struct {
		name      string
		flagGiven bool
		flagValue int
		gogc      string
		want      int
		set       bool
		err       string
	}{
		{"neither: the operator's default", false, defaultGCPercent, "", defaultGCPercent, true, ""},
		{"GOGC alone: Go applied it", false, defaultGCPercent, "200", 0, false, ""},
		{"GOGC=off alone", false, defaultGCPercent, "off", 0, false, ""},
		{"the flag alone", true, 80, "", 80, true, ""},
		{"the flag wins over GOGC", true, 80, "200", 80, true, ""},
		{"zero refused", true, 0, "", 0, false, "--gc-percent: 0 is not a percentage above 0"},
		{"negative refused, not read as off", true, -1, "200", 0, false, "--gc-percent: -1 is not a percentage above 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, set, err := gcPercentToSet(tc.flagGiven, tc.flagValue, tc.gogc)
			if gotErr := fmt.Sprint(err); tc.err != "" && gotErr != tc.err || tc.err == "" && err != nil {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if got != tc.want || set != tc.set {
				t.Errorf("gcPercentToSet(%v, %d, %q) = %d, %v; want %d, %v", tc.flagGiven, tc.flagValue, tc.gogc, got, set, tc.want, tc.set)
			}
		})
	}
}

func TestRunRefusesOutOfRangeFlags(t *testing.T) {
	for _, tc := range []struct{ flag, want string }{
		{"--gc-percent=-5", "--gc-percent: -5 is not a percentage above 0"},
		{"--reload-interval=-1s", "--reload-interval: -1s is negative"},
	} {
		var stderr bytes.Buffer
		code := Main(context.Background(), []string{"run", tc.flag, "--kubeconfig=/nonexistent"}, &bytes.Buffer{}, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("run %s: exit %d, stderr %q", tc.flag, code, stderr.String())
		}
	}
}
