package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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

// Dataplane runs HAProxy in master-worker mode and the Data Plane API
// server until interrupted.
func Dataplane(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dataplane", stderr)
	listen := fs.String("listen", ":5555", "address of the Data Plane API")
	haproxyBin := fs.String("haproxy", "haproxy", "haproxy binary")
	dir := fs.String("config-dir", "/var/lib/haproxy-tcp", "directory of haproxy.cfg")
	runDir := fs.String("run-dir", "/var/run/haproxy-tcp", "directory of HAProxy's sockets")
	certDir := fs.String("cert-dir", "/etc/haproxy-tcp/certs", "directory of stored certificates")
	bindAddr := fs.String("bind-address", os.Getenv("TCPM_BIND_ADDR"), "address for listeners without one (empty: all)")
	credentials := fs.String("credentials-file", "", "file holding user:password (default: DATAPLANE_USER and DATAPLANE_PASSWORD)")
	tlsCert := fs.String("tls-cert", "", "serve the API over TLS with this certificate")
	tlsKey := fs.String("tls-key", "", "and this key")
	reloadDelay := fs.Duration("reload-delay", 5*time.Second, "coalesce queued reloads within this delay")
	if err := parseFlags(fs, args, Commands["dataplane"].Summary, stdout); err != nil {
		return err
	}
	user, pass, err := readCredentials(*credentials)
	if err != nil {
		return err
	}
	// The logger the --zap-* flags configured.
	log := logr.FromContextOrDiscard(ctx)
	srv, err := dataplane.New(dataplane.Options{
		Listen: *listen, HAProxy: *haproxyBin, Dir: *dir, RunDir: *runDir, CertDir: *certDir,
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
