package dataplane

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/haproxytech/client-native/v5/configuration"
	cfgoptions "github.com/haproxytech/client-native/v5/configuration/options"
	"github.com/haproxytech/client-native/v5/models"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/runtime"
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
	// MapDir holds map storage (TCPM_MAP_DIR): the maps the API's map
	// names resolve to. Empty means Dir/maps.
	MapDir string
	// BindAddr is the address unbound listeners use (TCPM_BIND_ADDR);
	// empty listens on every address.
	BindAddr string
	// User and Password are the Basic credentials every request needs.
	User, Password string
	// TLSCert and TLSKey are the files of the API's certificate and key.
	// When set, the API speaks only TLS (1.2 or later) and reads the
	// files again when they change; the dataplane command requires them.
	// Only tests in this module run the API without them.
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

	mu sync.Mutex // serialises configuration changes, reloads and restarts
	// good is the configuration HAProxy runs: what a failed reload or a
	// failed restart goes back to.
	good    string
	conf    configuration.Configuration
	rt      *runtime.Client
	reloads []*models.Reload
	reloadN int
	pending *models.Reload
	kick    chan struct{}
	version atomic.Int64 // the stored version, for headers on every answer
	// goodSplit is good cut into sections, for the partial check of the
	// pushes that follow; text says which good it was cut from.
	goodSplit struct {
		text     string
		sections []cfgSection
	}
	stopping atomic.Bool
	// restarting is set while the supervisor restarts a dead master.
	restarting atomic.Bool
	// beat is when the supervisor loop last ran, downSince since when the
	// master has been down (Unix nanoseconds; 0: it runs).
	beat, downSince atomic.Int64

	listener net.Listener
	http     *http.Server
	certs    *certFiles
	cancel   context.CancelFunc
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
	if opt.MapDir == "" {
		opt.MapDir = filepath.Join(opt.Dir, "maps")
	}
	for _, d := range []string{opt.Dir, opt.RunDir, opt.CertDir, opt.MapDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("prepare %s: %w", d, err)
		}
	}
	if (opt.TLSCert == "") != (opt.TLSKey == "") {
		return nil, errors.New("dataplane needs both a TLS certificate and its key, or neither")
	}
	s := &Server{
		opt:     opt,
		cfgPath: filepath.Join(opt.Dir, "haproxy.cfg"),
		kick:    make(chan struct{}, 1),
	}
	s.master = &master{
		bin:     opt.HAProxy,
		cfg:     s.cfgPath,
		socket:  filepath.Join(opt.RunDir, "master.sock"),
		pidfile: filepath.Join(opt.Dir, "haproxy.pid"),
		env:     s.haproxyEnv(),
		out:     newOutputTap(opt.HAProxyLog),
	}
	if opt.TLSCert != "" {
		certs, err := loadCertFiles(opt.TLSCert, opt.TLSKey, opt.Logger)
		if err != nil {
			return nil, err
		}
		s.certs = certs
	}
	return s, nil
}

func (s *Server) haproxyEnv() []string {
	return []string{
		"TCPM_RUN_DIR=" + s.opt.RunDir,
		"TCPM_CERT_DIR=" + s.opt.CertDir,
		"TCPM_MAP_DIR=" + s.opt.MapDir,
		"TCPM_BIND_ADDR=" + s.opt.BindAddr,
	}
}

// Addr is the address the API listens on, once started.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Start launches HAProxy (with the stored configuration, or an empty one)
// and serves the API until ctx ends. A master left running by a previous
// dataplane of the same directory is killed first.
func (s *Server) Start(ctx context.Context) error {
	if err := killStale(s.master.pidfile, s.opt.HAProxy); err != nil {
		return err
	}
	if err := s.recoverUncheckedReload(); err != nil {
		return err
	}
	if _, err := os.Stat(s.cfgPath); errors.Is(err, os.ErrNotExist) {
		if err := writeFileAtomic(s.cfgPath, []byte(withVersion(initialConfig, 1))); err != nil {
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
	text, v, err := s.stored()
	if err != nil {
		return err
	}
	if err := s.master.start(); err != nil {
		return err
	}
	s.good = text
	s.version.Store(v)
	stopMaster := func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.master.stop(stopCtx)
	}
	s.rt = runtime.New(filepath.Join(s.opt.RunDir, "haproxy.sock"))
	// The worker the master listed opens the stats socket as it starts.
	for deadline := time.Now().Add(5 * time.Second); ; {
		_, err := s.rt.Info(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			stopMaster()
			return fmt.Errorf("connect to the runtime API: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	ln, err := net.Listen("tcp", s.opt.Listen)
	if err != nil {
		stopMaster()
		return fmt.Errorf("listen on %s: %w", s.opt.Listen, err)
	}
	if s.certs != nil {
		ln = tlsListener{Listener: ln, config: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: s.certs.GetCertificate,
		}}
	}
	s.listener = ln
	s.http = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.beat.Store(time.Now().UnixNano())
	ctx, s.cancel = context.WithCancel(ctx)
	go s.reloadLoop(ctx)
	go s.supervise(ctx)
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opt.Logger.Error(err, "Data Plane API server stopped")
		}
	}()
	return nil
}

// Stop ends the API and HAProxy.
func (s *Server) Stop(ctx context.Context) {
	s.stopping.Store(true)
	if s.cancel != nil {
		s.cancel() // the reload loop and the supervisor
	}
	if s.http != nil {
		_ = s.http.Shutdown(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.master.stop(ctx)
}

// ReloadCount is the master's reload counter (for tests and metrics).
func (s *Server) ReloadCount() (int, error) { return s.master.reloadCount() }

// MasterPID is the PID of the running HAProxy master, 0 when none runs
// (for tests and diagnostics).
func (s *Server) MasterPID() int {
	cmd, _ := s.master.current()
	if cmd == nil || cmd.Process == nil || !s.master.running() {
		return 0
	}
	return cmd.Process.Pid
}

// Routes lists the Data Plane API endpoints the dataplane serves, as
// "METHOD /path" with {name} path parameters, sorted.
func Routes() []string {
	var out []string
	for pattern := range (&Server{}).endpoints() {
		out = append(out, pattern)
	}
	sort.Strings(out)
	return out
}

// endpoints are the API's routes, method and path as http.ServeMux reads
// them.
func (s *Server) endpoints() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /v2/info":   s.info,
		"GET /v2/health": s.health,
		"GET /v2/services/haproxy/configuration/version":              s.getVersion,
		"GET /v2/services/haproxy/configuration/raw":                  s.getRaw,
		"POST /v2/services/haproxy/configuration/raw":                 s.postRaw,
		"GET /v2/services/haproxy/reloads":                            s.getReloads,
		"GET /v2/services/haproxy/reloads/{id}":                       s.getReload,
		"GET /v2/services/haproxy/runtime/servers":                    s.getRuntimeServers,
		"POST /v2/services/haproxy/runtime/servers":                   s.addRuntimeServer,
		"GET /v2/services/haproxy/runtime/servers/{name}":             s.getRuntimeServer,
		"PUT /v2/services/haproxy/runtime/servers/{name}":             s.replaceRuntimeServer,
		"DELETE /v2/services/haproxy/runtime/servers/{name}":          s.deleteRuntimeServer,
		"GET /v2/services/haproxy/runtime/maps":                       s.getRuntimeMaps,
		"GET /v2/services/haproxy/runtime/maps/{name}":                s.getRuntimeMap,
		"PUT /v2/services/haproxy/runtime/maps/{name}":                s.addRuntimeMapPayload,
		"DELETE /v2/services/haproxy/runtime/maps/{name}":             s.clearRuntimeMap,
		"GET /v2/services/haproxy/runtime/maps_entries":               s.getMapEntries,
		"POST /v2/services/haproxy/runtime/maps_entries":              s.addMapEntry,
		"GET /v2/services/haproxy/runtime/maps_entries/{id}":          s.getMapEntry,
		"PUT /v2/services/haproxy/runtime/maps_entries/{id}":          s.replaceMapEntry,
		"DELETE /v2/services/haproxy/runtime/maps_entries/{id}":       s.deleteMapEntry,
		"GET /v2/services/haproxy/storage/maps":                       s.listStorageMaps,
		"POST /v2/services/haproxy/storage/maps":                      s.createStorageMap,
		"GET /v2/services/haproxy/storage/maps/{name}":                s.getStorageMap,
		"PUT /v2/services/haproxy/storage/maps/{name}":                s.replaceStorageMap,
		"DELETE /v2/services/haproxy/storage/maps/{name}":             s.deleteStorageMap,
		"GET /v2/services/haproxy/storage/ssl_certificates":           s.listCertificates,
		"POST /v2/services/haproxy/storage/ssl_certificates":          s.createCertificate,
		"GET /v2/services/haproxy/storage/ssl_certificates/{name}":    s.getCertificate,
		"PUT /v2/services/haproxy/storage/ssl_certificates/{name}":    s.replaceCertificate,
		"DELETE /v2/services/haproxy/storage/ssl_certificates/{name}": s.deleteCertificate,
	}
}

// Handler is the API: /healthz and /readyz without credentials, every
// other path behind Basic credentials. Unknown paths and methods get the
// API's error model, as every other error does.
func (s *Server) Handler() http.Handler {
	api := http.NewServeMux()
	allowed := map[string][]string{}
	for pattern, h := range s.endpoints() {
		api.HandleFunc(pattern, h)
		method, path, _ := strings.Cut(pattern, " ")
		allowed[path] = append(allowed[path], method)
	}
	for path, methods := range allowed {
		// A pattern without a method is less specific than the ones
		// above, so it only catches the methods they do not serve.
		allow := strings.Join(methods, ", ")
		api.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method not allowed; allowed: "+allow)
		})
	}
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("/", s.authenticate(s.withVersionHeader(api)))
	return mux
}

// withVersionHeader puts the stored configuration version on every
// answer, as the specification's responses (errors included) carry it;
// handlers that change the version set it again.
func (s *Server) withVersionHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Configuration-Version", strconv.FormatInt(s.version.Load(), 10))
		next.ServeHTTP(w, r)
	})
}

// authenticate checks Basic credentials. User and password are compared
// as SHA-256 digests (equal lengths, so the comparison time does not
// depend on their lengths), both comparisons always run, and their
// results are combined without branching: the time taken says nothing
// about which part was wrong.
func (s *Server) authenticate(next http.Handler) http.Handler {
	wantUser, wantPass := sha256.Sum256([]byte(s.opt.User)), sha256.Sum256([]byte(s.opt.Password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !credentialsMatch(wantUser, wantPass, user, pass) || !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="dataplane"`)
			writeError(w, http.StatusUnauthorized, "authentication required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// credentialsMatch compares user and password with the expected digests
// in constant time, together.
func credentialsMatch(wantUser, wantPass [sha256.Size]byte, user, pass string) bool {
	gotUser, gotPass := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	u := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
	p := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
	return u&p == 1
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

// health says "up" only while the master answers and a current worker
// runs.
func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	status := "up"
	if _, err := s.master.workers(); err != nil {
		status = "down"
	}
	writeJSON(w, http.StatusOK, &models.Health{Haproxy: status})
}
