package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/cli"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/internal/golden"
)

// TestRenderSamplesPassesHAProxyCheck runs `render -f deploy/samples/` as a
// user would and has Debian's haproxy check what it printed.
func TestRenderSamplesPassesHAProxyCheck(t *testing.T) {
	certDir, mapDir := t.TempDir(), t.TempDir()
	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), []string{"render", "-f", "../../deploy/samples/", "--cert-dir", certDir, "--map-dir", mapDir}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("render exited %d: %s", code, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("the samples should all be accepted, got on stderr:\n%s", stderr.String())
	}
	cfg := stdout.String()
	for _, want := range []string{"listen tcpm-be-default:qotm-mapping", "frontend tcpm-fe-2223", "frontend tcpm-fe-2224", "frontend tcpm-fe-2225",
		"ssl_fc_sni,lower", "tcpm-fe-2225-hosts.map"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("rendered samples lack %q", want)
		}
	}
	certs := map[string][]byte{}
	entries, err := os.ReadDir(certDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(certDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		certs[e.Name()] = b
	}
	if len(certs) != 1 {
		t.Errorf("want the one certificate of TLSContext some-context, got %d files", len(certs))
	}
	hosts, err := os.ReadFile(filepath.Join(mapDir, "tcpm-fe-2225-hosts.map"))
	if err != nil {
		t.Fatalf("the host map of port 2225 was not written: %v", err)
	}
	for _, host := range []string{"host1 ", "host2 "} {
		if !strings.Contains(string(hosts), host) {
			t.Errorf("host map lacks %q:\n%s", host, hosts)
		}
	}
	maps := map[string][]byte{}
	entries, err = os.ReadDir(mapDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(mapDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		maps[e.Name()] = b
	}
	golden.CheckHAProxyFiles(t, stdout.Bytes(), certs, maps)
}

// TestRenderReportsRejectionsOnStderr: a conflicting mapping is named on
// stderr with its reason, and the winner still renders.
func TestRenderReportsRejectionsOnStderr(t *testing.T) {
	dir := t.TempDir()
	input := `apiVersion: haproxy-operator.io/v1alpha1
kind: TCPMapping
metadata: {name: first, namespace: default, creationTimestamp: "2026-01-01T00:00:00Z"}
spec: {port: 2222, service: "10.0.0.1:80"}
---
apiVersion: haproxy-operator.io/v1alpha1
kind: TCPMapping
metadata: {name: second, namespace: default, creationTimestamp: "2026-01-02T00:00:00Z"}
spec: {port: 2222, host: example.com, service: "10.0.0.2:443"}
`
	if err := os.WriteFile(filepath.Join(dir, "m.yaml"), []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := cli.Main(context.Background(), []string{"render", "-f", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("render exited %d: %s", code, stderr.String())
	}
	want := "TCPMapping default/second rejected: Conflict: port 2222 is owned by TCPMapping default/first"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
	}
	if !strings.Contains(stdout.String(), "server default:first:1 10.0.0.1:80 weight 1") {
		t.Errorf("the winner is not rendered:\n%s", stdout.String())
	}
	golden.CheckHAProxyConfig(t, stdout.Bytes(), nil)
}

func TestRenderWithoutInputFails(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := cli.Main(context.Background(), []string{"render"}, &stdout, &stderr); code == 0 {
		t.Fatal("render with no input succeeded")
	}
	if !strings.Contains(stderr.String(), "no input") {
		t.Errorf("stderr = %q, want it to say there is no input", stderr.String())
	}
}
