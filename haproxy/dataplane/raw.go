package dataplane

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

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

// getVersion answers from the version the server keeps: only it writes
// the file, under s.mu, and it records the version of every write. At
// 10,000 mappings reading the 4 MB file for it cost more than anything
// else a weight change asks of the instance.
func (s *Server) getVersion(w http.ResponseWriter, _ *http.Request) {
	v := s.version.Load()
	w.Header().Set("Configuration-Version", strconv.FormatInt(v, 10))
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

// queryBool reads a boolean query parameter; a value that is not a
// boolean is an error naming the parameter.
func queryBool(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("query parameter %s: %q is not a boolean", name, v)
	}
	return b, nil
}

// rawParams are the query parameters of POST configuration/raw.
type rawParams struct {
	skipVersion, skipReload, onlyValidate, forceReload bool
}

func readRawParams(r *http.Request) (rawParams, error) {
	var p rawParams
	for _, f := range []struct {
		name string
		into *bool
	}{
		{"skip_version", &p.skipVersion}, {"skip_reload", &p.skipReload},
		{"only_validate", &p.onlyValidate}, {"force_reload", &p.forceReload},
	} {
		v, err := queryBool(r, f.name)
		if err != nil {
			return p, err
		}
		*f.into = v
	}
	return p, nil
}

// postRaw replaces the configuration. It changes nothing unless every
// step succeeds, in this order: version check, haproxy -c on a temporary
// file (for a forced reload, after it and only when it failed:
// reloadChecks), the X-Runtime-Actions (skip_reload only; undone when one
// fails), storing file and version (write and rename), and the reload (queued, or
// at once with force_reload). A reload HAProxy cannot complete puts the
// previous file and version back; the previous worker keeps serving.
func (s *Server) postRaw(w http.ResponseWriter, r *http.Request) {
	p, err := readRawParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	body, err := readBody(r, 64<<20)
	if err != nil {
		writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	actions, err := parseActions(r.Header.Get("X-Runtime-Actions"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(actions) > 0 && !p.skipReload && !p.onlyValidate {
		writeError(w, http.StatusBadRequest, "X-Runtime-Actions needs skip_reload=true")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	current := s.version.Load()
	if !p.skipVersion && !p.onlyValidate {
		v, err := strconv.ParseInt(r.URL.Query().Get("version"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "query parameter version: required unless skip_version=true")
			return
		}
		if v != current {
			writeError(w, http.StatusConflict, fmt.Sprintf("version mismatch: the configuration is at version %d, not %d", current, v))
			return
		}
	}
	nextVersion := current + 1
	if p.skipVersion {
		// skip_version enforces the file without a version check; it is
		// not a new version of the one the caller read.
		nextVersion = current
	}
	next := withVersion(string(body), nextVersion)
	tmp, err := writeTemp(s.opt.Dir, "haproxy.cfg.check-", []byte(next))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "write configuration: "+err.Error())
		return
	}
	defer os.Remove(tmp)
	checkedByReload := s.reloadChecks(p)
	if !checkedByReload && !s.validPart(p, next) {
		if out, err := s.validate(tmp); err != nil {
			writeError(w, http.StatusBadRequest, refusedMessage(err, out))
			return
		}
	}
	if p.onlyValidate {
		writeJSON(w, http.StatusAccepted, "configuration is valid")
		return
	}
	if p.skipReload {
		if err := s.runActions(r.Context(), actions); err != nil {
			writeError(w, http.StatusBadRequest, err.Error()+"; the configuration was not stored")
			return
		}
	}
	if checkedByReload {
		// Until the reload vouched for it, the stored text is unchecked:
		// a dataplane that stops before then starts from the copy of what
		// runs (recoverUncheckedReload).
		if err := writeFileAtomic(s.previousPath(), []byte(s.good)); err != nil {
			writeError(w, http.StatusInternalServerError, "keep the running configuration: "+err.Error())
			return
		}
		defer os.Remove(s.previousPath())
	}
	if err := os.Rename(tmp, s.cfgPath); err != nil {
		writeError(w, http.StatusInternalServerError, "store configuration: "+err.Error())
		return
	}
	s.version.Store(nextVersion)
	s.setConfigHeaders(w, next, nextVersion)

	switch {
	case p.skipReload:
		if s.pending == nil {
			// The runtime actions made HAProxy match the new file.
			s.good = next
		}
	case p.forceReload:
		rl := s.newReload()
		if err := s.doReload(rl); err != nil {
			s.setConfigHeaders(w, s.good, s.version.Load())
			if checkedByReload {
				// Answered as the check would have: a text HAProxy refuses
				// is the caller's to change (400), a worker it cannot
				// start (an address, a port in use) is not.
				if out, refused := s.refuses(next); refused != nil {
					writeError(w, http.StatusBadRequest, refusedMessage(refused, out))
					return
				}
			}
			var re *ReloadError
			msg := err.Error()
			if errors.As(err, &re) {
				msg = "reload failed, the previous configuration was restored and keeps running: " + re.Error()
			}
			writeError(w, http.StatusInternalServerError, msg)
			return
		}
	default:
		id := s.queueReload()
		w.Header().Set("Reload-ID", id)
		writeStored(w, r, http.StatusAccepted, next)
		return
	}
	writeStored(w, r, http.StatusCreated, next)
}

// writeStored answers a push with the stored configuration, or with an
// empty string when the client prefers a minimal answer (RFC 7240): at
// 10,000 mappings the text is 4 MB that the client would decode for
// nothing.
func writeStored(w http.ResponseWriter, r *http.Request, code int, stored string) {
	for _, v := range r.Header.Values("Prefer") {
		for _, pref := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(pref), "return=minimal") {
				// The specification's body is a JSON string: an empty one,
				// which Preference-Applied says stands for the text.
				w.Header().Set("Preference-Applied", "return=minimal")
				writeJSON(w, code, "")
				return
			}
		}
	}
	writeJSON(w, code, stored)
}

// restoreGood puts back the configuration HAProxy runs, after a reload
// of the stored one failed. Callers hold s.mu.
func (s *Server) restoreGood() error {
	if err := writeFileAtomic(s.cfgPath, []byte(s.good)); err != nil {
		return fmt.Errorf("restore the previous configuration: %w", err)
	}
	_, v, err := s.stored()
	if err != nil {
		return err
	}
	s.version.Store(v)
	return nil
}

// readBody reads a request body of at most limit bytes into a buffer of
// the announced length, instead of growing one through a 4 MB text.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > 0 && r.ContentLength <= limit {
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	return io.ReadAll(io.LimitReader(r.Body, limit))
}

// validPart reports whether a runtime-only push (skip_reload) is valid
// from checking only what it changes (incrementalCheck). false means the
// whole text is checked: also when the part is refused, so that
// HAProxy's messages cite the lines of the text sent.
func (s *Server) validPart(p rawParams, next string) bool {
	if !p.skipReload || p.onlyValidate || s.good == "" {
		return false
	}
	if s.goodSplit.text != s.good {
		s.goodSplit.text, s.goodSplit.sections = s.good, splitSections(s.good)
	}
	part, ok := incrementalCheckFrom(s.goodSplit.sections, next)
	if !ok {
		return false
	}
	tmp, err := writeTemp(s.opt.Dir, "haproxy.cfg.check-part-", []byte(part))
	if err != nil {
		return false
	}
	defer os.Remove(tmp)
	_, err = s.validate(tmp)
	return err == nil
}

// reloadChecks says whether a push leaves checking its text to the
// reload: a forced one into a running HAProxy with no queued reload. The
// new master parses the text before it binds, signals or forks anything,
// and one it refuses leaves the previous worker serving untouched; at
// 10,000 mappings haproxy -c took 0.3-0.4 s before every structural
// change, on top of the reload's own parse. haproxy -c runs then only
// after a failed reload, to tell a refused text from a worker that could
// not start. A queued reload still checks first: its 202 says the text
// is one HAProxy accepts, and a queued reload that failed would take the
// pushes before it back too.
func (s *Server) reloadChecks(p rawParams) bool {
	return p.forceReload && !p.onlyValidate && !p.skipReload && s.pending == nil && s.master.running()
}

// previousPath keeps what HAProxy runs while a reload checks an unchecked
// stored text.
func (s *Server) previousPath() string { return s.cfgPath + ".running" }

// recoverUncheckedReload goes back to the configuration that ran before a
// reload the last dataplane did not see through (it stopped with the
// copy still there), when HAProxy refuses the stored text it left.
func (s *Server) recoverUncheckedReload() error {
	prev := s.previousPath()
	if _, err := os.Stat(prev); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("look for %s: %w", prev, err)
	}
	if out, err := s.validate(s.cfgPath); err != nil {
		s.opt.Logger.Info("HAProxy refuses the configuration stored during an unfinished reload; going back to the one that ran before it", "haproxy", out)
		if err := os.Rename(prev, s.cfgPath); err != nil {
			return fmt.Errorf("restore %s: %w", prev, err)
		}
		return nil
	}
	if err := os.Remove(prev); err != nil {
		return fmt.Errorf("remove %s: %w", prev, err)
	}
	return nil
}

// refuses runs haproxy -c on text and returns its output and error when
// HAProxy refuses it, or a nil error when it accepts it. When the text
// cannot be written for the check, it logs why and returns nil: the
// failed reload is then answered as one.
func (s *Server) refuses(text string) (string, error) {
	tmp, err := writeTemp(s.opt.Dir, "haproxy.cfg.check-", []byte(text))
	if err != nil {
		s.opt.Logger.Error(err, "Write the refused reload's configuration for haproxy -c")
		return "", nil
	}
	defer os.Remove(tmp)
	return s.validate(tmp)
}

func refusedMessage(err error, out string) string {
	return fmt.Sprintf("haproxy refused the configuration: %v\n%s", err, out)
}

// validate runs haproxy -c with the instance's environment.
func (s *Server) validate(path string) (string, error) {
	cmd := exec.Command(s.opt.HAProxy, "-c", "-f", path)
	cmd.Env = append(os.Environ(), s.haproxyEnv()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// writeTemp writes data to a new file in dir and returns its path.
func writeTemp(dir, prefix string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, prefix)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// writeFileAtomic replaces path with data through a temporary file and a
// rename, so a failed write never leaves a half-written file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := writeTemp(filepath.Dir(path), filepath.Base(path)+".tmp-", data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func checksum(text string) string {
	sum := md5.Sum([]byte(text))
	return hex.EncodeToString(sum[:])
}

// withVersion puts the # _version line client-native writes at the top
// of a configuration, dropping any the text carried.
func withVersion(text string, version int64) string {
	header := fmt.Sprintf("# _version=%d\n", version)
	if !strings.Contains(text, "# _version=") && !strings.Contains(text, "# _md5hash=") {
		// What the operator sends: nothing to take out.
		return header + text
	}
	var b strings.Builder
	b.WriteString(header)
	for _, line := range strings.SplitAfter(text, "\n") {
		if strings.HasPrefix(line, "# _version=") || strings.HasPrefix(line, "# _md5hash=") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}
