package golden

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
)

// CheckHAProxyConfig runs haproxy -c on cfg with the given certificate files
// in its certificate directory, and fails the test with HAProxy's own
// output when HAProxy refuses it.
func CheckHAProxyConfig(t *testing.T, cfg []byte, certs map[string][]byte) {
	t.Helper()
	CheckHAProxyFiles(t, cfg, certs, nil)
}

// mapRef is a map file the configuration loads from its map directory.
var mapRef = regexp.MustCompile(`\$\{TCPM_MAP_DIR\}/([A-Za-z0-9_.-]+)`)

// CheckHAProxyFiles is CheckHAProxyConfig with map files too, written to
// the map directory (TCPM_MAP_DIR) the configuration loads them from. A
// map the configuration loads and maps lacks is written empty: HAProxy
// checks the lines that use it all the same.
func CheckHAProxyFiles(t *testing.T, cfg []byte, certs, maps map[string][]byte) {
	t.Helper()
	all := map[string][]byte{}
	for _, m := range mapRef.FindAllSubmatch(cfg, -1) {
		all[string(m[1])] = nil
	}
	for name, content := range maps {
		all[name] = content
	}
	maps = all
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	mapDir := filepath.Join(dir, "maps")
	for _, d := range []string{certDir, mapDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for name, pem := range certs {
		if err := os.WriteFile(filepath.Join(certDir, name), pem, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range maps {
		if err := os.WriteFile(filepath.Join(mapDir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dataplanetest.HAProxyBinary(t), "-c", "-f", path)
	cmd.Env = append(os.Environ(), "TCPM_CERT_DIR="+certDir, "TCPM_RUN_DIR="+dir, "TCPM_MAP_DIR="+mapDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("haproxy -c refused the configuration: %v\n%s", err, out)
	}
}
