package dataplane

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/haproxytech/client-native/v5/configuration"
	cfgoptions "github.com/haproxytech/client-native/v5/configuration/options"
	"github.com/haproxytech/client-native/v5/models"
	"github.com/haproxytech/client-native/v5/runtime"
	rtoptions "github.com/haproxytech/client-native/v5/runtime/options"
	"github.com/haproxytech/client-native/v5/storage"
)

// Options configure one dataplane.
type Options struct {
	// Listen is the API's address, host:port.
	Listen string
	// HAProxy is the haproxy binary.
	HAProxy string
	// Dir holds haproxy.cfg and the transaction scratch files.
	Dir string
	// RunDir holds HAProxy's sockets (TCPM_RUN_DIR).
	RunDir string
	// CertDir holds certificate storage (TCPM_CERT_DIR).
	CertDir string
	// BindAddr is the address unbound listeners use (TCPM_BIND_ADDR);
	// empty listens on every address.
	BindAddr string
	// User and Password are the Basic credentials every request needs.
	User, Password string
	// TLSCert and TLSKey serve the API over TLS when both are set.
	TLSCert, TLSKey string
	// ReloadDelay coalesces queued reloads: requests within it share one.
	ReloadDelay time.Duration
	// Log receives HAProxy's own output.
	HAProxyLog io.Writer
	Logger     logr.Logger
}

// Server is a running dataplane and the HAProxy it owns.
type Server struct {
	opt     Options
	cfgPath string
	master  *master
	certs   storage.Storage

	mu      sync.Mutex // serialises configuration changes and reloads
	conf    configuration.Configuration
	rt      runtime.Runtime
	reloads []*models.Reload
	pending *models.Reload
	kick    chan struct{}

	listener net.Listener
	http     *http.Server
}

const initialConfig = `global
    presetenv TCPM_RUN_DIR /var/run/haproxy-tcp
    stats socket "${TCPM_RUN_DIR}/haproxy.sock" mode 600 level admin expose-fd listeners
defaults
    mode tcp
    timeout connect 5s
`

// New prepares a dataplane; Start runs it.
func New(opt Options) (*Server, error) {
	if opt.User == "" || opt.Password == "" {
		return nil, errors.New("dataplane needs credentials: no anonymous access")
	}
	if opt.HAProxy == "" {
		opt.HAProxy = "haproxy"
	}
	if opt.ReloadDelay == 0 {
		opt.ReloadDelay = 5 * time.Second
	}
	if opt.HAProxyLog == nil {
		opt.HAProxyLog = os.Stderr
	}
	for _, d := range []string{opt.Dir, opt.RunDir, opt.CertDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("prepare %s: %w", d, err)
		}
	}
	certs, err := storage.New(opt.CertDir, storage.SSLType)
	if err != nil {
		return nil, fmt.Errorf("certificate storage in %s: %w", opt.CertDir, err)
	}
	s := &Server{
		opt:     opt,
		cfgPath: filepath.Join(opt.Dir, "haproxy.cfg"),
		certs:   certs,
		kick:    make(chan struct{}, 1),
	}
	s.master = &master{
		bin:    opt.HAProxy,
		cfg:    s.cfgPath,
		socket: filepath.Join(opt.RunDir, "master.sock"),
		env:    s.haproxyEnv(),
		logTo:  opt.HAProxyLog,
	}
	return s, nil
}

func (s *Server) haproxyEnv() []string {
	return []string{
		"TCPM_RUN_DIR=" + s.opt.RunDir,
		"TCPM_CERT_DIR=" + s.opt.CertDir,
		"TCPM_BIND_ADDR=" + s.opt.BindAddr,
	}
}

// Addr is the address the API listens on, once started.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Start launches HAProxy (with the stored configuration, or an empty one)
// and serves the API until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	if _, err := os.Stat(s.cfgPath); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(s.cfgPath, []byte(withVersion(initialConfig, 1)), 0o600); err != nil {
			return fmt.Errorf("write initial configuration: %w", err)
		}
	}
	conf, err := configuration.New(ctx,
		cfgoptions.ConfigurationFile(s.cfgPath),
		cfgoptions.HAProxyBin(s.opt.HAProxy),
		cfgoptions.TransactionsDir(filepath.Join(s.opt.Dir, "transactions")),
	)
	if err != nil {
		return fmt.Errorf("read configuration %s: %w", s.cfgPath, err)
	}
	s.conf = conf
	if err := s.master.start(); err != nil {
		return err
	}
	stopMaster := func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.master.stop(stopCtx)
	}
	rt, err := runtime.New(ctx, rtoptions.Socket(filepath.Join(s.opt.RunDir, "haproxy.sock")))
	if err != nil {
		stopMaster()
		return fmt.Errorf("connect to the runtime API: %w", err)
	}
	s.rt = rt

	ln, err := net.Listen("tcp", s.opt.Listen)
	if err != nil {
		stopMaster()
		return fmt.Errorf("listen on %s: %w", s.opt.Listen, err)
	}
	s.listener = ln
	s.http = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	go s.reloadLoop(ctx)
	go func() {
		var err error
		if s.opt.TLSCert != "" && s.opt.TLSKey != "" {
			err = s.http.ServeTLS(ln, s.opt.TLSCert, s.opt.TLSKey)
		} else {
			err = s.http.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opt.Logger.Error(err, "Data Plane API server stopped")
		}
	}()
	return nil
}

// Stop ends the API and HAProxy.
func (s *Server) Stop(ctx context.Context) {
	if s.http != nil {
		_ = s.http.Shutdown(ctx)
	}
	s.master.stop(ctx)
}

// ReloadCount is the master's reload counter (for tests and metrics).
func (s *Server) ReloadCount() (int, error) { return s.master.reloadCount() }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/info", s.info)
	mux.HandleFunc("GET /v2/health", s.health)
	mux.HandleFunc("GET /v2/services/haproxy/configuration/version", s.getVersion)
	mux.HandleFunc("GET /v2/services/haproxy/configuration/raw", s.getRaw)
	mux.HandleFunc("POST /v2/services/haproxy/configuration/raw", s.postRaw)
	mux.HandleFunc("GET /v2/services/haproxy/reloads", s.getReloads)
	mux.HandleFunc("GET /v2/services/haproxy/reloads/{id}", s.getReload)
	mux.HandleFunc("GET /v2/services/haproxy/runtime/servers", s.getRuntimeServers)
	mux.HandleFunc("GET /v2/services/haproxy/storage/ssl_certificates", s.listCertificates)
	mux.HandleFunc("POST /v2/services/haproxy/storage/ssl_certificates", s.createCertificate)
	mux.HandleFunc("GET /v2/services/haproxy/storage/ssl_certificates/{name}", s.getCertificate)
	mux.HandleFunc("PUT /v2/services/haproxy/storage/ssl_certificates/{name}", s.replaceCertificate)
	mux.HandleFunc("DELETE /v2/services/haproxy/storage/ssl_certificates/{name}", s.deleteCertificate)
	return s.authenticate(mux)
}

func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok ||
			subtle.ConstantTimeCompare([]byte(user), []byte(s.opt.User)) != 1 ||
			subtle.ConstantTimeCompare([]byte(pass), []byte(s.opt.Password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="dataplane"`)
			writeError(w, http.StatusUnauthorized, "authentication required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	c := int64(code)
	writeJSON(w, code, &models.Error{Code: &c, Message: &msg})
}

func (s *Server) info(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, &models.Info{API: &models.InfoAPI{Version: "v2-haproxy-tcp-operator"}})
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	status := "up"
	if _, err := s.master.workers(); err != nil {
		status = "down"
	}
	writeJSON(w, http.StatusOK, &models.Health{Haproxy: status})
}

// stored reads the configuration file and its version through
// client-native, which reads the # _version line it writes.
func (s *Server) stored() (string, int64, error) {
	v, text, err := s.conf.GetRawConfiguration("", 0)
	if err != nil {
		return "", 0, fmt.Errorf("read configuration: %w", err)
	}
	return text, v, nil
}

func (s *Server) setConfigHeaders(w http.ResponseWriter, text string, version int64) {
	w.Header().Set("Configuration-Version", strconv.FormatInt(version, 10))
	w.Header().Set("Configuration-Checksum", checksum(text))
}

func (s *Server) getVersion(w http.ResponseWriter, _ *http.Request) {
	_, v, err := s.stored()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) getRaw(w http.ResponseWriter, _ *http.Request) {
	text, v, err := s.stored()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.setConfigHeaders(w, text, v)
	writeJSON(w, http.StatusOK, map[string]any{"_version": v, "data": text})
}

func queryBool(r *http.Request, name string) bool {
	v, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return v
}

// postRaw replaces the configuration: version check, haproxy -c, then a
// reload (queued, or at once with force_reload) or, with skip_reload, the
// runtime actions that make the running HAProxy match the new file.
func (s *Server) postRaw(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	actions, err := parseActions(r.Header.Get("X-Runtime-Actions"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	skipReload, forceReload := queryBool(r, "skip_reload"), queryBool(r, "force_reload")
	if len(actions) > 0 && !skipReload {
		writeError(w, http.StatusBadRequest, "X-Runtime-Actions needs skip_reload=true")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	_, current, err := s.stored()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !queryBool(r, "skip_version") && !queryBool(r, "only_validate") {
		v, err := strconv.ParseInt(r.URL.Query().Get("version"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "version is required unless skip_version=true")
			return
		}
		if v != current {
			writeError(w, http.StatusConflict, fmt.Sprintf("version mismatch: the configuration is at version %d, not %d", current, v))
			return
		}
	}

	// Runtime actions go first: HAProxy checks each itself, and they touch
	// no file, so traffic moves without waiting for haproxy -c. The file
	// is still validated before it is stored; if it is refused, the next
	// reload brings HAProxy back to the stored file.
	var actionsErr error
	if skipReload && !queryBool(r, "only_validate") {
		actionsErr = s.runActions(actions)
	}

	next := withVersion(string(body), current+1)
	tmp := filepath.Join(s.opt.Dir, "haproxy.cfg.new")
	if err := os.WriteFile(tmp, []byte(next), 0o600); err != nil {
		writeError(w, http.StatusInternalServerError, "write configuration: "+err.Error())
		return
	}
	defer os.Remove(tmp)
	if out, err := s.validate(tmp); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("haproxy refused the configuration: %v\n%s", err, out))
		return
	}
	if queryBool(r, "only_validate") {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, string(body))
		return
	}
	if err := os.Rename(tmp, s.cfgPath); err != nil {
		writeError(w, http.StatusInternalServerError, "store configuration: "+err.Error())
		return
	}
	s.setConfigHeaders(w, next, current+1)

	switch {
	case skipReload:
		if err := actionsErr; err != nil {
			// The file is stored; the next reload makes HAProxy match it.
			id := s.queueReload()
			w.Header().Set("Reload-ID", id)
			writeError(w, http.StatusAccepted, fmt.Sprintf("runtime actions failed, reload %s queued: %v", id, err))
			return
		}
	case forceReload:
		rl := s.newReload()
		s.doReload(rl)
		if rl.Status == "failed" {
			writeError(w, http.StatusInternalServerError, "reload failed: "+rl.Response)
			return
		}
	default:
		id := s.queueReload()
		w.Header().Set("Reload-ID", id)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, next)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, next)
}

// validate runs haproxy -c with the instance's environment.
func (s *Server) validate(path string) (string, error) {
	cmd := exec.Command(s.opt.HAProxy, "-c", "-f", path)
	cmd.Env = append(os.Environ(), s.haproxyEnv()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func checksum(text string) string {
	sum := md5.Sum([]byte(text))
	return hex.EncodeToString(sum[:])
}

// withVersion puts the # _version line client-native writes at the top
// of a configuration, dropping any the text carried.
func withVersion(text string, version int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# _version=%d\n", version)
	for _, line := range strings.SplitAfter(text, "\n") {
		if strings.HasPrefix(line, "# _version=") || strings.HasPrefix(line, "# _md5hash=") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}
