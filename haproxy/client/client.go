// Package client is the operator's typed client for the HAProxy Data Plane
// API v2. It uses only endpoints, parameters and headers the specification
// in client-native defines, so the official dataplaneapi can stand in for
// this project's dataplane. It retries connection errors with backoff;
// version conflicts are returned as ErrVersionConflict for the caller to
// re-read and retry.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
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

// Client talks to one instance's Data Plane API.
type Client struct {
	base       string
	user, pass string
	http       *http.Client
	// Attempts is how many times a request is tried on connection errors.
	Attempts int
	// Backoff is the first wait between attempts; it doubles.
	Backoff time.Duration
}

// New returns a client for the API at endpoint (http[s]://host:port).
func New(endpoint, user, pass string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 60 * time.Second}
	}
	return &Client{
		base: strings.TrimSuffix(endpoint, "/") + "/v2",
		user: user, pass: pass, http: httpClient,
		Attempts: 4, Backoff: 100 * time.Millisecond,
	}
}

// APIError is an answer other than the one expected.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("data plane API: %d: %s", e.Status, e.Message) }

type request struct {
	method      string
	path        string
	query       url.Values
	body        []byte
	contentType string
	header      http.Header
}

func (c *Client) do(ctx context.Context, r request) (*http.Response, []byte, error) {
	var lastErr error
	wait := c.Backoff
	for attempt := 0; attempt < c.Attempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-time.After(wait):
			}
			wait *= 2
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
			// Connection errors are worth another try; the request never
			// reached the API or its answer was lost.
			lastErr = err
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			lastErr = err
			continue
		}
		return resp, body, nil
	}
	return nil, nil, fmt.Errorf("%s %s: %w", r.method, r.path, lastErr)
}

func apiError(resp *http.Response, body []byte) error {
	var e models.Error
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Message != nil {
		msg = *e.Message
	}
	if resp.StatusCode == http.StatusConflict {
		return fmt.Errorf("%w: %s", ErrVersionConflict, msg)
	}
	return &APIError{Status: resp.StatusCode, Message: msg}
}

func (c *Client) getJSON(ctx context.Context, path string, query url.Values, into any) error {
	resp, body, err := c.do(ctx, request{method: http.MethodGet, path: path, query: query})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return apiError(resp, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// Health reports whether HAProxy is up.
func (c *Client) Health(ctx context.Context) (bool, error) {
	var h models.Health
	if err := c.getJSON(ctx, "/health", nil, &h); err != nil {
		return false, err
	}
	return h.Haproxy == "up", nil
}

// Version is the configuration version.
func (c *Client) Version(ctx context.Context) (int64, error) {
	var v int64
	err := c.getJSON(ctx, "/services/haproxy/configuration/version", nil, &v)
	return v, err
}

// RawConfiguration is the stored configuration and its version.
func (c *Client) RawConfiguration(ctx context.Context) (string, int64, error) {
	var raw struct {
		Version int64  `json:"_version"`
		Data    string `json:"data"`
	}
	if err := c.getJSON(ctx, "/services/haproxy/configuration/raw", nil, &raw); err != nil {
		return "", 0, err
	}
	return raw.Data, raw.Version, nil
}

// Action is one runtime action of X-Runtime-Actions, e.g.
// {"SetServerWeight", "be", "srv", "50"}.
type Action []string

// Push says how a configuration is applied.
type Push struct {
	// Version the configuration is pushed against.
	Version int64
	// SkipReload applies Actions at runtime instead of reloading.
	SkipReload bool
	Actions    []Action
	// ForceReload reloads at once instead of queueing.
	ForceReload bool
}

// PushResult is what the API answered.
type PushResult struct {
	// Status is 201 (applied) or 202 (reload queued).
	Status   int
	ReloadID string
	Version  int64
}

// PushConfiguration replaces the configuration.
func (c *Client) PushConfiguration(ctx context.Context, cfg []byte, p Push) (PushResult, error) {
	q := url.Values{"version": {strconv.FormatInt(p.Version, 10)}}
	header := http.Header{}
	if p.SkipReload {
		q.Set("skip_reload", "true")
		var parts []string
		for _, a := range p.Actions {
			parts = append(parts, strings.Join(a, " "))
		}
		if len(parts) > 0 {
			header.Set("X-Runtime-Actions", strings.Join(parts, ";"))
		}
	}
	if p.ForceReload {
		q.Set("force_reload", "true")
	}
	resp, body, err := c.do(ctx, request{
		method: http.MethodPost, path: "/services/haproxy/configuration/raw",
		query: q, body: cfg, contentType: "text/plain", header: header,
	})
	if err != nil {
		return PushResult{}, err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		return PushResult{}, apiError(resp, body)
	}
	v, _ := strconv.ParseInt(resp.Header.Get("Configuration-Version"), 10, 64)
	return PushResult{Status: resp.StatusCode, ReloadID: resp.Header.Get("Reload-ID"), Version: v}, nil
}

// Validate asks HAProxy to check cfg without applying it.
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
	err := c.getJSON(ctx, "/services/haproxy/reloads", nil, &out)
	return out, err
}

// Reload is the status of one reload.
func (c *Client) Reload(ctx context.Context, id string) (*models.Reload, error) {
	var out models.Reload
	err := c.getJSON(ctx, "/services/haproxy/reloads/"+url.PathEscape(id), nil, &out)
	return &out, err
}

// RuntimeServers is the runtime state of a backend's servers.
func (c *Client) RuntimeServers(ctx context.Context, backend string) (models.RuntimeServers, error) {
	var out models.RuntimeServers
	err := c.getJSON(ctx, "/services/haproxy/runtime/servers", url.Values{"backend": {backend}}, &out)
	return out, err
}

// Certificates lists stored certificate files.
func (c *Client) Certificates(ctx context.Context) (models.SslCertificates, error) {
	var out models.SslCertificates
	err := c.getJSON(ctx, "/services/haproxy/storage/ssl_certificates", nil, &out)
	return out, err
}

// CreateCertificate stores a new PEM file.
func (c *Client) CreateCertificate(ctx context.Context, name string, pem []byte) error {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file_upload", name)
	if err != nil {
		return err
	}
	if _, err := fw.Write(pem); err != nil {
		return err
	}
	if err := mw.Close(); err != nil {
		return err
	}
	resp, body, err := c.do(ctx, request{
		method: http.MethodPost, path: "/services/haproxy/storage/ssl_certificates",
		query: url.Values{"skip_reload": {"true"}}, body: buf.Bytes(), contentType: mw.FormDataContentType(),
	})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return apiError(resp, body)
	}
	return nil
}

// ReplaceCertificate replaces a stored PEM file; HAProxy serves it to new
// connections when it has the file loaded.
func (c *Client) ReplaceCertificate(ctx context.Context, name string, pem []byte) error {
	resp, body, err := c.do(ctx, request{
		method: http.MethodPut, path: "/services/haproxy/storage/ssl_certificates/" + url.PathEscape(name),
		query: url.Values{"skip_reload": {"true"}}, body: pem, contentType: "text/plain",
	})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return apiError(resp, body)
	}
	return nil
}

// DeleteCertificate removes a stored PEM file.
func (c *Client) DeleteCertificate(ctx context.Context, name string) error {
	resp, body, err := c.do(ctx, request{
		method: http.MethodDelete, path: "/services/haproxy/storage/ssl_certificates/" + url.PathEscape(name),
		query: url.Values{"skip_reload": {"true"}},
	})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusAccepted {
		return apiError(resp, body)
	}
	return nil
}
