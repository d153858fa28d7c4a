// Package pki issues and renews the certificates of the control channel
// between the operator and the dataplane of each HAProxy instance: a small
// CA per HAProxy and a serving certificate it signs. Issuing and the
// decisions when to renew are here; reading and writing Secrets is the
// controller's. Every function takes the time it runs at, so the decisions
// are tested with a fixed clock; nothing here touches the network or the
// API server.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Lifetimes. A CA is replaced when two thirds of its life have passed; the
// old one stays trusted until it expires, so instances still presenting a
// certificate it signed keep being verified during the overlap. A serving
// certificate is renewed at two thirds of its life too, which leaves a
// month for the kubelet to refresh the mounted files.
const (
	CALifetime   = 3 * 365 * 24 * time.Hour
	LeafLifetime = 90 * 24 * time.Hour
	// backdate covers clocks that run a little behind the operator's.
	backdate = 5 * time.Minute
)

// Secret keys, as in kubernetes.io/tls Secrets and cert-manager's.
const (
	KeyCert = "tls.crt"
	KeyKey  = "tls.key"
	KeyCA   = "ca.crt"
)

// KeyPair is a certificate and its private key, both PEM.
type KeyPair struct {
	Cert, Key []byte
}

// Decision says whether to issue a certificate, and why.
type Decision struct {
	Issue  bool
	Reason string
}

// renewAt is when two thirds of c's life have passed.
func renewAt(c *x509.Certificate) time.Time {
	life := c.NotAfter.Sub(c.NotBefore)
	return c.NotBefore.Add(life * 2 / 3)
}

// DecideCA says whether a new CA is needed: none yet, unreadable, or two
// thirds of its life gone.
func DecideCA(ca *KeyPair, now time.Time) Decision {
	if ca == nil {
		return Decision{true, "no CA yet"}
	}
	cert, _, err := Parse(*ca)
	if err != nil {
		return Decision{true, "the CA is unreadable: " + err.Error()}
	}
	if !cert.IsCA {
		return Decision{true, "the CA certificate is not a CA"}
	}
	if !now.Before(renewAt(cert)) {
		return Decision{true, fmt.Sprintf("the CA is due for renewal since %s", renewAt(cert).UTC().Format(time.RFC3339))}
	}
	return Decision{}
}

// DecideLeaf says whether a new serving certificate is needed: none yet,
// unreadable, not signed by the current CA, not naming serverName, or two
// thirds of its life gone.
func DecideLeaf(leaf *KeyPair, ca *x509.Certificate, serverName string, now time.Time) Decision {
	if leaf == nil {
		return Decision{true, "no serving certificate yet"}
	}
	cert, _, err := Parse(*leaf)
	if err != nil {
		return Decision{true, "the serving certificate is unreadable: " + err.Error()}
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return Decision{true, "the serving certificate is not signed by the current CA"}
	}
	if err := cert.VerifyHostname(serverName); err != nil {
		return Decision{true, "the serving certificate does not name " + serverName}
	}
	if !now.Before(renewAt(cert)) {
		return Decision{true, fmt.Sprintf("the serving certificate is due for renewal since %s", renewAt(cert).UTC().Format(time.RFC3339))}
	}
	return Decision{}
}

// NextRenewal is when the first of the given certificates is due for
// renewal; the zero time when none parses.
func NextRenewal(pairs ...KeyPair) time.Time {
	var next time.Time
	for _, p := range pairs {
		cert, err := firstCert(p.Cert)
		if err != nil {
			continue
		}
		if at := renewAt(cert); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}

// NewCA issues a self-signed CA named after the HAProxy it serves.
func NewCA(commonName string, now time.Time) (KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate the CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CALifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	return sign(tmpl, tmpl, key, key)
}

// NewLeaf issues a serving certificate for serverName signed by ca. Its
// only name is serverName: instances are verified against that fixed
// name, since their Pod IPs are not known when it is issued.
func NewLeaf(ca KeyPair, serverName string, now time.Time) (KeyPair, error) {
	caCert, caKey, err := Parse(ca)
	if err != nil {
		return KeyPair{}, fmt.Errorf("read the CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate the serving key: %w", err)
	}
	notAfter := now.Add(LeafLifetime)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: serverName},
		DNSNames:    []string{serverName},
		NotBefore:   now.Add(-backdate),
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	return sign(tmpl, caCert, key, caKey)
}

func sign(tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signer crypto.Signer) (KeyPair, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate a serial number: %w", err)
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return KeyPair{}, fmt.Errorf("sign %s: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("encode the key of %s: %w", tmpl.Subject.CommonName, err)
	}
	return KeyPair{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// Parse reads the first certificate of a pair and its key, and checks
// that they belong together.
func Parse(p KeyPair) (*x509.Certificate, crypto.Signer, error) {
	cert, err := firstCert(p.Cert)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(p.Key)
	if block == nil {
		return nil, nil, errors.New("the key is not PEM")
	}
	var key any
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("parse the key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("the key cannot sign")
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, errors.New("the key does not belong to the certificate")
	}
	return cert, signer, nil
}

func firstCert(pemBytes []byte) (*x509.Certificate, error) {
	for rest := pemBytes; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM certificate")
		}
		if block.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse the certificate: %w", err)
			}
			return cert, nil
		}
	}
}

// TrustBundle is the CA certificates the operator trusts for one HAProxy:
// the current CA first, then those of previous that have not expired at
// now (the overlap after a CA renewal), without duplicates.
func TrustBundle(current []byte, previous []byte, now time.Time) []byte {
	var out bytes.Buffer
	seen := map[string]bool{}
	for i, src := range [][]byte{current, previous} {
		for rest := src; ; {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if block.Type != "CERTIFICATE" || seen[string(block.Bytes)] {
				continue
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil || (i > 0 && !now.Before(cert.NotAfter)) {
				continue
			}
			seen[string(block.Bytes)] = true
			_ = pem.Encode(&out, block)
		}
	}
	return out.Bytes()
}
