package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestREADMEQuickStart runs the README's quick start block, as a new user
// would paste it into a shell at the top of a fresh clone, and checks that
// a connection went through HAProxy to the demo backend.
func TestREADMEQuickStart(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, found := strings.Cut(string(readme), "<!-- quickstart:begin -->\n```sh\n")
	if !found {
		t.Fatal("README has no quick start block")
	}
	script, _, found := strings.Cut(rest, "```\n<!-- quickstart:end -->")
	if !found {
		t.Fatal("the quick start block does not end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script)
	cmd.Dir = ".."
	// A new user's shell: no kubeconfig pointing at the test cluster.
	cmd.Env = append(os.Environ(), "KUBECONFIG=/nonexistent/kubeconfig")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("quick start output:\n%s", out.String())
	if err != nil {
		t.Fatalf("the quick start failed: %v", err)
	}
	if !strings.Contains(out.String(), "\nqotm\n") {
		t.Error("the quick start's connection did not reach the qotm backend")
	}
	// Step 4 stopped everything it started.
	if c, err := net.DialTimeout("tcp", "127.0.0.10:3333", time.Second); err == nil {
		c.Close()
		t.Error("HAProxy still listens after the quick start stopped it")
	}
	// The newcomer's log: the operator's metrics URL, and no stack trace
	// on the normal path.
	log, err := os.ReadFile("../run.log")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "Operator metrics: https://127.0.0.1:") {
		t.Errorf("run.log does not print the operator's metrics URL:\n%s", log)
	}
	for _, trace := range []string{"stacktrace", "goroutine ", "panic:", ".go:"} {
		if strings.Contains(string(log), trace) {
			t.Errorf("run.log has %q, a stack trace on the normal path:\n%s", trace, log)
		}
	}
	_ = os.Remove("../run.log")
}
