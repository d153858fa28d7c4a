// Package client is the operator's typed client for the HAProxy Data Plane
// API v2. It uses only endpoints, parameters and headers the specification
// in client-native defines, so the official dataplaneapi can stand in for
// this project's dataplane. Every request is bounded by the caller's
// context and by a per-request timeout; only idempotent requests are
// retried, and only on connection errors (a request that timed out is not
// retried: the instance is frozen, not flaky). Version conflicts are
// returned as ErrVersionConflict for the caller to re-read and retry.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/haproxytech/client-native/v5/models"
)

// ErrVersionConflict is returned when the configuration changed since the
// version the caller pushed against.
var ErrVersionConflict = errors.New("configuration version conflict")

// Defaults of a new Client.
const (
	DefaultAttempts       = 3
	DefaultBackoff        = 100 * time.Millisecond
	DefaultRequestTimeout = 20 * time.Second
	DefaultPollInterval   = 50 * time.Millisecond
)

// Client talks to one instance's Data Plane API.
type Client struct {
	base       string
	user, pass string
	http       *http.Client
	// Attempts is how many times an idempotent request is tried on
	// connection errors.
	Attempts int
	// Backoff is the first wait between attempts; it doubles.
	Backoff time.Duration
	// RequestTimeout bounds each request, on top of the caller's context.
	// A forced reload of a large configuration is the slowest request.
	RequestTimeout time.Duration
	// PollInterval is the first wait between two reads of a reload's
	// status; it doubles up to half a second.
	PollInterval time.Duration
}

// New returns a client for the API at endpoint (http[s]://host:port).
func New(endpoint, user, pass string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	return &Client{
		base: strings.TrimSuffix(endpoint, "/") + "/v2",
		user: user, pass: pass, http: httpClient,
		Attempts: DefaultAttempts, Backoff: DefaultBackoff,
		RequestTimeout: DefaultRequestTimeout, PollInterval: DefaultPollInterval,
	}
}

// APIError is an answer other than the one expected.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("data plane API: %d: %s", e.Status, e.Message) }

// ReloadError is a reload HAProxy did not survive; the API keeps the
// previous configuration running.
type ReloadError struct {
	ID string
	// Response is what the reload printed (HAProxy's messages).
	Response string
}

func (e *ReloadError) Error() string {
	return fmt.Sprintf("reload %s failed: %s", e.ID, strings.TrimSpace(e.Response))
}

type request struct {
	method      string
	path        string
	query       url.Values
	body        []byte
	contentType string
	header      http.Header
}

// idempotent requests may be sent twice with the effect of once.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func (c *Client) do(ctx context.Context, r request) (*http.Response, []byte, error) {
	wait := c.Backoff
	attempts := c.Attempts
	if attempts < 1 || !idempotent(r.method) {
		attempts = 1
	}
	for attempt := 0; ; attempt++ {
		resp, body, err := c.once(ctx, r)
		if err == nil {
			return resp, body, nil
		}
		err = fmt.Errorf("%s %s: %w", r.method, r.path, err)
		if attempt+1 >= attempts || ctx.Err() != nil || !retriable(err) {
			return nil, nil, err
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("%s %s: %w", r.method, r.path, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// retriable reports whether err is a connection error worth another try:
// the request never reached the API or its answer was lost. A timeout is
// not: the next attempt would wait just as long.
func retriable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return true
}

func (c *Client) once(ctx context.Context, r request) (*http.Response, []byte, error) {
	if c.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.RequestTimeout)
		defer cancel()
	}
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, bytes.NewReader(r.body))
	if err != nil {
		return nil, nil, err
	}
	req.SetBasicAuth(c.user, c.pass)
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	// The body is read under the same deadline as the request.
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp, body, nil
}

func apiError(resp *http.Response, body []byte) *APIError {
	var e models.Error
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Message != nil {
		msg = *e.Message
	}
	return &APIError{Status: resp.StatusCode, Message: msg}
}

// configError maps a refusal of a configuration request; 409 means the
// version moved.
func configError(resp *http.Response, body []byte) error {
	e := apiError(resp, body)
	if resp.StatusCode == http.StatusConflict {
		return fmt.Errorf("%w: %w", ErrVersionConflict, e)
	}
	return e
}

func (c *Client) getJSON(ctx context.Context, path string, query url.Values, into any) (*http.Response, error) {
	resp, body, err := c.do(ctx, request{method: http.MethodGet, path: path, query: query})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp, apiError(resp, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return resp, fmt.Errorf("decode %s: %w", path, err)
	}
	return resp, nil
}

// Info is the API's /v2/info: its version string tells which server
// answers (this project's dataplane says haproxy-tcp-operator).
func (c *Client) Info(ctx context.Context) (*models.Info, error) {
	var out models.Info
	_, err := c.getJSON(ctx, "/info", nil, &out)
	return &out, err
}

// Health reports whether HAProxy is up.
func (c *Client) Health(ctx context.Context) (bool, error) {
	var h models.Health
	if _, err := c.getJSON(ctx, "/health", nil, &h); err != nil {
		return false, err
	}
	return h.Haproxy == "up", nil
}

// Version is the configuration version.
func (c *Client) Version(ctx context.Context) (int64, error) {
	var v int64
	_, err := c.getJSON(ctx, "/services/haproxy/configuration/version", nil, &v)
	return v, err
}

// RawConfiguration is the stored configuration and its version. The
// version comes from the body's _version, else the Configuration-Version
// header, else the version endpoint: the official API leaves _version out
// when the file has no # _version line.
func (c *Client) RawConfiguration(ctx context.Context) (string, int64, error) {
	var raw struct {
		Version *int64 `json:"_version"`
		Data    string `json:"data"`
	}
	resp, err := c.getJSON(ctx, "/services/haproxy/configuration/raw", nil, &raw)
	if err != nil {
		return "", 0, err
	}
	if raw.Version != nil {
		return raw.Data, *raw.Version, nil
	}
	if v, err := strconv.ParseInt(resp.Header.Get("Configuration-Version"), 10, 64); err == nil {
		return raw.Data, v, nil
	}
	v, err := c.Version(ctx)
	if err != nil {
		return "", 0, fmt.Errorf("configuration version: %w", err)
	}
	return raw.Data, v, nil
}

// Action is one runtime action of X-Runtime-Actions, e.g.
// {"SetServerWeight", "be", "srv", "50"}.
type Action []string

// String is the action as X-Runtime-Actions spells it.
func (a Action) String() string { return strings.Join(a, " ") }

// Push says how a configuration is applied.
type Push struct {
	// Version the configuration is pushed against.
	Version int64
	// SkipReload applies Actions at runtime instead of reloading.
	SkipReload bool
	Actions    []Action
	// ForceReload reloads at once instead of queueing.
	ForceReload bool
	// ReturnStored asks for the stored configuration in the answer
	// (PushResult.Stored). Without it the client prefers a minimal answer
	// (RFC 7240): a large configuration is not sent back and decoded for
	// nothing. An API that ignores the preference answers in full.
	ReturnStored bool
}

// PushResult is what the API answered.
type PushResult struct {
	// Status is 201 (applied) or 202 (reload queued).
	Status   int
	ReloadID string
	// Version is the new configuration version when the API said it in
	// a Configuration-Version header, else 0.
	Version int64
	// Stored is the configuration as the API stored it (the body), when
	// Push.ReturnStored asked for it.
	Stored string
}

// PushConfiguration replaces the configuration. It is not retried: a lost
// answer is found out by the next version check.
func (c *Client) PushConfiguration(ctx context.Context, cfg []byte, p Push) (PushResult, error) {
	q := url.Values{"version": {strconv.FormatInt(p.Version, 10)}}
	header := http.Header{}
	if p.SkipReload {
		q.Set("skip_reload", "true")
		var parts []string
		for _, a := range p.Actions {
			parts = append(parts, a.String())
		}
		if len(parts) > 0 {
			header.Set("X-Runtime-Actions", strings.Join(parts, ";"))
		}
	}
	if p.ForceReload {
		q.Set("force_reload", "true")
	}
	if !p.ReturnStored {
		header.Set("Prefer", "return=minimal")
	}
	resp, body, err := c.do(ctx, request{
		method: http.MethodPost, path: "/services/haproxy/configuration/raw",
		query: q, body: cfg, contentType: "text/plain", header: header,
	})
	if err != nil {
		return PushResult{}, err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		return PushResult{}, configError(resp, body)
	}
	v, _ := strconv.ParseInt(resp.Header.Get("Configuration-Version"), 10, 64)
	res := PushResult{Status: resp.StatusCode, ReloadID: resp.Header.Get("Reload-ID"), Version: v}
	if p.ReturnStored {
		res.Stored = textBody(resp, body)
	}
	return res, nil
}

// textBody reads a body the specification types as a string: a JSON
// string, or plain text from servers that send it so.
func textBody(resp *http.Response, body []byte) string {
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil && mt == "application/json" {
		var s string
		if json.Unmarshal(body, &s) == nil {
			return s
		}
	}
	return string(body)
}

// Validate asks HAProxy to check cfg without applying it; a refusal is an
// *APIError carrying HAProxy's messages.
func (c *Client) Validate(ctx context.Context, cfg []byte) error {
	resp, body, err := c.do(ctx, request{
		method: http.MethodPost, path: "/services/haproxy/configuration/raw",
		query: url.Values{"only_validate": {"true"}}, body: cfg, contentType: "text/plain",
	})
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return apiError(resp, body)
	}
	return nil
}

// Reloads lists the recent reloads.
func (c *Client) Reloads(ctx context.Context) (models.Reloads, error) {
	var out models.Reloads
	_, err := c.getJSON(ctx, "/services/haproxy/reloads", nil, &out)
	return out, err
}

// Reload is the status of one reload.
func (c *Client) Reload(ctx context.Context, id string) (*models.Reload, error) {
	var out models.Reload
	_, err := c.getJSON(ctx, "/services/haproxy/reloads/"+url.PathEscape(id), nil, &out)
	return &out, err
}

// WaitReload polls reload id until it succeeded (nil) or failed (a
// *ReloadError with what HAProxy said), within ctx.
func (c *Client) WaitReload(ctx context.Context, id string) error {
	wait := c.PollInterval
	if wait <= 0 {
		wait = DefaultPollInterval
	}
	for {
		rl, err := c.Reload(ctx, id)
		if err != nil {
			return fmt.Errorf("reload %s: %w", id, err)
		}
		switch rl.Status {
		case models.ReloadStatusSucceeded:
			return nil
		case models.ReloadStatusFailed:
			return &ReloadError{ID: id, Response: rl.Response}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for reload %s: %w", id, ctx.Err())
		case <-time.After(wait):
		}
		if wait *= 2; wait > 500*time.Millisecond {
			wait = 500 * time.Millisecond
		}
	}
}

// RuntimeServers is the runtime state of a backend's servers.
func (c *Client) RuntimeServers(ctx context.Context, backend string) (models.RuntimeServers, error) {
	var out models.RuntimeServers
	_, err := c.getJSON(ctx, "/services/haproxy/runtime/servers", url.Values{"backend": {backend}}, &out)
	return out, err
}

// Certificates lists stored certificate files.
func (c *Client) Certificates(ctx context.Context) (models.SslCertificates, error) {
	var out models.SslCertificates
	_, err := c.getJSON(ctx, "/services/haproxy/storage/ssl_certificates", nil, &out)
	return out, err
}

// Certificate describes one stored certificate file (validity, and on
// some servers serial, subject and fingerprint).
func (c *Client) Certificate(ctx context.Context, name string) (*models.SslCertificate, error) {
	var out models.SslCertificate
	_, err := c.getJSON(ctx, "/services/haproxy/storage/ssl_certificates/"+url.PathEscape(name), nil, &out)
	return &out, err
}

// Stored is what the API answered to storing a file.
type Stored struct {
	// ReloadID is the reload the API queued for it, if any.
	ReloadID string
	// File is where the API says it keeps the file (its full path),
	// when it says so.
	File string
}

// StoreCertificate creates the PEM file name, or replaces it when replace
// is set. Creation sends no reload parameter: the specification defines
// none that skips it, and the official API queues a reload (202). A
// replacement is sent with skip_reload: the official API then only writes
// the file (the caller reloads), this project's dataplane also swaps it
// at runtime.
func (c *Client) StoreCertificate(ctx context.Context, name string, pem []byte, replace bool) (Stored, error) {
	return c.storeFile(ctx, "/services/haproxy/storage/ssl_certificates", name, pem, replace)
}

// storeFile creates (multipart POST) or replaces (text/plain PUT with
// skip_reload) a file of a storage collection and reads the answer's file
// path.
func (c *Client) storeFile(ctx context.Context, collection, name string, content []byte, replace bool) (Stored, error) {
	r := request{method: http.MethodPost, path: collection}
	if replace {
		r = request{
			method: http.MethodPut, path: collection + "/" + url.PathEscape(name),
			query: url.Values{"skip_reload": {"true"}}, body: content, contentType: "text/plain",
		}
	} else {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, err := mw.CreateFormFile("file_upload", name)
		if err != nil {
			return Stored{}, err
		}
		if _, err := fw.Write(content); err != nil {
			return Stored{}, err
		}
		if err := mw.Close(); err != nil {
			return Stored{}, err
		}
		r.body, r.contentType = buf.Bytes(), mw.FormDataContentType()
	}
	resp, body, err := c.do(ctx, r)
	if err != nil {
		return Stored{}, err
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated, http.StatusAccepted, http.StatusNoContent:
	default:
		return Stored{}, apiError(resp, body)
	}
	out := Stored{ReloadID: resp.Header.Get("Reload-ID")}
	// Both storage models carry the path in "file"; a 202 or 204 may
	// have no body.
	var f struct {
		File string `json:"file"`
	}
	if len(body) > 0 && json.Unmarshal(body, &f) == nil {
		out.File = f.File
	}
	return out, nil
}

// GeneralFiles lists the files of the general-use storage
// (storage/general): any content, CA bundles included. An API without it
// answers an *APIError with status 404 (or 405).
func (c *Client) GeneralFiles(ctx context.Context) (models.GeneralFiles, error) {
	var out models.GeneralFiles
	_, err := c.getJSON(ctx, "/services/haproxy/storage/general", nil, &out)
	return out, err
}

// GeneralFile is the content of one general-use file.
func (c *Client) GeneralFile(ctx context.Context, name string) ([]byte, error) {
	resp, body, err := c.do(ctx, request{method: http.MethodGet, path: "/services/haproxy/storage/general/" + url.PathEscape(name)})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, apiError(resp, body)
	}
	return body, nil
}

// StoreGeneralFile creates the general-use file name, or replaces it
// when replace is set (without a reload: the caller reloads when the
// configuration loads the file).
func (c *Client) StoreGeneralFile(ctx context.Context, name string, content []byte, replace bool) (Stored, error) {
	return c.storeFile(ctx, "/services/haproxy/storage/general", name, content, replace)
}

// DeleteGeneralFile removes a general-use file; a file already gone is
// not an error.
func (c *Client) DeleteGeneralFile(ctx context.Context, name string) error {
	resp, body, err := c.do(ctx, request{method: http.MethodDelete, path: "/services/haproxy/storage/general/" + url.PathEscape(name)})
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusAccepted, http.StatusNotFound:
		return nil
	}
	return apiError(resp, body)
}

// CreateCertificate stores a new PEM file; see StoreCertificate.
func (c *Client) CreateCertificate(ctx context.Context, name string, pem []byte) error {
	_, err := c.StoreCertificate(ctx, name, pem, false)
	return err
}

// ReplaceCertificate replaces a stored PEM file; see StoreCertificate.
func (c *Client) ReplaceCertificate(ctx context.Context, name string, pem []byte) error {
	_, err := c.StoreCertificate(ctx, name, pem, true)
	return err
}

// DeleteCertificate removes a stored PEM file without a reload; a file
// already gone is not an error.
func (c *Client) DeleteCertificate(ctx context.Context, name string) error {
	resp, body, err := c.do(ctx, request{
		method: http.MethodDelete, path: "/services/haproxy/storage/ssl_certificates/" + url.PathEscape(name),
		query: url.Values{"skip_reload": {"true"}},
	})
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusAccepted, http.StatusNotFound:
		return nil
	}
	return apiError(resp, body)
}
