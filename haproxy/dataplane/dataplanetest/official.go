package dataplanetest

import (
	"fmt"
	"strings"
)

// OfficialConfig is the configuration file of the official dataplaneapi
// as the tests run it: HAProxy 2.6 in master-worker mode, reloaded by
// ReloadCmd (the test binary, see ReloadHelperEnv), everything it stores
// under Dir.
type OfficialConfig struct {
	Host string
	Port int
	// TLSCert and TLSKey, when set, make it serve HTTPS only.
	TLSCert, TLSKey string
	User, Password  string
	Dir             string
	HAProxyConfig   string
	HAProxyBinary   string
	ReloadCmd       string
}

// YAML is the dataplaneapi.yaml for c.
func (c OfficialConfig) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: test\ndataplaneapi:\n  host: %s\n  port: %d\n", c.Host, c.Port)
	if c.TLSCert != "" {
		fmt.Fprintf(&b, "  scheme: [https]\n  tls:\n    tls_host: %s\n    tls_port: %d\n    tls_certificate: %s\n    tls_key: %s\n", c.Host, c.Port, c.TLSCert, c.TLSKey)
	} else {
		b.WriteString("  scheme: [http]\n")
	}
	fmt.Fprintf(&b, `  user:
  - name: %[1]s
    insecure: true
    password: %[2]s
  transaction:
    transaction_dir: %[3]s/transactions
    backups_dir: %[3]s/backups
  resources:
    maps_dir: %[3]s/maps
    ssl_certs_dir: %[3]s/certs
    general_storage_dir: %[3]s/general
    spoe_dir: %[3]s/spoe
    spoe_transaction_dir: %[3]s/spoe-transactions
haproxy:
  config_file: %[4]s
  haproxy_bin: %[5]s
  reload:
    reload_strategy: custom
    reload_delay: 1
    reload_cmd: %[6]s
    restart_cmd: %[6]s
log:
  log_to: file
  log_file: %[3]s/dataplaneapi.log
  log_level: info
`, c.User, c.Password, c.Dir, c.HAProxyConfig, c.HAProxyBinary, c.ReloadCmd)
	return b.String()
}
