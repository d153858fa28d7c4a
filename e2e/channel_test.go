package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	dpclient "github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/controller"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/pki"
)

// instanceClient reaches the Data Plane API of HAProxy "edge"'s instance
// at ip the way the operator does: HTTPS to the Pod's IP, verified
// against the CA in the HAProxy's CA Secret and the fixed server name.
func instanceClient(t testing.TB, ns, ip string) *dpclient.Client {
	t.Helper()
	var creds, ca corev1.Secret
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "haproxy-edge-dataplane"}, &creds); err != nil {
		t.Fatal(err)
	}
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "haproxy-edge-ca"}, &ca); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.Data["ca.crt"]) {
		t.Fatal("the CA Secret's ca.crt holds no certificate")
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: "haproxy-edge-dataplane." + ns + ".svc", MinVersion: tls.VersionTLS12,
	}}}
	return dpclient.New("https://"+net.JoinHostPort(ip, "5555"), string(creds.Data["username"]), string(creds.Data["password"]), hc)
}

// plainHTTPAnswer sends a plain HTTP request with credentials to address
// and returns what came back before the connection closed.
func plainHTTPAnswer(t testing.TB, address string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", address, 2*time.Second)
	if err != nil {
		t.Fatalf("connect to %s: %v", address, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /v2/info HTTP/1.1\r\nHost: api\r\nAuthorization: Basic b3BlcmF0b3I6eA==\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(bufio.NewReader(conn))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("%s kept a plain HTTP connection open", address)
	}
	return string(got)
}

// TestControlChannelIsHTTPSOnly: the operator issues the instances' API
// certificate from a CA of the HAProxy's own, both in Secrets it owns;
// mappings are programmed through that HTTPS channel and serve traffic;
// plain HTTP to the API port gets no HTTP answer; deleting the HAProxy
// deletes the Secrets.
func TestControlChannelIsHTTPSOnly(t *testing.T) {
	ns := newNamespace(t, nil)
	ips := newHAProxy(t, ns, 1)
	serviceWithBackend(t, ns, "quote")
	create(t, mapping(ns, "quote", v1alpha1.TCPMappingSpec{Port: 2610, Service: "quote"}))
	condition(t, ns, "quote", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ips[0], 2610), "", "quote")

	var hap v1alpha1.HAProxy
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "edge"}, &hap); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"haproxy-edge-ca", "haproxy-edge-dataplane-tls"} {
		var s corev1.Secret
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
			t.Fatalf("Secret %s: %v", name, err)
		}
		if !metav1.IsControlledBy(&s, &hap) || s.Labels[controller.LabelManagedBy] != controller.ManagedBy {
			t.Errorf("Secret %s is not owned and labelled by the HAProxy: %+v %v", name, s.OwnerReferences, s.Labels)
		}
	}

	// Through the channel, verified as the operator verifies it.
	info, err := instanceClient(t, ns, ips[0]).Reloads(ctxFor(t))
	if err != nil {
		t.Fatalf("the API over HTTPS: %v", err)
	}
	t.Logf("%d reloads reported over HTTPS", len(info))
	// In clear: nothing, not even an error page.
	if got := plainHTTPAnswer(t, addr(ips[0], 5555)); strings.Contains(got, "HTTP/") {
		t.Errorf("plain HTTP to the API port got an HTTP answer: %q", got)
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr(ips[0], 5555) + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("plain HTTP to the API port got status %d", resp.StatusCode)
	}

	if err := cluster.client.Delete(ctxFor(t), &hap); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the channel's Secrets go with the HAProxy", func() error {
		for _, name := range []string{"haproxy-edge-ca", "haproxy-edge-dataplane-tls"} {
			if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("Secret %s: %v", name, err)
			}
		}
		return nil
	})
}

// TestOperatorRefusesADataplaneItCannotVerify: with a certificate the
// user provides (spec.dataPlaneTLSSecret), an instance presenting a
// certificate that the Secret's ca.crt did not sign gets neither
// credentials nor configuration, and the HAProxy status says that TLS
// verification failed. Once the Secret holds a certificate of that CA,
// the instance picks it up from its mounted files without a restart and
// is programmed. The operator never writes the user's Secret.
func TestOperatorRefusesADataplaneItCannotVerify(t *testing.T) {
	ns := newNamespace(t, nil)
	now := time.Now()
	trusted, err := pki.NewCA("team CA", now)
	if err != nil {
		t.Fatal(err)
	}
	impostor, err := pki.NewCA("impostor CA", now)
	if err != nil {
		t.Fatal(err)
	}
	serverName := "haproxy-edge-dataplane." + ns + ".svc"
	foreign, err := pki.NewLeaf(impostor, serverName, now)
	if err != nil {
		t.Fatal(err)
	}
	userSecret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "edge-api-cert", Namespace: ns},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": foreign.Cert, "tls.key": foreign.Key, "ca.crt": trusted.Cert},
	}
	create(t, userSecret)
	serviceWithBackend(t, ns, "quote")
	create(t, mapping(ns, "quote", v1alpha1.TCPMappingSpec{Port: 2620, Service: "quote"}))
	ips := newHAProxy(t, ns, 1, func(h *v1alpha1.HAProxy) { h.Spec.DataPlaneTLSSecret = "edge-api-cert" })

	eventually(t, time.Minute, "the instance is reported as failing TLS verification", func() error {
		var hap v1alpha1.HAProxy
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "edge"}, &hap); err != nil {
			return err
		}
		if len(hap.Status.Instances) != 1 || hap.Status.Instances[0].Programmed || !strings.Contains(hap.Status.Instances[0].Message, "TLS verification failed") {
			return fmt.Errorf("instances %+v", hap.Status.Instances)
		}
		return nil
	})
	conditionWithReason(t, ns, "quote", v1alpha1.ConditionProgrammed, metav1.ConditionFalse, v1alpha1.ReasonInstanceUnreachable)
	if name, _, err := greeting(addr(ips[0], 2620), ""); err == nil {
		t.Errorf("the unverified instance serves the mapping (greeted by %q)", name)
	}
	var pods corev1.PodList
	if err := cluster.client.List(ctxFor(t), &pods, client.InNamespace(ns), client.MatchingLabels{controller.LabelHAProxy: "edge"}); err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods: %d, %v", len(pods.Items), err)
	}
	pod := pods.Items[0].Name

	// The user renews the certificate from the CA the operator trusts.
	good, err := pki.NewLeaf(trusted, serverName, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.client.Get(ctxFor(t), client.ObjectKeyFromObject(userSecret), userSecret); err != nil {
		t.Fatal(err)
	}
	userSecret.Data["tls.crt"], userSecret.Data["tls.key"] = good.Cert, good.Key
	if err := cluster.client.Update(ctxFor(t), userSecret); err != nil {
		t.Fatal(err)
	}
	written := userSecret.ResourceVersion
	condition(t, ns, "quote", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ips[0], 2620), "", "quote")
	if got := bed.kubelet.PodIP(ns, pod); got != ips[0] {
		t.Errorf("the instance was replaced (pod %s at %q) to serve the new certificate", pod, got)
	}

	var after corev1.Secret
	if err := cluster.client.Get(ctxFor(t), client.ObjectKeyFromObject(userSecret), &after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != written || len(after.OwnerReferences) > 0 || !bytes.Equal(after.Data["tls.crt"], good.Cert) {
		t.Errorf("the operator wrote the user's Secret: resourceVersion %s (wrote %s), owners %+v", after.ResourceVersion, written, after.OwnerReferences)
	}
	for _, name := range []string{"haproxy-edge-ca", "haproxy-edge-dataplane-tls"} {
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
			t.Errorf("with a user certificate the operator still made Secret %s (%v)", name, err)
		}
	}
}

// TestUserSecretNamedLikeTheCAIsLeftAlone: a Secret of the user that has
// the name of the HAProxy's CA Secret is neither used, written nor
// deleted; the HAProxy says NameConflict naming it.
func TestUserSecretNamedLikeTheCAIsLeftAlone(t *testing.T) {
	ns := newNamespace(t, nil)
	user := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "haproxy-edge-ca", Namespace: ns},
		Data:       map[string][]byte{"tls.crt": []byte("mine"), "tls.key": []byte("mine too")},
	}
	create(t, user)
	create(t, &v1alpha1.HAProxy{
		ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ns},
		Spec:       v1alpha1.HAProxySpec{ServiceType: corev1.ServiceTypeClusterIP},
	})
	eventually(t, time.Minute, "the HAProxy reports the name conflict", func() error {
		var hap v1alpha1.HAProxy
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "edge"}, &hap); err != nil {
			return err
		}
		c := meta.FindStatusCondition(hap.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != "NameConflict" || !strings.Contains(c.Message, ns+"/haproxy-edge-ca") {
			return fmt.Errorf("Ready: %+v", c)
		}
		return nil
	})
	deleteObject(t, &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ns}})
	eventually(t, time.Minute, "the HAProxy is gone", func() error {
		err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "edge"}, &v1alpha1.HAProxy{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
	var after corev1.Secret
	if err := cluster.client.Get(ctxFor(t), client.ObjectKeyFromObject(user), &after); err != nil {
		t.Fatalf("the user's Secret: %v", err)
	}
	if after.ResourceVersion != user.ResourceVersion || string(after.Data["tls.crt"]) != "mine" {
		t.Errorf("the user's Secret was written: resourceVersion %s→%s", user.ResourceVersion, after.ResourceVersion)
	}
}
