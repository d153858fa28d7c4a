package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane"
)

func init() {
	Commands["dataplane"] = Command{Summary: "run HAProxy and serve the Data Plane API beside it", Run: Dataplane}
}

// readCredentials reads user:password from a file (one line), or from the
// DATAPLANE_USER and DATAPLANE_PASSWORD environment variables.
func readCredentials(file string) (string, string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", "", fmt.Errorf("read credentials: %w", err)
		}
		user, pass, found := strings.Cut(strings.TrimSpace(string(b)), ":")
		if !found || user == "" || pass == "" {
			return "", "", fmt.Errorf("credentials file %s: want one line user:password", file)
		}
		return user, pass, nil
	}
	user, pass := os.Getenv("DATAPLANE_USER"), os.Getenv("DATAPLANE_PASSWORD")
	if user == "" || pass == "" {
		return "", "", errors.New("no credentials: give --credentials-file or set DATAPLANE_USER and DATAPLANE_PASSWORD")
	}
	return user, pass, nil
}

// listenAddress reads host:port. The Deployment passes the Pod's IP
// through the downward API as "$(POD_IP):port", which on an IPv6 cluster
// is an unbracketed IPv6 address followed by the port: the port is what
// follows the last colon.
func listenAddress(s string) (string, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", fmt.Errorf("--listen %q: want host:port", s)
	}
	host, port := s[:i], s[i+1:]
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("--listen %q: the port must be a number up to 65535", s)
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return "", fmt.Errorf("--listen %q: %q is not an IP address", s, host)
	}
	return net.JoinHostPort(host, port), nil
}

// Dataplane runs HAProxy in master-worker mode and the Data Plane API
// server until interrupted.
func Dataplane(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dataplane", stderr)
	listen := fs.String("listen", ":5555", "address of the Data Plane API, host:port (an unbracketed IPv6 host, as $(POD_IP):5555 gives, is accepted)")
	haproxyBin := fs.String("haproxy", "haproxy", "haproxy binary")
	dir := fs.String("config-dir", "/var/lib/haproxy-tcp", "directory of haproxy.cfg")
	runDir := fs.String("run-dir", "/var/run/haproxy-tcp", "directory of HAProxy's sockets")
	certDir := fs.String("cert-dir", "/etc/haproxy-tcp/certs", "directory of stored certificates")
	bindAddr := fs.String("bind-address", os.Getenv("TCPM_BIND_ADDR"), "address for listeners without one (empty: all)")
	credentials := fs.String("credentials-file", "", "file holding user:password (default: DATAPLANE_USER and DATAPLANE_PASSWORD)")
	tlsCert := fs.String("tls-cert", "", "certificate file of the API (required: the API serves only HTTPS; read again when it changes)")
	tlsKey := fs.String("tls-key", "", "key file of the API (required)")
	reloadDelay := fs.Duration("reload-delay", 5*time.Second, "coalesce queued reloads within this delay")
	if err := parseFlags(fs, args, Commands["dataplane"].Summary, stdout); err != nil {
		return err
	}
	if *tlsCert == "" || *tlsKey == "" {
		return errors.New("the Data Plane API serves only HTTPS: give --tls-cert and --tls-key")
	}
	addr, err := listenAddress(*listen)
	if err != nil {
		return err
	}
	user, pass, err := readCredentials(*credentials)
	if err != nil {
		return err
	}
	// The logger the --zap-* flags configured.
	log := logr.FromContextOrDiscard(ctx)
	srv, err := dataplane.New(dataplane.Options{
		Listen: addr, HAProxy: *haproxyBin, Dir: *dir, RunDir: *runDir, CertDir: *certDir,
		BindAddr: *bindAddr, User: user, Password: pass, TLSCert: *tlsCert, TLSKey: *tlsKey,
		ReloadDelay: *reloadDelay, HAProxyLog: stderr, Logger: log,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	log.Info("Serving the Data Plane API", "address", srv.Addr())
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv.Stop(stopCtx)
	return nil
}
