package golden

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
)

// CheckHAProxyConfig runs haproxy -c on cfg with the given certificate files
// in its certificate directory, and fails the test with HAProxy's own
// output when HAProxy refuses it.
func CheckHAProxyConfig(t *testing.T, cfg []byte, certs map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, pem := range certs {
		if err := os.WriteFile(filepath.Join(certDir, name), pem, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dataplanetest.HAProxyBinary(t), "-c", "-f", path)
	cmd.Env = append(os.Environ(), "TCPM_CERT_DIR="+certDir, "TCPM_RUN_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("haproxy -c refused the configuration: %v\n%s", err, out)
	}
}
