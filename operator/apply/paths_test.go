package apply

import (
	"os"
	"strings"
	"testing"
)

func TestStorageNameKeepsWhatTheOfficialAPIKeeps(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"default_site.pem", "default_site.pem"},
		{"default_site.ca.pem", "default_site_2eca.pem"},
		{"default_site.crl.pem", "default_site_2ecrl.pem"},
		// A TLSContext named a.b and one named a-b stay apart.
		{"ns_a.b.pem", "ns_a_2eb.pem"},
		{"ns_a-b.pem", "ns_a-b.pem"},
		{"tcpm-old.pem", "tcpm-old.pem"},
	} {
		if got := StorageName(c.file); got != c.want {
			t.Errorf("StorageName(%q) = %q, want %q", c.file, got, c.want)
		}
	}
}

// TestLocalizeWritesTheInstancesDirectories localizes the golden mTLS
// configuration (a certificate, a CA bundle and a CRL on one bind).
func TestLocalizeWritesTheInstancesDirectories(t *testing.T) {
	text, err := os.ReadFile("../render/testdata/mtls.haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	d := dirs{run: "/run/haproxy", cert: "/etc/haproxy/ssl", ca: "/etc/haproxy/general", maps: "/etc/haproxy/maps"}
	got, err := localize(text, d)
	if err != nil {
		t.Fatal(err)
	}
	out := string(got)
	for _, line := range []string{
		"    presetenv TCPM_RUN_DIR /run/haproxy\n",
		"    presetenv TCPM_CERT_DIR /etc/haproxy/ssl\n",
		"    crt-base /etc/haproxy/ssl\n",
		"    ca-base /etc/haproxy/general\n",
		"    presetenv TCPM_MAP_DIR /etc/haproxy/maps\n",
		"    stats socket /run/haproxy/haproxy.sock mode 600 level admin expose-fd listeners\n",
		// Map files are loaded from the API's map directory.
		`map_str_int(/etc/haproxy/maps/tcpm-fe-2222-hosts.map)`,
		` ssl crt default_revoking.pem ca-file default_revoking_2eca.pem crl-file default_revoking_2ecrl.pem verify required` + "\n",
		// HAProxy expands the listen address itself.
		`    bind "${TCPM_BIND_ADDR}:2222" ssl`,
	} {
		if !strings.Contains(out, line) {
			t.Errorf("localized text lacks %q", line)
		}
	}
	for _, v := range []string{"${TCPM_RUN_DIR}", "${TCPM_CERT_DIR}", "${TCPM_MAP_DIR}"} {
		if strings.Contains(out, v) {
			t.Errorf("localized text still names %s", v)
		}
	}
	if strings.Count(out, "\n") != strings.Count(string(text), "\n") {
		t.Errorf("localize changed the number of lines")
	}
	again, _ := localize(text, d)
	if string(again) != out {
		t.Error("localize is not deterministic")
	}
	back := storedNames(text)
	if back["default_revoking_2eca.pem"] != "default_revoking.ca.pem" || back["default_revoking.pem"] != "" {
		t.Errorf("storedNames = %v", back)
	}
}

func TestLocalizeRefusesADirectoryHAProxyWouldSplit(t *testing.T) {
	for _, dir := range []string{"relative/dir", "/with space", `/with"quote`, "/with/${VAR}", "/trailing/", "/a/../b"} {
		_, err := localize([]byte("global\n"), dirs{run: dir, cert: "/c", ca: "/c"})
		if err == nil || !strings.Contains(err.Error(), "runtime directory") {
			t.Errorf("run directory %q: %v, want an error naming the runtime directory", dir, err)
		}
	}
}

func TestStoredDirsReadsWhatTheInstanceNamesLiterally(t *testing.T) {
	for _, c := range []struct {
		name, text string
		want       dirs
	}{
		{"an instance as installed", "global\n  stats socket /run/haproxy/admin.sock mode 660 level admin\n  crt-base /etc/ssl/private\n  ca-base /etc/ssl/certs\n",
			dirs{run: "/run/haproxy", cert: "/etc/ssl/private", ca: "/etc/ssl/certs"}},
		{"a TCP stats socket first", "global\n  stats socket ipv4@127.0.0.1:9999 level admin\n  stats socket /var/lib/haproxy/stats\n",
			dirs{run: "/var/lib/haproxy"}},
		{"variables are not paths", "global\n  stats socket \"${TCPM_RUN_DIR}/haproxy.sock\" mode 600\n  crt-base \"${TCPM_CERT_DIR}\"\n",
			dirs{}},
		{"nothing", "", dirs{}},
	} {
		if got := storedDirs(c.text); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestLocalizeRenamesTheFilesServersLoad(t *testing.T) {
	text, err := os.ReadFile("../render/testdata/upstream-tls.haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	got, err := localize(text, dirs{run: "/run/haproxy", cert: "/etc/haproxy/ssl", ca: "/etc/haproxy/general", maps: "/etc/haproxy/maps"})
	if err != nil {
		t.Fatal(err)
	}
	out := string(got)
	for _, tc := range []struct{ want, not string }{
		{want: " ca-file upstream_default_upstream-ca_2eca.pem ", not: "upstream-ca.ca.pem"},
		{want: " crt upstream_default_some-context-cert.pem"},
	} {
		if !strings.Contains(out, tc.want) {
			t.Errorf("localized server lines lack %q", tc.want)
		}
		if tc.not != "" && strings.Contains(out, tc.not) {
			t.Errorf("localized text still names %q", tc.not)
		}
	}
	if strings.Contains(string(text), "ca-file /") && !strings.Contains(out, "ca-file /etc/ssl/certs/ca-certificates.crt") {
		t.Error("the system CA bundle, an absolute path, was renamed")
	}
	if back := storedNames(text); back["upstream_default_upstream-ca_2eca.pem"] != "upstream_default_upstream-ca.ca.pem" {
		t.Errorf("storedNames = %v", back)
	}
}
