package dataplane

import (
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // the API reports SHA-1 fingerprints beside SHA-256 ones
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/haproxytech/client-native/v5/models"
	"github.com/haproxytech/client-native/v5/storage"
)

// Certificate storage keeps three kinds of PEM file, told apart by name:
//
//   - *.ca.pem: a CA file for verifying client certificates (ca-file): one
//     or more CERTIFICATE blocks and no private key;
//   - *.crl.pem: a certificate revocation list (crl-file): one or more
//     X509 CRL blocks and nothing else;
//   - any other name: a certificate with its private key (crt), checked
//     by client-native's storage.
const (
	caSuffix  = ".ca.pem"
	crlSuffix = ".crl.pem"
)

// checkPEM refuses content that does not fit the kind its name says,
// with the reason.
func (s *Server) checkPEM(name string, data []byte) error {
	kind := ""
	switch {
	case strings.HasSuffix(name, crlSuffix):
		kind = "X509 CRL"
	case strings.HasSuffix(name, caSuffix):
		kind = "CERTIFICATE"
	default:
		return s.checkKeyPair(name, data)
	}
	n := 0
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != kind {
			return fmt.Errorf("%s: a %s block is not allowed, the file holds only %s blocks", name, block.Type, kind)
		}
		var err error
		if kind == "CERTIFICATE" {
			_, err = x509.ParseCertificate(block.Bytes)
		} else {
			_, err = x509.ParseRevocationList(block.Bytes)
		}
		if err != nil {
			return fmt.Errorf("%s: block %d: %w", name, n+1, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s: no %s block", name, kind)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return fmt.Errorf("%s: data after the last PEM block", name)
	}
	return nil
}

// checkKeyPair has client-native's storage check a certificate file (it
// needs a certificate and its private key), in a scratch directory.
func (s *Server) checkKeyPair(name string, data []byte) error {
	dir, err := os.MkdirTemp(s.opt.Dir, "certcheck-")
	if err != nil {
		return fmt.Errorf("check %s: %w", name, err)
	}
	defer os.RemoveAll(dir)
	scratch, err := storage.New(dir, storage.SSLType)
	if err != nil {
		return fmt.Errorf("check %s: %w", name, err)
	}
	if _, _, err := scratch.Create(name, io.NopCloser(bytes.NewReader(data))); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func validName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "/\\") && name != "." && name != ".." && !strings.HasPrefix(name, ".")
}

// describe fills the certificate fields of the API's model from the first
// certificate in the file (or, for a CRL, the first list: issuer and
// validity).
func describe(c *models.SslCertificate, data []byte) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return
		}
		switch block.Type {
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				continue
			}
			sum256, sum1 := sha256.Sum256(cert.Raw), sha1.Sum(cert.Raw) //nolint:gosec // a fingerprint, not a signature
			c.Subject = cert.Subject.String()
			c.Issuers = cert.Issuer.String()
			c.Serial = cert.SerialNumber.String()
			c.Sha256FingerPrint = hex.EncodeToString(sum256[:])
			c.Sha1FingerPrint = hex.EncodeToString(sum1[:])
			c.Algorithm = cert.PublicKeyAlgorithm.String()
			c.NotBefore, c.NotAfter = dateTime(cert.NotBefore), dateTime(cert.NotAfter)
			c.Domains = strings.Join(cert.DNSNames, ",")
			var ips, sans []string
			for _, ip := range cert.IPAddresses {
				ips = append(ips, ip.String())
			}
			sans = append(append(sans, cert.DNSNames...), ips...)
			c.IPAddresses = strings.Join(ips, ",")
			c.SubjectAlternativeNames = strings.Join(sans, ",")
			c.SubjectKeyID = hex.EncodeToString(cert.SubjectKeyId)
			c.AuthorityKeyID = hex.EncodeToString(cert.AuthorityKeyId)
			return
		case "X509 CRL":
			crl, err := x509.ParseRevocationList(block.Bytes)
			if err != nil {
				continue
			}
			c.Issuers = crl.Issuer.String()
			c.NotBefore = dateTime(crl.ThisUpdate)
			if !crl.NextUpdate.IsZero() {
				c.NotAfter = dateTime(crl.NextUpdate)
			}
			if crl.Number != nil {
				c.Serial = crl.Number.String()
			}
			return
		}
	}
}

func dateTime(t time.Time) *strfmt.DateTime {
	d := strfmt.DateTime(t.UTC())
	return &d
}

func (s *Server) certificateModel(name string) (*models.SslCertificate, error) {
	if !validName(name) {
		return nil, fmt.Errorf("invalid file name %q", name)
	}
	// Stored names are kept as given: client-native's storage would turn
	// "clients.ca.pem" into "clients_ca.pem", and HAProxy's configuration
	// names the files.
	file := filepath.Join(s.opt.CertDir, name)
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	size := int64(len(data))
	c := &models.SslCertificate{StorageName: name, File: file, Description: "managed SSL file", Size: &size}
	describe(c, data)
	return c, nil
}

func (s *Server) listCertificates(w http.ResponseWriter, _ *http.Request) {
	entries, err := os.ReadDir(s.opt.CertDir)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("list certificates: %v", err))
		return
	}
	out := models.SslCertificates{}
	for _, e := range entries {
		if !e.Type().IsRegular() || !validName(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.opt.CertDir, e.Name()))
		if err != nil || s.checkPEM(e.Name(), data) != nil {
			continue // not a file the storage accepts (e.g. a temporary file)
		}
		if c, err := s.certificateModel(e.Name()); err == nil {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StorageName < out[j].StorageName })
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getCertificate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	c, err := s.certificateModel(name)
	if err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("certificate %s not found", name))
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// fileWordRE builds the pattern of a file name used as a word of the
// configuration (after a space, quote, slash or =, before a space, quote,
// comma or line end).
func fileWordRE(name string) *regexp.Regexp {
	return regexp.MustCompile(`(^|[\s"'/=])` + regexp.QuoteMeta(name) + `($|[\s"',])`)
}

// inUse reports whether the stored configuration names the file, so a
// reload is needed for HAProxy to see a change of it. Callers hold s.mu.
func (s *Server) inUse(name string) (bool, error) {
	text, _, err := s.stored()
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if fileWordRE(name).MatchString(line) {
			return true, nil
		}
	}
	return false, nil
}

// reloadFor reloads now (force_reload) or queues a reload, and sets the
// Reload-ID header of a queued one. It returns the status of the answer:
// done (a forced reload succeeded) or queued (202). Callers hold s.mu.
func (s *Server) reloadFor(w http.ResponseWriter, force bool, done int) (int, error) {
	if force {
		if err := s.doReload(s.newReload()); err != nil {
			return 0, err
		}
		return done, nil
	}
	w.Header().Set("Reload-ID", s.queueReload())
	return http.StatusAccepted, nil
}

func readCertParams(r *http.Request) (skipReload, forceReload bool, err error) {
	if skipReload, err = queryBool(r, "skip_reload"); err != nil {
		return false, false, err
	}
	forceReload, err = queryBool(r, "force_reload")
	return skipReload, forceReload, err
}

// createCertificate stores a multipart file_upload, as the API defines.
// A new file HAProxy's configuration does not name needs no reload: 201.
// When the configuration names it, a reload makes HAProxy load it: 202
// with the Reload-ID of a queued reload, or 201 after a forced one.
func (s *Server) createCertificate(w http.ResponseWriter, r *http.Request) {
	skipReload, forceReload, err := readCertParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	name, data, err := readUpload(r, 1<<20)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !validName(name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("file_upload: invalid file name %q", name))
		return
	}
	if err := s.checkPEM(name, data); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if code, err := storeNew(s.opt.CertDir, name, data, "certificate"); err != nil {
		writeError(w, code, err.Error())
		return
	}
	code := http.StatusCreated
	if used, err := s.inUse(name); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	} else if used && !skipReload {
		if code, err = s.reloadFor(w, forceReload, http.StatusCreated); err != nil {
			writeError(w, http.StatusInternalServerError, "reload failed: "+err.Error())
			return
		}
	}
	c, err := s.certificateModel(name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, code, c)
}

// replaceCertificate stores the new PEM. A certificate HAProxy has loaded
// is swapped at runtime: new handshakes get the new one, established
// connections are left alone, no reload (200). A file HAProxy's
// configuration names but cannot swap at runtime (a CA file, a CRL) needs
// a reload: 202 with the Reload-ID of a queued one, or 200 after a forced
// one; with skip_reload the file is only stored (200).
func (s *Server) replaceCertificate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	skipReload, forceReload, err := readCertParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !validName(name) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("certificate %s not found", name))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	path := filepath.Join(s.opt.CertDir, name)
	if _, err := os.Stat(path); err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("certificate %s not found", name))
		return
	}
	if err := s.checkPEM(name, body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	previous, err := os.ReadFile(path)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if err := writeFileAtomic(path, body); err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("store %s: %v", name, err))
		return
	}
	code := http.StatusOK
	if !strings.HasSuffix(name, caSuffix) && !strings.HasSuffix(name, crlSuffix) {
		if err := s.updateLoadedCertificate(r.Context(), path, string(body)); err == nil {
			code = -1 // swapped at runtime
		} else {
			s.opt.Logger.Info("Certificate stored; runtime update skipped", "file", name, "reason", err.Error())
		}
	}
	if code != -1 && !skipReload {
		used, err := s.inUse(name)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if used {
			if code, err = s.reloadFor(w, forceReload, http.StatusOK); err != nil {
				// The reload rolled the configuration back; put the
				// previous file back too, so what is stored runs.
				_ = writeFileAtomic(path, previous)
				writeError(w, http.StatusInternalServerError, "reload failed, the previous file was restored: "+err.Error())
				return
			}
		}
	}
	if code == -1 {
		code = http.StatusOK
	}
	c, err := s.certificateModel(name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, code, c)
}

func (s *Server) updateLoadedCertificate(ctx context.Context, path, pem string) error {
	return s.rt.UpdateCert(ctx, path, pem)
}

// deleteCertificate removes a stored file: 204 with skip_reload, else a
// reload follows as the specification has it (202 with the Reload-ID of a
// queued one, 204 after a forced one). A file the stored configuration
// still names is refused (400; not 409, which clients read as a version
// conflict): HAProxy could not load that configuration
// again without it.
func (s *Server) deleteCertificate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	skipReload, forceReload, err := readCertParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !validName(name) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("certificate %s not found", name))
		return
	}
	path := filepath.Join(s.opt.CertDir, name)
	if _, err := os.Stat(path); err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("certificate %s not found", name))
		return
	}
	if used, err := s.inUse(name); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	} else if used {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("certificate %s is named by the stored configuration; push a configuration without it first", name))
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if skipReload {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	code, err := s.reloadFor(w, forceReload, http.StatusNoContent)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reload failed: "+err.Error())
		return
	}
	w.WriteHeader(code)
}

// readUpload reads the multipart file_upload of a storage create request:
// its file name and at most limit bytes of content.
func readUpload(r *http.Request, limit int64) (name string, data []byte, err error) {
	file, header, err := r.FormFile("file_upload")
	if err != nil {
		return "", nil, fmt.Errorf("file_upload is required: %w", err)
	}
	defer file.Close()
	data, err = io.ReadAll(io.LimitReader(file, limit))
	if err != nil {
		return "", nil, fmt.Errorf("read file_upload: %w", err)
	}
	return header.Filename, data, nil
}

// storeNew writes a new storage file into dir, refusing one that exists
// (409); the caller holds s.mu. It returns the status to answer on error.
func storeNew(dir, name string, data []byte, what string) (int, error) {
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err == nil {
		return http.StatusConflict, fmt.Errorf("%s %s exists", what, name)
	}
	if err := writeFileAtomic(path, data); err != nil {
		return http.StatusInternalServerError, fmt.Errorf("store %s: %w", name, err)
	}
	return 0, nil
}
