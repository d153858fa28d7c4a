package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/haproxytech/client-native/v5/models"
)

// Runtime maps and dynamic servers: the specification's runtime/maps,
// runtime/maps_entries, storage/maps and runtime/servers endpoints. They
// change what HAProxy runs without a reload.
//
// A map is named on the API by its storage name (e.g. "sni_443.map"):
// both this project's dataplane and the official API keep map files in
// one directory of their own (the dataplane's TCPM_MAP_DIR, the official
// API's maps_dir) and resolve a storage name to <dir>/<name>, adding
// ".map" when the name has another extension or none. The configuration
// must load the map by exactly that path for runtime changes to reach it.
// Use names of letters, digits, - and _ followed by ".map": the official
// API rewrites any other character to _.
//
// Runtime changes to a map's entries live in HAProxy's memory only; the
// map file is read again at the next reload. A caller that changes
// entries at runtime also replaces the file (StoreMap with replace) so a
// later reload loads the same entries.

// IsStatus reports whether err is an answer of the API with that status.
func IsStatus(err error, status int) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == status
}

const (
	mapEntriesPath = "/services/haproxy/runtime/maps_entries"
	runtimeMaps    = "/services/haproxy/runtime/maps"
	storageMaps    = "/services/haproxy/storage/maps"
	runtimeServers = "/services/haproxy/runtime/servers"
)

// sendJSON sends v as a JSON body and decodes a JSON answer into out (when
// out is not nil and the answer has a body); any status not in ok is an
// *APIError.
func (c *Client) sendJSON(ctx context.Context, method, path string, query url.Values, v, out any, ok ...int) error {
	r := request{method: method, path: path, query: query}
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		r.body, r.contentType = b, "application/json"
	}
	resp, body, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	for _, code := range ok {
		if resp.StatusCode != code {
			continue
		}
		if out != nil && len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, out); err != nil {
				return fmt.Errorf("decode %s %s: %w", method, path, err)
			}
		}
		return nil
	}
	return apiError(resp, body)
}

// MapEntries lists the entries HAProxy holds for the map mapName (storage
// name). An unknown map is an *APIError with status 404.
func (c *Client) MapEntries(ctx context.Context, mapName string) (models.MapEntries, error) {
	var out models.MapEntries
	_, err := c.getJSON(ctx, mapEntriesPath, url.Values{"map": {mapName}}, &out)
	return out, err
}

// MapEntry is the entry of key in map mapName; a key the map lacks is an
// *APIError with status 404.
func (c *Client) MapEntry(ctx context.Context, mapName, key string) (*models.MapEntry, error) {
	var out models.MapEntry
	_, err := c.getJSON(ctx, mapEntriesPath+"/"+url.PathEscape(key), url.Values{"map": {mapName}}, &out)
	return &out, err
}

// AddMapEntry adds key → value to map mapName at runtime. A key already
// there is an *APIError with status 409 (use SetMapEntry to change it).
// Not retried: a lost answer shows as 409 on the next try.
func (c *Client) AddMapEntry(ctx context.Context, mapName, key, value string) error {
	return c.sendJSON(ctx, http.MethodPost, mapEntriesPath, url.Values{"map": {mapName}},
		&models.MapEntry{Key: key, Value: value}, nil, http.StatusCreated)
}

// SetMapEntry changes the value of key in map mapName at runtime; a key
// the map lacks is an *APIError with status 404.
func (c *Client) SetMapEntry(ctx context.Context, mapName, key, value string) error {
	return c.sendJSON(ctx, http.MethodPut, mapEntriesPath+"/"+url.PathEscape(key), url.Values{"map": {mapName}},
		map[string]string{"value": value}, nil, http.StatusOK)
}

// PutMapEntry makes key map to value in map mapName at runtime, adding
// or changing it (SetMapEntry, then AddMapEntry when the key is not
// there).
func (c *Client) PutMapEntry(ctx context.Context, mapName, key, value string) error {
	err := c.SetMapEntry(ctx, mapName, key, value)
	if IsStatus(err, http.StatusNotFound) {
		err = c.AddMapEntry(ctx, mapName, key, value)
	}
	return err
}

// DeleteMapEntry removes key from map mapName at runtime; a key already
// gone is not an error.
func (c *Client) DeleteMapEntry(ctx context.Context, mapName, key string) error {
	err := c.sendJSON(ctx, http.MethodDelete, mapEntriesPath+"/"+url.PathEscape(key), url.Values{"map": {mapName}},
		nil, nil, http.StatusNoContent)
	if IsStatus(err, http.StatusNotFound) {
		return nil
	}
	return err
}

// RuntimeMaps lists the maps HAProxy has loaded that live in the API's
// map directory (with includeUnmanaged, every map HAProxy has loaded).
func (c *Client) RuntimeMaps(ctx context.Context, includeUnmanaged bool) (models.Maps, error) {
	var out models.Maps
	var q url.Values
	if includeUnmanaged {
		q = url.Values{"include_unmanaged": {"true"}}
	}
	_, err := c.getJSON(ctx, runtimeMaps, q, &out)
	return out, err
}

// Maps lists the map files of the API's map storage (storage name and
// full path in File).
func (c *Client) Maps(ctx context.Context) (models.Maps, error) {
	var out models.Maps
	_, err := c.getJSON(ctx, storageMaps, nil, &out)
	return out, err
}

// MapFile is the content of a stored map file.
func (c *Client) MapFile(ctx context.Context, name string) ([]byte, error) {
	resp, body, err := c.do(ctx, request{method: http.MethodGet, path: storageMaps + "/" + url.PathEscape(name)})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, apiError(resp, body)
	}
	return body, nil
}

// StoreMap creates the map file name (content: "key value" lines), or
// replaces it when replace is set. Creation is a multipart POST (409 when
// it exists); replacement is a text/plain PUT with skip_reload, which
// writes the file only: the entries HAProxy runs change through the
// runtime map calls (or the next reload). Stored.File is the full path
// the API keeps the file under: the path the configuration must load.
func (c *Client) StoreMap(ctx context.Context, name string, content []byte, replace bool) (Stored, error) {
	return c.storeFile(ctx, storageMaps, name, content, replace)
}

// DeleteMap removes a stored map file; a file already gone is not an
// error. The configuration must no longer load it.
func (c *Client) DeleteMap(ctx context.Context, name string) error {
	err := c.sendJSON(ctx, http.MethodDelete, storageMaps+"/"+url.PathEscape(name), nil, nil, nil,
		http.StatusNoContent, http.StatusAccepted)
	if IsStatus(err, http.StatusNotFound) {
		return nil
	}
	return err
}

// RuntimeServer is the runtime state of one server; an unknown backend or
// server is an *APIError with status 404.
func (c *Client) RuntimeServer(ctx context.Context, backend, name string) (*models.RuntimeServer, error) {
	var out models.RuntimeServer
	_, err := c.getJSON(ctx, runtimeServers+"/"+url.PathEscape(name), url.Values{"backend": {backend}}, &out)
	return &out, err
}

// ReplaceRuntimeServer sets a server's administrative state (AdminState:
// ready, drain, maint) and operational state (OperationalState: up, down,
// stopping) as s gives them; empty fields are left as they are.
func (c *Client) ReplaceRuntimeServer(ctx context.Context, backend, name string, s models.RuntimeServer) (*models.RuntimeServer, error) {
	var out models.RuntimeServer
	err := c.sendJSON(ctx, http.MethodPut, runtimeServers+"/"+url.PathEscape(name), url.Values{"backend": {backend}},
		&s, &out, http.StatusOK)
	return &out, err
}

// AddRuntimeServer adds server s.Name to backend at runtime (HAProxy's
// "add server"; the backend needs a dynamic balance algorithm, and 2.6
// applies no default-server line). Unless s.Maintenance is "enabled", the
// server then takes traffic. It is always created in maintenance and then
// set ready with a second request (PUT admin_state ready): on HAProxy 2.6
// a server created with the "enabled" keyword, which the official API
// sends for a body without maintenance, never joins the load balancing,
// while one set ready does. An existing name is an *APIError with status
// 409, an unknown backend 404, options HAProxy refuses 400.
//
// The official dataplaneapi v2.9 turns only the first option it finds in
// s into the command (it stops at the first match, in the order of its
// serializer: agent, alpn, backup, ca-file, check, ...; maintenance comes
// before weight): there a server gets weight 1 and no TLS options, and
// should be added with name, address and port only.
func (c *Client) AddRuntimeServer(ctx context.Context, backend string, s models.RuntimeAddServer) error {
	if s.Name == "" {
		return errors.New("add runtime server: name is empty")
	}
	keepMaint := s.Maintenance == "enabled"
	s.Maintenance = "enabled"
	if err := c.sendJSON(ctx, http.MethodPost, runtimeServers, url.Values{"backend": {backend}},
		&s, nil, http.StatusCreated); err != nil {
		return fmt.Errorf("add server %s/%s: %w", backend, s.Name, err)
	}
	if keepMaint {
		return nil
	}
	if _, err := c.ReplaceRuntimeServer(ctx, backend, s.Name, models.RuntimeServer{AdminState: models.RuntimeServerAdminStateReady}); err != nil {
		return fmt.Errorf("enable added server %s/%s: %w", backend, s.Name, err)
	}
	return nil
}

// DeleteRuntimeServer removes a server HAProxy runs (HAProxy's "del
// server"): it is set to maintenance first (no new connections), then
// deleted. HAProxy deletes only a server without connections: this
// project's dataplane shuts the server's remaining connections down; on
// other APIs the delete is retried until they have ended or ctx ends (a
// caller wanting a graceful end drains first: ReplaceRuntimeServer with
// AdminState "drain", and waits). A server already gone is not an error.
func (c *Client) DeleteRuntimeServer(ctx context.Context, backend, name string) error {
	// The official API answers a PUT for a missing server with a 500;
	// its GET says 404.
	if _, err := c.RuntimeServer(ctx, backend, name); err != nil {
		if IsStatus(err, http.StatusNotFound) {
			return nil
		}
		return fmt.Errorf("delete server %s/%s: %w", backend, name, err)
	}
	if _, err := c.ReplaceRuntimeServer(ctx, backend, name, models.RuntimeServer{AdminState: models.RuntimeServerAdminStateMaint}); err != nil {
		return fmt.Errorf("delete server %s/%s: set maintenance: %w", backend, name, err)
	}
	wait := c.PollInterval
	if wait <= 0 {
		wait = DefaultPollInterval
	}
	for {
		err := c.sendJSON(ctx, http.MethodDelete, runtimeServers+"/"+url.PathEscape(name), url.Values{"backend": {backend}},
			nil, nil, http.StatusNoContent)
		switch {
		case err == nil, IsStatus(err, http.StatusNotFound):
			return nil
		case !stillConnected(err):
			return fmt.Errorf("delete server %s/%s: %w", backend, name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("delete server %s/%s: %w (last answer: %v)", backend, name, ctx.Err(), err)
		case <-time.After(wait):
		}
		if wait *= 2; wait > 500*time.Millisecond {
			wait = 500 * time.Millisecond
		}
	}
}

// stillConnected reports whether a refused delete says the server still
// has connections (HAProxy: "Server still has connections attached to
// it, cannot remove it.").
func stillConnected(err error) bool {
	var e *APIError
	return errors.As(err, &e) && strings.Contains(strings.ToLower(e.Message), "connections")
}
