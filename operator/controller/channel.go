package controller

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/pki"
)

// The control channel: each instance's Data Plane API serves HTTPS with a
// certificate the operator issued (or the user gave, spec.dataPlaneTLSSecret)
// and the operator verifies it before it sends credentials. The issued
// certificates are renewed by the reconcile that finds them due; the
// manager's periodic resync (hours) guarantees one runs well within the
// month between a certificate's renewal point and its end.
//
// The operator renews its own CA and serving Secrets in place:
// +kubebuilder:rbac:groups="",resources=secrets,verbs=update

// APITLSDir is where an instance mounts its API certificate Secret.
const APITLSDir = "/etc/haproxy-tcp/api-tls"

// caSecretName is the Secret of the HAProxy's own CA: tls.crt and tls.key
// of the current CA, ca.crt the CAs the operator trusts (the current one
// and, after a renewal, the previous one until it expires).
func caSecretName(hap *v1alpha1.HAProxy) string { return ownedName(hap) + "-ca" }

// apiTLSSecretName is the Secret the instances mount and serve: the
// user's when the HAProxy names one, else the one the operator issues.
func apiTLSSecretName(hap *v1alpha1.HAProxy) string {
	if hap.Spec.DataPlaneTLSSecret != "" {
		return hap.Spec.DataPlaneTLSSecret
	}
	return ownedName(hap) + "-dataplane-tls"
}

// APIServerName is the name the operator expects in an instance's API
// certificate. Pod IPs are not known when the certificate is issued, so
// the operator connects to the Pod's IP and verifies this fixed name.
func APIServerName(hap *v1alpha1.HAProxy) string {
	return ownedName(hap) + "-dataplane." + hap.Namespace + ".svc"
}

// ownedSecret reads a Secret the HAProxy owns: nil when absent, a
// nameConflictError when someone else's.
func (r *HAProxyReconciler) ownedSecret(ctx context.Context, hap *v1alpha1.HAProxy, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	err := r.secretReader().Get(ctx, client.ObjectKey{Namespace: hap.Namespace, Name: name}, &s)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get Secret %s/%s: %w", hap.Namespace, name, err)
	case !owns(hap, &s):
		return nil, &nameConflictError{kind: "Secret", key: hap.Namespace + "/" + name}
	}
	return &s, nil
}

// writeOwnedSecret creates the Secret when it was absent (have nil), else
// updates the very version that was read and checked as owned.
func (r *HAProxyReconciler) writeOwnedSecret(ctx context.Context, hap *v1alpha1.HAProxy, have *corev1.Secret, name string, data map[string][]byte) error {
	if have == nil {
		s := &corev1.Secret{ObjectMeta: objectMeta(hap, name), Type: corev1.SecretTypeTLS, Data: data}
		if err := r.Client.Create(ctx, s); err != nil {
			if apierrors.IsAlreadyExists(err) {
				// Created since it was read: decide again next time.
				return fmt.Errorf("create Secret %s/%s: it appeared meanwhile: %w", hap.Namespace, name, err)
			}
			return fmt.Errorf("create Secret %s/%s: %w", hap.Namespace, name, err)
		}
		return nil
	}
	s := have.DeepCopy()
	s.Data = data
	if err := r.Client.Update(ctx, s); err != nil {
		return fmt.Errorf("update Secret %s/%s: %w", hap.Namespace, name, err)
	}
	return nil
}

func keyPairOf(s *corev1.Secret) *pki.KeyPair {
	if s == nil {
		return nil
	}
	return &pki.KeyPair{Cert: s.Data[pki.KeyCert], Key: s.Data[pki.KeyKey]}
}

// ensureAPICertificate keeps the HAProxy's CA and the instances' serving
// certificate issued and current, unless the user provides the
// certificate. It writes only Secrets the HAProxy owns.
func (r *HAProxyReconciler) ensureAPICertificate(ctx context.Context, hap *v1alpha1.HAProxy) error {
	if hap.Spec.DataPlaneTLSSecret != "" {
		// The user's certificate: nothing of ours is needed any more.
		for _, name := range []string{caSecretName(hap), ownedName(hap) + "-dataplane-tls"} {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: hap.Namespace}}
			if err := r.deleteOwned(ctx, hap, r.APIReader, s); err != nil {
				return err
			}
		}
		return nil
	}
	logger := log.FromContext(ctx)
	now := r.now()
	caSecret, err := r.ownedSecret(ctx, hap, caSecretName(hap))
	if err != nil {
		return err
	}
	name := apiTLSSecretName(hap)
	serving, err := r.ownedSecret(ctx, hap, name)
	if err != nil {
		return err
	}
	// Parsing and verifying both certificates costs milliseconds; what
	// was found good stays good for a while (renewal is due weeks ahead).
	checked := channelCheck{hap: hap.UID, ca: resourceVersion(caSecret), serving: resourceVersion(serving)}
	if at, ok := r.channelChecks.Load(checked); ok && now.Sub(at.(time.Time)) < channelRecheck {
		return nil
	}
	ca, previous := keyPairOf(caSecret), []byte(nil)
	if caSecret != nil {
		previous = caSecret.Data[pki.KeyCA]
	}
	if d := pki.DecideCA(ca, now); d.Issue {
		logger.Info("Issuing a CA for the control channel", "secret", caSecretName(hap), "why", d.Reason)
		fresh, err := pki.NewCA(ownedName(hap)+" control channel CA", now)
		if err != nil {
			return fmt.Errorf("issue the CA of %s: %w", klogRef(hap), err)
		}
		ca = &fresh
	}
	// The previous CA stays trusted until it expires: instances may
	// still present a certificate it signed until the kubelet refreshes
	// their files.
	bundle := pki.TrustBundle(ca.Cert, previous, now)
	if caSecret == nil || !bytes.Equal(caSecret.Data[pki.KeyCert], ca.Cert) || !bytes.Equal(previous, bundle) {
		if err := r.writeOwnedSecret(ctx, hap, caSecret, caSecretName(hap), map[string][]byte{
			pki.KeyCert: ca.Cert, pki.KeyKey: ca.Key, pki.KeyCA: bundle,
		}); err != nil {
			return err
		}
	}
	caCert, _, err := pki.Parse(*ca)
	if err != nil {
		return fmt.Errorf("read the CA of %s: %w", klogRef(hap), err)
	}

	leaf := keyPairOf(serving)
	if d := pki.DecideLeaf(leaf, caCert, APIServerName(hap), now); d.Issue {
		logger.Info("Issuing the instances' API certificate", "secret", name, "why", d.Reason)
		fresh, err := pki.NewLeaf(*ca, APIServerName(hap), now)
		if err != nil {
			return fmt.Errorf("issue the API certificate of %s: %w", klogRef(hap), err)
		}
		leaf = &fresh
	}
	if serving == nil || !bytes.Equal(serving.Data[pki.KeyCert], leaf.Cert) || !bytes.Equal(serving.Data[pki.KeyCA], bundle) {
		return r.writeOwnedSecret(ctx, hap, serving, name, map[string][]byte{
			pki.KeyCert: leaf.Cert, pki.KeyKey: leaf.Key, pki.KeyCA: bundle,
		})
	}
	r.channelChecks.Store(checked, now)
	return nil
}

// channelCheck names the versions of an HAProxy's control channel
// Secrets that were found good.
type channelCheck struct {
	hap         types.UID
	ca, serving string
}

// channelRecheck is how long Secrets found good are not checked again.
const channelRecheck = time.Hour

func resourceVersion(s *corev1.Secret) string {
	if s == nil {
		return ""
	}
	return s.ResourceVersion
}

// apiTrust is the CA bundle that verifies the HAProxy's instances: ca.crt
// of the user's Secret, or of the HAProxy's own CA Secret.
func (r *HAProxyReconciler) apiTrust(ctx context.Context, hap *v1alpha1.HAProxy) ([]byte, error) {
	name := caSecretName(hap)
	if hap.Spec.DataPlaneTLSSecret != "" {
		name = hap.Spec.DataPlaneTLSSecret
	}
	ca, err := r.secretKeys(ctx, hap.Namespace, name, pki.KeyCA)
	if err != nil {
		return nil, fmt.Errorf("the CA that verifies the instances: %w", err)
	}
	return []byte(ca[0]), nil
}

// channelSecretRefs are the Secrets of the control channel, as references
// a change of which calls for a reconcile (a renewed user certificate, an
// owned Secret someone deleted).
func channelSecretRefs(hap *v1alpha1.HAProxy) []string {
	if external(hap) {
		return nil
	}
	refs := []string{"Secret/" + hap.Namespace + "/" + apiTLSSecretName(hap)}
	if hap.Spec.DataPlaneTLSSecret == "" {
		refs = append(refs, "Secret/"+hap.Namespace+"/"+caSecretName(hap))
	}
	return refs
}

// verificationFailure is the reason an instance is not trusted when its
// certificate does not verify; "" when err is something else (the
// instance is down, say), which applying reports on its own.
func verificationFailure(err error) string {
	var (
		verify    *tls.CertificateVerificationError
		authority x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	if errors.As(err, &verify) || errors.As(err, &authority) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return "TLS verification failed: the instance presents a certificate the operator did not issue or was not given; it is not sent credentials or configuration: " + err.Error()
	}
	return ""
}

// checkInstance makes one request that needs no credentials, so a
// dataplane whose certificate does not verify is reported as such
// before anything is sent to it. On a kept-alive connection it costs no
// handshake.
func checkInstance(ctx context.Context, c *http.Client, endpoint string) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/healthz", nil)
	if err != nil {
		return ""
	}
	resp, err := c.Do(req)
	if err != nil {
		return verificationFailure(err)
	}
	// Read to the end, so the connection (and its TLS session) serves
	// the apply that follows instead of a new handshake.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return ""
}
