package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// kubectlK8s runs the kubectl that make test-deps puts in bin/k8s beside
// the API server, against the test cluster.
func kubectlK8s(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	bin, err := filepath.Abs("../bin/k8s/kubectl")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no kubectl in bin/k8s (make test-deps puts it there): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", cluster.kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// table is kubectl's tabular output: the header and each row's cells by
// column name.
type table struct {
	header []string
	rows   []map[string]string
}

var headerWord = regexp.MustCompile(`\S+`)

// parseTable cuts rows at the header's column offsets, so empty cells
// (a column whose field is unset) stay in their column.
func parseTable(t *testing.T, out string) table {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatalf("kubectl printed no table: %q", out)
	}
	var tab table
	offsets := headerWord.FindAllStringIndex(lines[0], -1)
	for _, o := range offsets {
		tab.header = append(tab.header, lines[0][o[0]:o[1]])
	}
	for _, line := range lines[1:] {
		row := map[string]string{}
		for i, o := range offsets {
			end := len(line)
			if i+1 < len(offsets) && offsets[i+1][0] < end {
				end = offsets[i+1][0]
			}
			if o[0] < end {
				row[tab.header[i]] = strings.TrimSpace(line[o[0]:end])
			}
		}
		tab.rows = append(tab.rows, row)
	}
	return tab
}

func (tab table) row(t *testing.T, name string) map[string]string {
	t.Helper()
	for _, r := range tab.rows {
		if r["NAME"] == name {
			return r
		}
	}
	t.Fatalf("no row %s in %v", name, tab.rows)
	return nil
}

// TestKubectlGet: what a user sees with the real kubectl. `kubectl get
// haproxy` lists only HAProxies (the CRDs' category is haproxy-operator,
// not the HAProxy kind's singular name); `kubectl get haproxy-operator`
// lists all three kinds; hap, tcpm and tlsctx show their printer columns
// with values.
func TestKubectlGet(t *testing.T) {
	ns := newNamespace(t, nil)
	kubectlK8s(t, fmt.Sprintf(`apiVersion: haproxy-operator.io/v1alpha1
kind: HAProxy
metadata: {name: edge, namespace: %[1]s}
spec: {replicas: 1, serviceType: ClusterIP}
---
apiVersion: haproxy-operator.io/v1alpha1
kind: TCPMapping
metadata: {name: plain, namespace: %[1]s}
spec: {port: 3391, service: "127.0.0.1:9", weight: 40}
---
apiVersion: haproxy-operator.io/v1alpha1
kind: TCPMapping
metadata: {name: terminated, namespace: %[1]s}
spec: {port: 3392, service: "127.0.0.1:9", tls: web-cert, host: www.example.com}
---
apiVersion: haproxy-operator.io/v1alpha1
kind: TLSContext
metadata: {name: web-cert, namespace: %[1]s}
spec: {secret: web-cert-secret, hosts: [www.example.com]}
`, ns), "apply", "-f", "-")
	t.Cleanup(func() {
		// Stop the instance the operator started for this test.
		hap := &v1alpha1.HAProxy{}
		hap.Name, hap.Namespace = "edge", ns
		_ = cluster.client.Delete(context.Background(), hap)
	})

	t.Run("haproxy lists only HAProxies", func(t *testing.T) {
		names := strings.Fields(kubectlK8s(t, "", "get", "haproxy", "-n", ns, "-o", "name"))
		if strings.Join(names, " ") != "haproxy.haproxy-operator.io/edge" {
			t.Errorf("kubectl get haproxy -o name = %v, want only haproxy.haproxy-operator.io/edge", names)
		}
		byName := parseTable(t, kubectlK8s(t, "", "get", "haproxy", "-n", ns))
		byShort := parseTable(t, kubectlK8s(t, "", "get", "hap", "-n", ns))
		if strings.Join(byName.header, " ") != strings.Join(byShort.header, " ") || len(byName.rows) != 1 {
			t.Errorf("kubectl get haproxy printed %v with %d rows, want the HAProxy table %v with one row", byName.header, len(byName.rows), byShort.header)
		}
	})

	t.Run("haproxy-operator lists all three kinds", func(t *testing.T) {
		names := strings.Fields(kubectlK8s(t, "", "get", "haproxy-operator", "-n", ns, "-o", "name"))
		sort.Strings(names)
		want := []string{
			"haproxy.haproxy-operator.io/edge",
			"tcpmapping.haproxy-operator.io/plain",
			"tcpmapping.haproxy-operator.io/terminated",
			"tlscontext.haproxy-operator.io/web-cert",
		}
		if strings.Join(names, " ") != strings.Join(want, " ") {
			t.Errorf("kubectl get haproxy-operator -o name = %v, want %v", names, want)
		}
	})

	t.Run("hap columns", func(t *testing.T) {
		want := "NAME REPLICAS READY PROGRAMMED ACCEPTED REJECTED AGE"
		// The status columns fill in once the operator has reconciled
		// and the instance is ready.
		eventually(t, 90*time.Second, "kubectl get hap shows the instance ready", func() error {
			tab := parseTable(t, kubectlK8s(t, "", "get", "hap", "-n", ns))
			if got := strings.Join(tab.header, " "); got != want {
				return fmt.Errorf("columns %q, want %q", got, want)
			}
			r := tab.row(t, "edge")
			if r["REPLICAS"] != "1" || r["READY"] != "1" || r["ACCEPTED"] == "" || r["AGE"] == "" {
				return fmt.Errorf("row %v, want REPLICAS 1, READY 1, ACCEPTED and AGE set", r)
			}
			return nil
		})
	})

	t.Run("tcpm columns", func(t *testing.T) {
		want := "NAME PORT HOST SERVICE WEIGHT TLS ACCEPTED PROGRAMMED AGE"
		eventually(t, 90*time.Second, "kubectl get tcpm shows the mappings accepted", func() error {
			tab := parseTable(t, kubectlK8s(t, "", "get", "tcpm", "-n", ns))
			if got := strings.Join(tab.header, " "); got != want {
				return fmt.Errorf("columns %q, want %q", got, want)
			}
			plain, terminated := tab.row(t, "plain"), tab.row(t, "terminated")
			for _, c := range []struct {
				row       map[string]string
				col, want string
			}{
				{plain, "PORT", "3391"}, {plain, "SERVICE", "127.0.0.1:9"}, {plain, "WEIGHT", "40"},
				{plain, "HOST", ""}, {plain, "TLS", ""},
				{terminated, "PORT", "3392"}, {terminated, "HOST", "www.example.com"}, {terminated, "TLS", "web-cert"},
				{plain, "ACCEPTED", "True"},
			} {
				if c.row[c.col] != c.want {
					return fmt.Errorf("%s of %s = %q, want %q (rows %v)", c.col, c.row["NAME"], c.row[c.col], c.want, tab.rows)
				}
			}
			if terminated["ACCEPTED"] == "" {
				return fmt.Errorf("ACCEPTED of terminated is empty")
			}
			return nil
		})
	})

	t.Run("tlsctx columns", func(t *testing.T) {
		tab := parseTable(t, kubectlK8s(t, "", "get", "tlsctx", "-n", ns))
		if got, want := strings.Join(tab.header, " "), "NAME SECRET HOSTS EXPIRES RESOLVED AGE"; got != want {
			t.Errorf("columns %q, want %q", got, want)
		}
		r := tab.row(t, "web-cert")
		if r["SECRET"] != "web-cert-secret" || !strings.Contains(r["HOSTS"], "www.example.com") {
			t.Errorf("row %v, want SECRET web-cert-secret and HOSTS www.example.com", r)
		}
	})
}
