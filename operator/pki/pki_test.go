package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

const name = "haproxy-edge-dataplane.team.svc"

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mustCA(t *testing.T, at time.Time) KeyPair {
	t.Helper()
	ca, err := NewCA("edge", at)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustLeaf(t *testing.T, ca KeyPair, serverName string, at time.Time) KeyPair {
	t.Helper()
	leaf, err := NewLeaf(ca, serverName, at)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func certOf(t *testing.T, p KeyPair) *x509.Certificate {
	t.Helper()
	c, _, err := Parse(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDecideCA(t *testing.T) {
	ca := mustCA(t, t0)
	leaf := mustLeaf(t, ca, name, t0)
	for _, tc := range []struct {
		name  string
		ca    *KeyPair
		now   time.Time
		issue bool
	}{
		{"a new HAProxy gets a CA", nil, t0, true},
		{"a fresh CA is kept", &ca, t0.Add(time.Hour), false},
		{"a CA is kept until two thirds of its life", &ca, t0.Add(CALifetime*2/3 - time.Hour), false},
		{"a CA is renewed at two thirds of its life, a year before it ends", &ca, t0.Add(CALifetime * 2 / 3), true},
		{"an expired CA is renewed", &ca, t0.Add(CALifetime + time.Hour), true},
		{"garbage in the Secret is replaced", &KeyPair{Cert: []byte("x"), Key: []byte("y")}, t0, true},
		{"a key that is not the certificate's is replaced", &KeyPair{Cert: ca.Cert, Key: leaf.Key}, t0, true},
		{"a serving certificate is no CA", &leaf, t0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideCA(tc.ca, tc.now)
			if d.Issue != tc.issue {
				t.Fatalf("issue = %v (%s), want %v", d.Issue, d.Reason, tc.issue)
			}
			if d.Issue && d.Reason == "" {
				t.Fatal("a decision to issue says why")
			}
		})
	}
}

func TestDecideLeaf(t *testing.T) {
	ca := mustCA(t, t0)
	other := mustCA(t, t0)
	leaf := mustLeaf(t, ca, name, t0)
	foreign := mustLeaf(t, other, name, t0)
	renamed := mustLeaf(t, ca, "haproxy-old-dataplane.team.svc", t0)
	for _, tc := range []struct {
		name   string
		leaf   *KeyPair
		now    time.Time
		issue  bool
		reason string
	}{
		{"a new HAProxy gets a serving certificate", nil, t0, true, "no serving certificate"},
		{"a fresh certificate is kept", &leaf, t0.Add(time.Hour), false, ""},
		{"a certificate is kept until two thirds of its life", &leaf, t0.Add(LeafLifetime*2/3 - time.Hour), false, ""},
		{"a certificate is renewed at two thirds of its life", &leaf, t0.Add(LeafLifetime * 2 / 3), true, "due for renewal"},
		{"an expired certificate is renewed", &leaf, t0.Add(LeafLifetime + time.Hour), true, "due for renewal"},
		{"a certificate another CA signed is replaced", &foreign, t0, true, "not signed by the current CA"},
		{"a certificate for another name is replaced", &renamed, t0, true, "does not name"},
		{"garbage is replaced", &KeyPair{Cert: []byte("-"), Key: []byte("-")}, t0, true, "unreadable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideLeaf(tc.leaf, certOf(t, ca), name, tc.now)
			if d.Issue != tc.issue || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("got %+v, want issue=%v with a reason saying %q", d, tc.issue, tc.reason)
			}
		})
	}
}

// TestLeafNeverOutlivesItsCA: a certificate issued near the CA's end
// ends with it, so it is renewed (by the next CA) before it is invalid.
func TestLeafNeverOutlivesItsCA(t *testing.T) {
	ca := mustCA(t, t0)
	late := t0.Add(CALifetime - 10*24*time.Hour)
	leaf := mustLeaf(t, ca, name, late)
	if got, want := certOf(t, leaf).NotAfter, certOf(t, ca).NotAfter; !got.Equal(want) {
		t.Fatalf("leaf ends %s, CA %s", got, want)
	}
}

// TestIssuedCertificateVerifiesAgainstItsCA: a client trusting the
// bundle and asking for the fixed server name accepts the certificate;
// one trusting another CA refuses it.
func TestIssuedCertificateVerifiesAgainstItsCA(t *testing.T) {
	now := time.Now()
	ca := mustCA(t, now)
	leaf := mustLeaf(t, ca, name, now)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(TrustBundle(ca.Cert, nil, now))
	if _, err := certOf(t, leaf).Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: now}); err != nil {
		t.Fatalf("verify the issued certificate: %v", err)
	}
	if _, err := tls.X509KeyPair(leaf.Cert, leaf.Key); err != nil {
		t.Fatalf("the pair does not load as a TLS certificate: %v", err)
	}
	other := x509.NewCertPool()
	other.AppendCertsFromPEM(mustCA(t, now).Cert)
	if _, err := certOf(t, leaf).Verify(x509.VerifyOptions{Roots: other, DNSName: name, CurrentTime: now}); err == nil {
		t.Fatal("a certificate verified against a CA that did not sign it")
	}
}

// TestTrustBundleOverlap: after a CA renewal both CAs are trusted until
// the old one expires; then only the new one.
func TestTrustBundleOverlap(t *testing.T) {
	old := mustCA(t, t0)
	renewal := t0.Add(CALifetime * 2 / 3)
	cur := mustCA(t, renewal)
	oldLeaf := mustLeaf(t, old, name, renewal.Add(-time.Hour))
	newLeaf := mustLeaf(t, cur, name, renewal)
	for _, tc := range []struct {
		name        string
		now         time.Time
		trustsOld   bool
		bundleCount int
	}{
		{"right after the renewal both CAs are trusted", renewal.Add(time.Minute), true, 2},
		{"until the old CA expires", t0.Add(CALifetime - time.Minute), true, 2},
		{"after it the old CA is dropped", t0.Add(CALifetime + time.Minute), false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The bundle kept before is fed back as previous, as the
			// controller does with the Secret's ca.crt.
			bundle := TrustBundle(cur.Cert, TrustBundle(cur.Cert, append(append([]byte{}, old.Cert...), cur.Cert...), renewal), tc.now)
			if n := bytes.Count(bundle, []byte("BEGIN CERTIFICATE")); n != tc.bundleCount {
				t.Fatalf("bundle holds %d certificates, want %d", n, tc.bundleCount)
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(bundle)
			verify := func(p KeyPair) error {
				at := tc.now
				if c := certOf(t, p); at.After(c.NotAfter) {
					at = c.NotAfter.Add(-time.Minute) // judge the trust, not the leaf's age
				}
				_, err := certOf(t, p).Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: at})
				return err
			}
			if err := verify(newLeaf); err != nil {
				t.Fatalf("the new CA's certificate: %v", err)
			}
			if err := verify(oldLeaf); (err == nil) != tc.trustsOld {
				t.Fatalf("the old CA's certificate verified: %v, want trusted=%v", err, tc.trustsOld)
			}
		})
	}
}

func TestNextRenewal(t *testing.T) {
	ca := mustCA(t, t0)
	leaf := mustLeaf(t, ca, name, t0)
	got := NextRenewal(ca, leaf, KeyPair{Cert: []byte("garbage")})
	want := certOf(t, leaf).NotBefore.Add(certOf(t, leaf).NotAfter.Sub(certOf(t, leaf).NotBefore) * 2 / 3)
	if !got.Equal(want) {
		t.Fatalf("next renewal %s, want the leaf's %s", got, want)
	}
	if !NextRenewal().IsZero() {
		t.Fatal("no certificates, no renewal time")
	}
}
