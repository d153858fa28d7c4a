package localcluster

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/deploy/crd"
)

// ControlPlane is a kube-apiserver and etcd on loopback with this
// project's CRDs and Gateway API's ReferenceGrant CRD installed.
type ControlPlane struct {
	Config *rest.Config
	// Kubeconfig is a file for kubectl and the operator, with an admin user.
	Kubeconfig string
	env        *envtest.Environment
	dir        string
}

// StartControlPlane starts kube-apiserver and etcd from assets (a folder
// holding kube-apiserver, etcd and kubectl, such as bin/k8s).
func StartControlPlane(assets string) (*ControlPlane, error) {
	dir, err := os.MkdirTemp("", "tcpm-cluster-")
	if err != nil {
		return nil, err
	}
	crdDir := filepath.Join(dir, "crd")
	if err := os.MkdirAll(crdDir, 0o700); err != nil {
		return nil, err
	}
	files, err := fs.Glob(crd.FS, "haproxy-operator.io_*.yaml")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		b, err := crd.FS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(crdDir, f), b, 0o600); err != nil {
			return nil, err
		}
	}
	grants, err := ReferenceGrantCRD()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{crdDir, grants},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		// envtest's 20 s default is short for a first start on a busy
		// machine, and each retry logs an error.
		ControlPlaneStartTimeout: time.Minute,
	}
	cfg, err := env.Start()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start kube-apiserver and etcd from %s: %w", assets, err)
	}
	cp := &ControlPlane{Config: cfg, env: env, dir: dir}
	user, err := env.AddUser(envtest.User{Name: "local-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		cp.Stop()
		return nil, err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		cp.Stop()
		return nil, err
	}
	cp.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(cp.Kubeconfig, kc, 0o600); err != nil {
		cp.Stop()
		return nil, err
	}
	return cp, nil
}

// Stop ends the control plane and removes its files.
func (cp *ControlPlane) Stop() error {
	err := cp.env.Stop()
	os.RemoveAll(cp.dir)
	return err
}
