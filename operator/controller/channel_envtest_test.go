package controller

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/pki"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

// startAPIServer runs kube-apiserver and etcd from bin/k8s (make
// test-deps) with the CRDs installed.
func startAPIServer(t *testing.T) client.Client {
	t.Helper()
	env := &envtest.Environment{
		BinaryAssetsDirectory: filepath.Join("..", "..", "bin", "k8s"),
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "deploy", "crd")},
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start kube-apiserver and etcd (make test-deps builds them): %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{Scheme: snapshot.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pemCerts(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return out
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// TestAPICertificateLifecycle runs the operator's certificate keeping
// against a real API server with a clock it moves: issue once, write
// nothing while nothing is due, renew the serving certificate at two
// thirds of its life, renew the CA at two thirds of its own with the old
// one still trusted until it expires, then drop it.
func TestAPICertificateLifecycle(t *testing.T) {
	c := startAPIServer(t)
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}); err != nil {
		t.Fatal(err)
	}
	hap := &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "team"}}
	if err := c.Create(ctx, hap); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &HAProxyReconciler{Client: c, APIReader: c, Now: func() time.Time { return now }}

	type state struct {
		ca, serving corev1.Secret
	}
	ensure := func(at time.Time) state {
		t.Helper()
		now = at
		if err := r.ensureAPICertificate(ctx, hap); err != nil {
			t.Fatalf("at %s: %v", at, err)
		}
		var s state
		if err := c.Get(ctx, client.ObjectKey{Namespace: "team", Name: "haproxy-edge-ca"}, &s.ca); err != nil {
			t.Fatal(err)
		}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "team", Name: "haproxy-edge-dataplane-tls"}, &s.serving); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// verifies says whether the serving certificate verifies, at its own
	// mid-life, against the CA bundle the operator trusts.
	verifies := func(serving []byte, bundle []byte) error {
		leaf := pemCerts(t, serving)[0]
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(bundle)
		mid := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: APIServerName(hap), CurrentTime: mid})
		return err
	}

	first := ensure(now)
	for _, s := range []*corev1.Secret{&first.ca, &first.serving} {
		if !metav1.IsControlledBy(s, hap) || s.Labels[LabelManagedBy] != ManagedBy || s.Type != corev1.SecretTypeTLS {
			t.Fatalf("Secret %s: owners %+v, labels %v, type %s", s.Name, s.OwnerReferences, s.Labels, s.Type)
		}
	}
	if n := len(pemCerts(t, first.ca.Data["ca.crt"])); n != 1 {
		t.Fatalf("a new CA bundle holds %d certificates", n)
	}
	if err := verifies(first.serving.Data["tls.crt"], first.ca.Data["ca.crt"]); err != nil {
		t.Fatalf("the issued certificate does not verify: %v", err)
	}

	idle := ensure(now.Add(24 * time.Hour))
	if idle.ca.ResourceVersion != first.ca.ResourceVersion || idle.serving.ResourceVersion != first.serving.ResourceVersion {
		t.Fatal("Secrets written while nothing was due")
	}

	leafRenewal := ensure(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(pki.LeafLifetime * 2 / 3))
	if bytes.Equal(leafRenewal.serving.Data["tls.crt"], first.serving.Data["tls.crt"]) {
		t.Fatal("the serving certificate was not renewed at two thirds of its life")
	}
	if leafRenewal.ca.ResourceVersion != first.ca.ResourceVersion {
		t.Fatal("the CA changed with the serving certificate")
	}

	caStart := pemCerts(t, first.ca.Data["tls.crt"])[0]
	caRenewal := ensure(caStart.NotBefore.Add(caStart.NotAfter.Sub(caStart.NotBefore) * 2 / 3))
	bundle := caRenewal.ca.Data["ca.crt"]
	if n := len(pemCerts(t, bundle)); n != 2 {
		t.Fatalf("after a CA renewal the bundle holds %d certificates, want the new and the old", n)
	}
	if bytes.Equal(caRenewal.ca.Data["tls.crt"], first.ca.Data["tls.crt"]) {
		t.Fatal("the CA was not renewed")
	}
	if err := verifies(leafRenewal.serving.Data["tls.crt"], bundle); err != nil {
		t.Errorf("during the overlap a certificate of the old CA does not verify: %v", err)
	}
	if err := verifies(caRenewal.serving.Data["tls.crt"], bundle); err != nil {
		t.Errorf("the certificate of the new CA does not verify: %v", err)
	}
	if !bytes.Equal(caRenewal.serving.Data["ca.crt"], bundle) {
		t.Error("the serving Secret's ca.crt is not the current bundle")
	}

	afterOld := ensure(caStart.NotAfter.Add(time.Hour))
	if n := len(pemCerts(t, afterOld.ca.Data["ca.crt"])); n != 1 {
		t.Fatalf("after the old CA expired the bundle holds %d certificates", n)
	}
	if err := verifies(afterOld.serving.Data["tls.crt"], afterOld.ca.Data["ca.crt"]); err != nil {
		t.Errorf("the current certificate does not verify: %v", err)
	}
}
