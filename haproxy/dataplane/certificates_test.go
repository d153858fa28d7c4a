package dataplane_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/haproxytech/client-native/v5/models"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
)

// testCA is a CA certificate and key that can sign CRLs.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// crl is a CRL of ca revoking the given serials.
func (ca *testCA) crl(t *testing.T, number int64, revoked ...int64) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(number), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// upload posts a file to storage/ssl_certificates as a multipart form.
func upload(t *testing.T, inst *dataplanetest.Instance, name string, data []byte, query string) (*http.Response, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file_upload", name)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(data)
	_ = mw.Close()
	return call(t, inst, http.MethodPost, "/v2/services/haproxy/storage/ssl_certificates"+query, buf.Bytes(),
		http.Header{"Content-Type": {mw.FormDataContentType()}})
}

// TestStorageAcceptsCAFilesAndCRLs: *.ca.pem (certificates, no key) and
// *.crl.pem (CRLs) are created, served to HAProxy as ca-file and crl-file,
// replaced and deleted; anything else still needs a certificate and key.
func TestStorageAcceptsCAFilesAndCRLs(t *testing.T) {
	inst := dataplanetest.Start(t, "127.0.0.1")
	backend := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	port := dataplanetest.FreePort(t, "127.0.0.1")
	ctx := context.Background()
	ca, other := newCA(t, "client-ca"), newCA(t, "other-ca")

	bundle := append(append([]byte{}, ca.pem...), other.pem...)
	if resp, body := upload(t, inst, "clients.ca.pem", bundle, ""); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create CA file: %d %s", resp.StatusCode, body)
	}
	resp, body := upload(t, inst, "clients.crl.pem", ca.crl(t, 1), "")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create CRL: %d %s", resp.StatusCode, body)
	}
	var crlModel models.SslCertificate
	if err := json.Unmarshal(body, &crlModel); err != nil || crlModel.NotAfter == nil || !strings.Contains(crlModel.Issuers, "client-ca") {
		t.Errorf("CRL model: %+v, %v; want its issuer and next update", crlModel, err)
	}
	if err := inst.Client.CreateCertificate(ctx, "app.pem", dataplanetest.SelfSigned(t, "app.example.com")); err != nil {
		t.Fatal(err)
	}

	refused := map[string][]byte{
		"a CA file with a private key":     append(append([]byte{}, ca.pem...), dataplanetest.SelfSigned(t, "x")...),
		"a CA file with garbage":           []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
		"a CRL file holding a certificate": ca.pem,
		"a certificate without its key":    ca.pem,
		"an empty CA file":                 nil,
	}
	names := map[string]string{
		"a CA file with a private key": "bad1.ca.pem", "a CA file with garbage": "bad2.ca.pem",
		"a CRL file holding a certificate": "bad.crl.pem", "a certificate without its key": "bad.pem", "an empty CA file": "bad3.ca.pem",
	}
	for what, data := range refused {
		if resp, body := upload(t, inst, names[what], data, ""); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", what, resp.StatusCode, body)
		}
	}

	// HAProxy loads them: verify clients against the CA file and the CRL.
	// ca-file and crl-file are found through ca-base, as crt through
	// crt-base.
	cfg := strings.Replace(testGlobals, "    crt-base", "    ca-base \"${TCPM_CERT_DIR}\"\n    crt-base", 1) + fmt.Sprintf(`frontend fe
    bind "${TCPM_BIND_ADDR}:%d" ssl crt app.pem ca-file clients.ca.pem crl-file clients.crl.pem verify optional
    default_backend be
backend be
    server s1 %s
`, port, backend.Addr)
	push(t, inst.Client, []byte(cfg))

	certs, err := inst.Client.Certificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]*models.SslCertificate{}
	for _, c := range certs {
		listed[c.StorageName] = c
	}
	for _, n := range []string{"app.pem", "clients.ca.pem", "clients.crl.pem"} {
		if listed[n] == nil || listed[n].NotAfter == nil || listed[n].NotBefore == nil {
			t.Errorf("list: %s missing or without validity: %+v", n, listed[n])
		}
	}
	if c := listed["app.pem"]; c != nil && (c.Sha256FingerPrint == "" || c.Serial == "" || c.Domains != "app.example.com" || !strings.Contains(c.Subject, "app.example.com")) {
		t.Errorf("certificate model lacks fields: %+v", c)
	}

	// Replacing the CRL HAProxy uses needs a reload: 202 with its ID.
	resp, body = call(t, inst, http.MethodPut, "/v2/services/haproxy/storage/ssl_certificates/clients.crl.pem", ca.crl(t, 2, 42),
		http.Header{"Content-Type": {"text/plain"}})
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Reload-ID") == "" {
		t.Fatalf("replace the CRL in use: %d %s, want 202 with a Reload-ID", resp.StatusCode, body)
	}
	id := resp.Header.Get("Reload-ID")
	dataplanetest.Eventually(t, 15*time.Second, "the reload for the new CRL succeeds", func() bool {
		rl, err := inst.Client.Reload(ctx, id)
		return err == nil && rl.Status == "succeeded"
	})
	resp, body = call(t, inst, http.MethodPut, "/v2/services/haproxy/storage/ssl_certificates/clients.crl.pem", ca.pem,
		http.Header{"Content-Type": {"text/plain"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replace a CRL with a certificate: %d %s, want 400", resp.StatusCode, body)
	}

	// Files the configuration names cannot be deleted; once it no longer
	// names them they can.
	err = inst.Client.DeleteCertificate(ctx, "clients.ca.pem")
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Errorf("delete a CA file in use: %v, want 400", err)
	}
	push(t, inst.Client, relayConfig(port, backend, 0))
	resp, _ = call(t, inst, http.MethodDelete, "/v2/services/haproxy/storage/ssl_certificates/clients.ca.pem?skip_reload=true", nil, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("delete with skip_reload: %d, want 204", resp.StatusCode)
	}
	resp, _ = call(t, inst, http.MethodDelete, "/v2/services/haproxy/storage/ssl_certificates/clients.crl.pem", nil, nil)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Reload-ID") == "" {
		t.Errorf("delete without skip_reload: %d, want 202 with a Reload-ID", resp.StatusCode)
	}
	if resp, _ := call(t, inst, http.MethodGet, "/v2/services/haproxy/storage/ssl_certificates/clients.crl.pem", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("get a deleted file: %d, want 404", resp.StatusCode)
	}
}
