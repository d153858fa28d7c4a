package dataplane_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
)

const apiName = "haproxy-edge-dataplane.team.svc"

// issue returns a serving certificate for apiName and its key, PEM.
func (ca *testCA) issueAPI(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: apiName}, DNSNames: []string{apiName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// writeAtomic replaces a file the way the kubelet updates a Secret
// volume: the new content appears at once.
func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// startTLS runs a dataplane serving a certificate of ca; it returns the
// instance and the certificate files.
func startTLS(t *testing.T, ca *testCA) (inst *dataplanetest.Instance, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c, k := ca.issueAPI(t, 100)
	writeAtomic(t, certFile, c)
	writeAtomic(t, keyFile, k)
	inst = dataplanetest.Start(t, "127.0.0.1", func(o *dataplane.Options) { o.TLSCert, o.TLSKey = certFile, keyFile })
	return inst, certFile, keyFile
}

// trusting is a client that trusts only ca and expects apiName; a new
// connection per request, so each request sees the served certificate.
func trusting(ca *testCA) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: apiName, MinVersion: tls.VersionTLS12},
	}}
}

// servedSerial is the serial number of the certificate the API presents.
func servedSerial(t *testing.T, c *http.Client, url string) int64 {
	t.Helper()
	resp, err := c.Get(url + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over TLS: %v", err)
	}
	defer resp.Body.Close()
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
}

// TestAPIRefusesPlainHTTP: a plain HTTP request to the API port gets no
// HTTP answer at all, not even an error page; the connection closes.
func TestAPIRefusesPlainHTTP(t *testing.T) {
	inst, _, _ := startTLS(t, newCA(t, "test CA"))
	addr := strings.TrimPrefix(inst.URL, "https://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /v2/info HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46dGVzdC1wYXNzd29yZA==\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(bufio.NewReader(conn))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the connection stayed open after a plain HTTP request")
	}
	if strings.Contains(string(got), "HTTP/") {
		t.Fatalf("plain HTTP got an HTTP answer: %q", got)
	}
	// And through an HTTP client: no response.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("plain HTTP got status %d", resp.StatusCode)
	}
}

// TestAPIVerifiedOnlyByItsCA: a client trusting the CA that signed the
// certificate reaches the API with credentials; one trusting another CA
// refuses the server before sending them.
func TestAPIVerifiedOnlyByItsCA(t *testing.T) {
	ca := newCA(t, "test CA")
	inst, _, _ := startTLS(t, ca)
	req, _ := http.NewRequest(http.MethodGet, inst.URL+"/v2/info", nil)
	req.SetBasicAuth(dataplanetest.User, dataplanetest.Password)
	resp, err := trusting(ca).Do(req)
	if err != nil {
		t.Fatalf("GET /v2/info: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/info: %d", resp.StatusCode)
	}
	_, err = trusting(newCA(t, "test CA")).Get(inst.URL + "/healthz")
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Fatalf("a client trusting another CA got %v, want a certificate verification error", err)
	}
}

// TestAPIPicksUpARotatedCertificate: new files are served from the next
// handshake, without a restart; a pair that does not load keeps the
// previous certificate in service.
func TestAPIPicksUpARotatedCertificate(t *testing.T) {
	ca := newCA(t, "test CA")
	inst, certFile, keyFile := startTLS(t, ca)
	c := trusting(ca)
	if got := servedSerial(t, c, inst.URL); got != 100 {
		t.Fatalf("serial %d, want 100", got)
	}
	pid := inst.Server.MasterPID()
	newCert, newKey := ca.issueAPI(t, 200)
	writeAtomic(t, keyFile, newKey)
	writeAtomic(t, certFile, newCert)
	if got := servedSerial(t, c, inst.URL); got != 200 {
		t.Fatalf("after rotation serial %d, want 200", got)
	}
	if inst.Server.MasterPID() != pid {
		t.Fatal("HAProxy restarted for a new API certificate")
	}
	writeAtomic(t, certFile, []byte("not a certificate"))
	if got := servedSerial(t, c, inst.URL); got != 200 {
		t.Fatalf("with a broken file serial %d, want the previous 200", got)
	}
}

// TestAPINeedsCertificateAndKey: one without the other is refused, and
// so is a pair that does not load.
func TestAPINeedsCertificateAndKey(t *testing.T) {
	dir := t.TempDir()
	opt := dataplane.Options{User: "u", Password: "p", Dir: dir, RunDir: dir, CertDir: dir, TLSCert: filepath.Join(dir, "tls.crt")}
	if _, err := dataplane.New(opt); err == nil || !strings.Contains(err.Error(), "both") {
		t.Fatalf("certificate without key: %v", err)
	}
	writeAtomic(t, filepath.Join(dir, "tls.crt"), []byte("junk"))
	writeAtomic(t, filepath.Join(dir, "tls.key"), []byte("junk"))
	opt.TLSKey = filepath.Join(dir, "tls.key")
	if _, err := dataplane.New(opt); err == nil || !strings.Contains(err.Error(), "load the API certificate") {
		t.Fatalf("junk pair: %v", err)
	}
}
