package controller

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	dpclient "github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
)

// target is one HAProxy instance a configuration goes to: a Pod the
// operator runs, or an external instance named on the HAProxy.
type target struct {
	// name is the Pod's name or the external instance's.
	name string
	// url is set for external instances.
	url      string
	endpoint string
	client   *dpclient.Client
	// pod is the instance's Pod, for events; nil for external ones.
	pod *corev1.Pod
	// unusable says why the instance cannot be reached at all (its
	// credentials Secret is missing, say).
	unusable string
}

// external reports whether hap programs instances the operator does not
// run.
func external(hap *v1alpha1.HAProxy) bool { return len(hap.Spec.ExternalInstances) > 0 }

// podTargets are the ready Pods of hap, reached over HTTPS at their IP
// and verified against the HAProxy's CA and its fixed server name. An
// instance whose certificate does not verify is unusable: it gets neither
// credentials nor configuration.
func (r *HAProxyReconciler) podTargets(ctx context.Context, hap *v1alpha1.HAProxy, ready []corev1.Pod, creds [2]string) []target {
	out := make([]target, 0, len(ready))
	trust, err := r.apiTrust(ctx, hap)
	var httpClient *http.Client
	if err == nil {
		httpClient, err = r.verifyingClient(trust, APIServerName(hap))
	}
	var wg sync.WaitGroup
	for i := range ready {
		pod := &ready[i]
		endpoint := "https://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(dataPlanePort(hap))))
		out = append(out, target{name: pod.Name, endpoint: endpoint, pod: pod})
		if err != nil {
			out[i].unusable = err.Error()
			continue
		}
		// Concurrently: one slow instance delays the others by nothing.
		wg.Add(1)
		go func(t *target) {
			defer wg.Done()
			if t.unusable = checkInstance(ctx, httpClient, t.endpoint); t.unusable == "" {
				t.client = dpclient.New(t.endpoint, creds[0], creds[1], httpClient)
			}
		}(&out[i])
	}
	wg.Wait()
	return out
}

// externalTargets are hap's external instances, with their credentials
// and the CA that verifies them read from the HAProxy's namespace.
func (r *HAProxyReconciler) externalTargets(ctx context.Context, hap *v1alpha1.HAProxy) []target {
	out := make([]target, 0, len(hap.Spec.ExternalInstances))
	for _, ext := range hap.Spec.ExternalInstances {
		t := target{name: ext.Name, url: ext.URL, endpoint: ext.URL}
		creds, err := r.secretKeys(ctx, hap.Namespace, ext.CredentialsSecret, "username", "password")
		if err != nil {
			t.unusable = err.Error()
			out = append(out, t)
			continue
		}
		httpClient := r.HTTP
		if ext.CASecret != "" {
			ca, err := r.secretKeys(ctx, hap.Namespace, ext.CASecret, "ca.crt")
			if err != nil {
				t.unusable = err.Error()
				out = append(out, t)
				continue
			}
			if httpClient, err = r.verifyingClient([]byte(ca[0]), ""); err != nil {
				t.unusable = fmt.Sprintf("Secret %s/%s: %v", hap.Namespace, ext.CASecret, err)
				out = append(out, t)
				continue
			}
		}
		t.client = dpclient.New(ext.URL, creds[0], creds[1], httpClient)
		out = append(out, t)
	}
	return out
}

// secretKeys reads the given keys of a Secret, all required.
func (r *HAProxyReconciler) secretKeys(ctx context.Context, namespace, name string, keys ...string) ([]string, error) {
	var s corev1.Secret
	if err := r.secretReader().Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		return nil, fmt.Errorf("Secret %s/%s: %w", namespace, name, err)
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		if len(s.Data[k]) == 0 {
			return nil, fmt.Errorf("Secret %s/%s has no %s", namespace, name, k)
		}
		out[i] = string(s.Data[k])
	}
	return out, nil
}

// verifyingClient is an HTTP client that trusts only the CAs in caPEM and,
// when serverName is set, expects that name in the certificate whatever
// address it connects to (else the URL's host); one per CA and name, so
// connections are reused across reconciles.
func (r *HAProxyReconciler) verifyingClient(caPEM []byte, serverName string) (*http.Client, error) {
	key := sha256.Sum256(append(append(append([]byte{}, caPEM...), 0), serverName...))
	if c, ok := r.caClients.Load(key); ok {
		return c.(*http.Client), nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("ca.crt holds no PEM certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}
	c := &http.Client{Timeout: r.HTTP.Timeout, Transport: tr}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	actual, _ := r.caClients.LoadOrStore(key, c)
	return actual.(*http.Client), nil
}

// externalSecretRefs are the Secrets hap's instances need to be reached
// (the external instances' credentials and CAs, the control channel's
// certificates), as references a change of which calls for a reconcile.
func externalSecretRefs(hap *v1alpha1.HAProxy) []string {
	refs := channelSecretRefs(hap)
	for _, ext := range hap.Spec.ExternalInstances {
		refs = append(refs, "Secret/"+hap.Namespace+"/"+ext.CredentialsSecret)
		if ext.CASecret != "" {
			refs = append(refs, "Secret/"+hap.Namespace+"/"+ext.CASecret)
		}
	}
	return refs
}
