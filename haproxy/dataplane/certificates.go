package dataplane

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/haproxytech/client-native/v5/models"
)

// leafSubject is the subject and SHA-256 fingerprint of the first
// certificate in a PEM bundle.
func leafSubject(bundle []byte) (subject, fingerprint string) {
	for {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			return "", ""
		}
		if block.Type == "CERTIFICATE" {
			if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
				sum := sha256.Sum256(cert.Raw)
				return cert.Subject.String(), hex.EncodeToString(sum[:])
			}
		}
	}
}

func validName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "/\\") && name != "." && name != ".."
}

func (s *Server) certificateModel(name string) (*models.SslCertificate, error) {
	file, size, err := s.certs.Get(name)
	if err != nil {
		return nil, err
	}
	c := &models.SslCertificate{StorageName: name, File: file, Description: "managed SSL file", Size: &size}
	if info, err := s.certs.GetCertificatesInfo(name); err == nil {
		c.Domains, c.Issuers, c.IPAddresses = info.DNS, info.Issuers, info.IPs
	}
	if pemText, err := s.certs.GetContents(name); err == nil {
		c.Subject, c.Sha256FingerPrint = leafSubject([]byte(pemText))
	}
	return c, nil
}

func (s *Server) listCertificates(w http.ResponseWriter, _ *http.Request) {
	names, err := s.certs.GetAll()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := models.SslCertificates{}
	for _, n := range names {
		c, err := s.certificateModel(filepath.Base(n))
		if err == nil {
			out = append(out, c)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getCertificate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	c, err := s.certificateModel(name)
	if err != nil || !validName(name) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("certificate %s not found", name))
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// createCertificate stores a multipart file_upload, as the API defines.
func (s *Server) createCertificate(w http.ResponseWriter, r *http.Request) {
	file, header, err := r.FormFile("file_upload")
	if err != nil {
		writeError(w, http.StatusBadRequest, "file_upload is required: "+err.Error())
		return
	}
	defer file.Close()
	if !validName(header.Filename) {
		writeError(w, http.StatusBadRequest, "invalid file name")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, err := s.certs.Get(header.Filename); err == nil {
		writeError(w, http.StatusConflict, fmt.Sprintf("certificate %s exists", header.Filename))
		return
	}
	if _, _, err := s.certs.Create(header.Filename, file); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := s.certificateModel(header.Filename)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

// replaceCertificate stores the new PEM and, when HAProxy has the file
// loaded, swaps it at runtime: new handshakes get the new certificate and
// established connections are left alone.
func (s *Server) replaceCertificate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !validName(name) {
		writeError(w, http.StatusBadRequest, "invalid file name")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, err := s.certs.Get(name); err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("certificate %s not found", name))
		return
	}
	path, err := s.certs.Replace(name, string(body))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.updateLoadedCertificate(path, string(body)); err != nil {
		// Not loaded, or HAProxy refused the swap: the next reload loads
		// the stored file.
		s.opt.Logger.Info("Certificate stored; runtime update skipped", "file", name, "reason", err.Error())
		if skip, _ := queryBool(r, "skip_reload"); !skip {
			w.Header().Set("Reload-ID", s.queueReload())
		}
	}
	c, err := s.certificateModel(name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) updateLoadedCertificate(path, pem string) error {
	if err := s.rt.SetCertEntry(path, pem); err != nil {
		return err
	}
	return s.rt.CommitCertEntry(path)
}

func (s *Server) deleteCertificate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, err := s.certs.Get(name); err != nil || !validName(name) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("certificate %s not found", name))
		return
	}
	if err := s.certs.Delete(name); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
