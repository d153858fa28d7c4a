package dataplane

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"sync"

	"github.com/go-logr/logr"
)

// certFiles serves the key pair in two files and reads them again when
// they change, so a certificate the kubelet rotates in a mounted Secret is
// picked up without a restart. A pair that does not load (the two files
// read halfway through an update, say) keeps the previous one in service.
type certFiles struct {
	certFile, keyFile string
	log               logr.Logger

	mu              sync.Mutex
	certPEM, keyPEM []byte
	current         *tls.Certificate
	lastReadFailure string
}

// loadCertFiles reads the pair once; it fails when it does not load, so a
// dataplane never starts without a certificate.
func loadCertFiles(certFile, keyFile string, log logr.Logger) (*certFiles, error) {
	c := &certFiles{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.refresh(); err != nil {
		return nil, err
	}
	return c, nil
}

// refresh reads both files and swaps the pair in when they changed and
// load.
func (c *certFiles) refresh() error {
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return fmt.Errorf("read the API certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return fmt.Errorf("read the API key: %w", err)
	}
	if c.current != nil && bytes.Equal(certPEM, c.certPEM) && bytes.Equal(keyPEM, c.keyPEM) {
		return nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("load the API certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	if c.current != nil {
		c.log.Info("Serving a new API certificate", "file", c.certFile)
	}
	c.certPEM, c.keyPEM, c.current = certPEM, keyPEM, &pair
	return nil
}

// GetCertificate is tls.Config's hook: the current pair, read again from
// the files when they changed.
func (c *certFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refresh(); err != nil {
		// Log each distinct failure once, not on every handshake.
		if msg := err.Error(); msg != c.lastReadFailure {
			c.lastReadFailure = msg
			c.log.Error(err, "Keeping the previous API certificate")
		}
	} else {
		c.lastReadFailure = ""
	}
	return c.current, nil
}

// tlsListener accepts only TLS. Each connection is handed to net/http
// behind a type that is not *tls.Conn: net/http answers a plain HTTP
// request on a *tls.Conn with a plain-text "400 Bad Request", and the API
// port must not speak HTTP in clear at all. A client that does not speak
// TLS gets its connection closed, nothing more.
type tlsListener struct {
	net.Listener
	config *tls.Config
}

func (l tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tlsOnlyConn{tls.Server(c, l.config)}, nil
}

// tlsOnlyConn hides the *tls.Conn it carries from net/http (see
// tlsListener); the handshake runs on the first read, under the server's
// read deadlines.
type tlsOnlyConn struct{ net.Conn }
