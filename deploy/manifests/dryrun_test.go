package manifests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// startAPIServer starts kube-apiserver and etcd from bin/k8s (make
// test-deps) and returns a kubeconfig file of an administrator.
func startAPIServer(t *testing.T) string {
	t.Helper()
	assets, err := filepath.Abs("../../bin/k8s")
	if err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	if _, err := env.Start(); err != nil {
		t.Fatalf("start kube-apiserver and etcd from %s (make test-deps builds them): %v", assets, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop the API server: %v", err)
		}
	})
	user, err := env.AddUser(envtest.User{Name: "manifests-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runKubectl(t *testing.T, kubeconfig, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlBinary(), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func stream(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	var b strings.Builder
	for _, o := range objs {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.String()
}

// TestHelmAndKustomizeServerSideDryRun has the real API server validate
// both renderings as kubectl apply --server-side would send them: schema,
// CRD structural rules and RBAC escalation checks run; nothing is stored.
func TestHelmAndKustomizeServerSideDryRun(t *testing.T) {
	kubeconfig := startAPIServer(t)
	// Namespaced objects need their namespace to exist, and a dry-run
	// namespace does not; it is the only object stored.
	if out, err := runKubectl(t, kubeconfig, "", "create", "namespace", namespace); err != nil {
		t.Fatalf("kubectl create namespace: %v\n%s", err, out)
	}
	renderings := map[string][]*unstructured.Unstructured{
		"kubectl kustomize deploy/default":    kustomize(t, "../default"),
		"kubectl kustomize deploy/namespaced": kustomize(t, "../namespaced"),
		"the Helm chart":                      helmTemplate(t, map[string]any{"createNamespace": true}),
	}
	for name, objs := range renderings {
		t.Run(name, func(t *testing.T) {
			out, err := runKubectl(t, kubeconfig, stream(t, objs), "apply", "--server-side", "--dry-run=server", "--field-manager=manifests-test", "-f", "-")
			if err != nil {
				t.Fatalf("the API server refuses %s: %v\n%s", name, err, out)
			}
			for _, o := range objs {
				// kubectl prints kind.group/name for each object it applied.
				if !strings.Contains(out, "/"+o.GetName()+" serverside-applied (server dry run)") {
					t.Errorf("no dry-run apply of %s in kubectl's output:\n%s", key(o), out)
				}
			}
		})
	}
	// The check can fail: the API server refuses what it would refuse on
	// install.
	invalid := helmTemplate(t, map[string]any{"replicas": -1})
	if out, err := runKubectl(t, kubeconfig, stream(t, invalid), "apply", "--server-side", "--dry-run=server", "--field-manager=manifests-test", "-f", "-"); err == nil || !strings.Contains(out, "spec.replicas") {
		t.Errorf("a Deployment with replicas -1 passes the dry run (%v):\n%s", err, out)
	}
	// The dry run stored nothing: the CRDs are still unknown.
	if out, err := runKubectl(t, kubeconfig, "", "get", "crd", "tcpmappings.haproxy-operator.io"); err == nil {
		t.Errorf("a dry run stored a CRD:\n%s", out)
	}
}
