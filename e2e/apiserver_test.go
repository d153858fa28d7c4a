package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/localcluster"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

// cluster is the API server every test in this package shares.
var cluster struct {
	cfg        *rest.Config
	client     client.Client
	kubeconfig string
}

func TestMain(m *testing.M) {
	// The official dataplaneapi's reload command (external_official_test.go).
	dataplanetest.RunReloadHelper()
	// The test's own clients log nothing worth reading; the operator's
	// logs are its process's.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(runWithAPIServer(m))
}

func runWithAPIServer(m *testing.M) int {
	assets, err := filepath.Abs("../bin/k8s")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	grants, err := localcluster.ReferenceGrantCRD()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{"../deploy/crd", grants},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "start kube-apiserver and etcd from %s (make test builds them): %v\n", assets, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop the test API server: %v\n", err)
		}
	}()
	cluster.cfg = cfg
	cluster.client, err = client.New(cfg, client.Options{Scheme: snapshot.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	user, err := env.AddUser(envtest.User{Name: "e2e-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kc, err := user.KubeConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "tcpm-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cluster.kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(cluster.kubeconfig, kc, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stopOperator, err := startOperator(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stopOperator()
	return m.Run()
}

// kubectl runs kubectl against the test API server with stdin as input.
func kubectl(ctx context.Context, stdin string, args ...string) (stdout, stderr string, err error) {
	bin := os.Getenv("KUBECTL")
	if bin == "" {
		bin = "kubectl"
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", cluster.kubeconfig}, args...)...)
	cmd.Stdin = bytes.NewBufferString(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// secondAPIServer starts a kube-apiserver and etcd of the test's own with
// this project's CRDs (and not Gateway API's); the caller stops it.
func secondAPIServer(tb testing.TB) (*envtest.Environment, *rest.Config) {
	tb.Helper()
	assets, err := filepath.Abs("../bin/k8s")
	if err != nil {
		tb.Fatal(err)
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:        []string{"../deploy/crd"},
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: time.Minute,
	}
	cfg, err := env.Start()
	if err != nil {
		tb.Fatalf("start a second API server: %v", err)
	}
	return env, cfg
}
