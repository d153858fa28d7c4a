package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/haproxytech/client-native/v5/models"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/runtime"
)

// Map files live in Options.MapDir (TCPM_MAP_DIR for HAProxy). As on the
// official Data Plane API, a map is named on the API by its storage name
// and resolved to <MapDir>/<name>, ".map" added when the name lacks it;
// "#<id>" names a loaded map by HAProxy's id. The configuration loads the
// map by that path (map("${TCPM_MAP_DIR}/<name>")), so runtime commands
// reach the map it uses. Where the official API rewrites characters
// outside letters, digits, - and _ to _, the dataplane refuses them: the
// name given is the file's name.
//
// Runtime changes (runtime/maps_entries, runtime/maps/{name}) change
// HAProxy's memory; with force_sync=true the map file is rewritten from
// what HAProxy holds, so the next reload loads the same entries.

// mapBase is a storage name without its extension.
var mapBase = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// mapFile resolves a map's API name to the map identifier HAProxy knows
// (the file's path, or #id) and the storage name.
func (s *Server) mapFile(name string) (ref, storageName string, err error) {
	if strings.HasPrefix(name, "#") {
		return name, "", nil
	}
	base := strings.TrimSuffix(name, ".map")
	if !mapBase.MatchString(base) {
		return "", "", fmt.Errorf("map %q: a map's name is letters, digits, - and _, optionally with .map", name)
	}
	return filepath.Join(s.opt.MapDir, base+".map"), base + ".map", nil
}

// requireMap reads the map query parameter.
func (s *Server) requireMap(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.URL.Query().Get("map")
	if name == "" {
		writeError(w, http.StatusBadRequest, "query parameter map: required")
		return "", false
	}
	ref, _, err := s.mapFile(name)
	if err != nil {
		writeError(w, http.StatusBadRequest, "query parameter map: "+err.Error())
		return "", false
	}
	return ref, true
}

// syncMap writes what HAProxy holds for map ref to its file (atomically),
// when force_sync asks for it. Callers hold s.mu.
func (s *Server) syncMap(ctx context.Context, r *http.Request, ref string) error {
	sync, err := queryBool(r, "force_sync")
	if err != nil || !sync {
		return err
	}
	if strings.HasPrefix(ref, "#") {
		return errors.New("force_sync needs the map's name, not its id")
	}
	entries, err := s.rt.MapEntries(ctx, ref)
	if err != nil {
		return fmt.Errorf("read map %s: %w", ref, err)
	}
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.Key + " " + e.Value + "\n")
	}
	if err := writeFileAtomic(ref, []byte(b.String())); err != nil {
		return fmt.Errorf("sync map %s to disk: %w", ref, err)
	}
	return nil
}

func (s *Server) writeMapError(w http.ResponseWriter, what string, err error) {
	writeError(w, runtimeStatus(err), what+": "+err.Error())
}

func toModelEntry(e runtime.MapEntry) *models.MapEntry {
	return &models.MapEntry{ID: e.ID, Key: e.Key, Value: e.Value}
}

// getMapEntries lists the entries HAProxy holds for the map.
func (s *Server) getMapEntries(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.requireMap(w, r)
	if !ok {
		return
	}
	entries, err := s.rt.MapEntries(r.Context(), ref)
	if err != nil {
		s.writeMapError(w, "show map", err)
		return
	}
	out := models.MapEntries{}
	for _, e := range entries {
		out = append(out, toModelEntry(e))
	}
	writeJSON(w, http.StatusOK, out)
}

// getMapEntry answers the entry whose key is id exactly.
func (s *Server) getMapEntry(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.requireMap(w, r)
	if !ok {
		return
	}
	key := r.PathValue("id")
	e, found, err := s.rt.MapEntry(r.Context(), ref, key)
	if err != nil {
		s.writeMapError(w, "show map", err)
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("map %s has no key %s", ref, key))
		return
	}
	writeJSON(w, http.StatusOK, toModelEntry(e))
}

// addMapEntry adds key → value; a key already there is a 409 (HAProxy
// itself would add a second entry).
func (s *Server) addMapEntry(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.requireMap(w, r)
	if !ok {
		return
	}
	var e models.MapEntry
	if err := readJSON(r, &e); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if e.Key == "" || e.Value == "" {
		writeError(w, http.StatusBadRequest, "key and value: required")
		return
	}
	ctx := r.Context()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, found, err := s.rt.MapEntry(ctx, ref, e.Key); err != nil {
		s.writeMapError(w, "show map", err)
		return
	} else if found {
		writeError(w, http.StatusConflict, fmt.Sprintf("map %s already has key %s", ref, e.Key))
		return
	}
	if err := s.rt.AddMapEntry(ctx, ref, e.Key, e.Value); err != nil {
		s.writeMapError(w, "add map", err)
		return
	}
	if err := s.syncMap(ctx, r, ref); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, &models.MapEntry{Key: e.Key, Value: e.Value})
}

// replaceMapEntry sets the value of key id.
func (s *Server) replaceMapEntry(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.requireMap(w, r)
	if !ok {
		return
	}
	key := r.PathValue("id")
	var body struct {
		Value *string `json:"value"`
	}
	if err := readJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if body.Value == nil || *body.Value == "" {
		writeError(w, http.StatusBadRequest, "value: required")
		return
	}
	ctx := r.Context()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rt.SetMapEntry(ctx, ref, key, *body.Value); err != nil {
		s.writeMapError(w, "set map", err)
		return
	}
	if err := s.syncMap(ctx, r, ref); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, &models.MapEntry{Key: key, Value: *body.Value})
}

// deleteMapEntry removes key id.
func (s *Server) deleteMapEntry(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.requireMap(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rt.DeleteMapEntry(ctx, ref, r.PathValue("id")); err != nil {
		s.writeMapError(w, "del map", err)
		return
	}
	if err := s.syncMap(ctx, r, ref); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// runtimeMapModel describes a loaded map; a map in MapDir carries its
// storage name.
func (s *Server) runtimeMapModel(m runtime.Map) *models.Map {
	out := &models.Map{ID: m.ID, File: m.File, Description: m.Description}
	if filepath.Dir(m.File) == filepath.Clean(s.opt.MapDir) {
		out.StorageName = filepath.Base(m.File)
	}
	return out
}

// getRuntimeMaps lists the maps HAProxy has loaded from MapDir (every
// loaded map with include_unmanaged).
func (s *Server) getRuntimeMaps(w http.ResponseWriter, r *http.Request) {
	all, err := queryBool(r, "include_unmanaged")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	maps, err := s.rt.Maps(r.Context())
	if err != nil {
		s.writeMapError(w, "show map", err)
		return
	}
	out := models.Maps{}
	for _, m := range maps {
		if mm := s.runtimeMapModel(m); all || mm.StorageName != "" {
			out = append(out, mm)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// loadedMap finds the loaded map an API name resolves to.
func (s *Server) loadedMap(ctx context.Context, name string) (runtime.Map, error) {
	ref, _, err := s.mapFile(name)
	if err != nil {
		return runtime.Map{}, err
	}
	maps, err := s.rt.Maps(ctx)
	if err != nil {
		return runtime.Map{}, err
	}
	for _, m := range maps {
		if m.File == ref || "#"+m.ID == ref {
			return m, nil
		}
	}
	return runtime.Map{}, &runtime.CommandError{Command: "show map", Message: "HAProxy has not loaded map " + name}
}

func (s *Server) getRuntimeMap(w http.ResponseWriter, r *http.Request) {
	m, err := s.loadedMap(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.runtimeMapModel(m))
}

// clearRuntimeMap removes every entry HAProxy holds for the map; with
// forceDelete the map file is deleted too, with force_sync it is emptied.
func (s *Server) clearRuntimeMap(w http.ResponseWriter, r *http.Request) {
	forceDelete, err := queryBool(r, "forceDelete")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	m, err := s.loadedMap(ctx, r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rt.ClearMap(ctx, m.File); err != nil {
		s.writeMapError(w, "clear map", err)
		return
	}
	if forceDelete {
		if err := os.Remove(m.File); err != nil && !errors.Is(err, os.ErrNotExist) {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
	} else if err := s.syncMap(ctx, r, m.File); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// addRuntimeMapPayload adds several entries in one command.
func (s *Server) addRuntimeMapPayload(w http.ResponseWriter, r *http.Request) {
	var entries models.MapEntries
	if err := readJSON(r, &entries); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	m, err := s.loadedMap(ctx, r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	var add []runtime.MapEntry
	for i, e := range entries {
		if e == nil || e.Key == "" || e.Value == "" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("entry %d: key and value: required", i))
			return
		}
		add = append(add, runtime.MapEntry{Key: e.Key, Value: e.Value})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rt.AddMapEntries(ctx, m.File, add); err != nil {
		s.writeMapError(w, "add map", err)
		return
	}
	if err := s.syncMap(ctx, r, m.File); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, entries)
}

// Map storage: files in MapDir, "key value" lines.

// storageMapModel describes a stored map file.
func (s *Server) storageMapModel(name string) (*models.Map, error) {
	file := filepath.Join(s.opt.MapDir, name)
	st, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	size := st.Size()
	return &models.Map{StorageName: name, File: file, Description: "managed but not loaded map file (no runtime ID)", Size: &size}, nil
}

// storageName checks a stored map's name: letters, digits, - and _, and
// the .map extension.
func storageName(name string) error {
	if !strings.HasSuffix(name, ".map") || !mapBase.MatchString(strings.TrimSuffix(name, ".map")) {
		return fmt.Errorf("map file name %q: letters, digits, - and _ followed by .map", name)
	}
	return nil
}

// checkMapContent refuses content HAProxy would not load as a map: every
// line not blank and not a comment is a key and a value.
func checkMapContent(data []byte) error {
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(strings.Fields(line)) < 2 {
			return fmt.Errorf("line %d: a key and a value expected, got %q", i+1, line)
		}
	}
	return nil
}

func (s *Server) listStorageMaps(w http.ResponseWriter, _ *http.Request) {
	entries, err := os.ReadDir(s.opt.MapDir)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("list maps: %v", err))
		return
	}
	out := models.Maps{}
	for _, e := range entries {
		if !e.Type().IsRegular() || storageName(e.Name()) != nil {
			continue
		}
		if m, err := s.storageMapModel(e.Name()); err == nil {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StorageName < out[j].StorageName })
	writeJSON(w, http.StatusOK, out)
}

// createStorageMap stores a multipart file_upload: 201, 409 when the
// file exists. No reload: a configuration that loads the map comes after.
func (s *Server) createStorageMap(w http.ResponseWriter, r *http.Request) {
	name, data, err := readUpload(r, 64<<20)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := storageName(name); err != nil {
		writeError(w, http.StatusBadRequest, "file_upload: "+err.Error())
		return
	}
	if err := checkMapContent(data); err != nil {
		writeError(w, http.StatusBadRequest, name+": "+err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if code, err := storeNew(s.opt.MapDir, name, data, "map file"); err != nil {
		writeError(w, code, err.Error())
		return
	}
	m, err := s.storageMapModel(name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, m)
}

func (s *Server) getStorageMap(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if storageName(name) != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("map file %s not found", name))
		return
	}
	data, err := os.ReadFile(filepath.Join(s.opt.MapDir, name))
	if err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("map file %s not found", name))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// replaceStorageMap writes the file: 204 with skip_reload; otherwise a
// configuration that loads it is reloaded (202 with the Reload-ID of a
// queued reload, 204 after a forced one) and a file nothing loads is just
// written (204). The entries HAProxy runs change at runtime only through
// runtime/maps_entries.
func (s *Server) replaceStorageMap(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	skipReload, forceReload, err := readCertParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if storageName(name) != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("map file %s not found", name))
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := checkMapContent(data); err != nil {
		writeError(w, http.StatusBadRequest, name+": "+err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	path := filepath.Join(s.opt.MapDir, name)
	if _, err := os.Stat(path); err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("map file %s not found", name))
		return
	}
	if err := writeFileAtomic(path, data); err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("store %s: %v", name, err))
		return
	}
	code := http.StatusNoContent
	if !skipReload {
		used, err := s.inUse(name)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if used {
			if code, err = s.reloadFor(w, forceReload, http.StatusNoContent); err != nil {
				writeError(w, http.StatusInternalServerError, "reload failed: "+err.Error())
				return
			}
		}
	}
	w.WriteHeader(code)
}

// deleteStorageMap removes a stored map file; one the stored
// configuration still loads is refused (400), as certificates are.
func (s *Server) deleteStorageMap(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if storageName(name) != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("map file %s not found", name))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	path := filepath.Join(s.opt.MapDir, name)
	if _, err := os.Stat(path); err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("map file %s not found", name))
		return
	}
	if used, err := s.inUse(name); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	} else if used {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("map file %s is loaded by the stored configuration", name))
		return
	}
	if err := os.Remove(path); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
