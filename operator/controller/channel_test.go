package controller

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/pki"
)

func TestInstancesServeTheAPIOverTLSOnThePodIP(t *testing.T) {
	for _, tc := range []struct {
		name, userSecret, wantSecret string
	}{
		{"the operator's certificate", "", "haproxy-edge-dataplane-tls"},
		{"the user's certificate", "edge-api-cert", "edge-api-cert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hap := &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "team"}}
			hap.Spec.DataPlaneTLSSecret = tc.userSecret
			c := desiredDeployment(hap, "img").Spec.Template.Spec.Containers[0]
			for _, arg := range []string{"--listen=$(POD_IP):5555", "--tls-cert=" + APITLSDir + "/tls.crt", "--tls-key=" + APITLSDir + "/tls.key"} {
				if !slices.Contains(c.Args, arg) {
					t.Errorf("args %q lack %s", c.Args, arg)
				}
			}
			podIP := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool {
				return e.Name == "POD_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP"
			})
			if podIP < 0 {
				t.Errorf("no POD_IP from status.podIP in %+v", c.Env)
			}
			for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
				if p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
					t.Errorf("probe %s over %s", p.HTTPGet.Path, p.HTTPGet.Scheme)
				}
			}
			vols := desiredDeployment(hap, "img").Spec.Template.Spec.Volumes
			i := slices.IndexFunc(vols, func(v corev1.Volume) bool { return v.Name == "api-tls" })
			if i < 0 || vols[i].Secret == nil || vols[i].Secret.SecretName != tc.wantSecret {
				t.Fatalf("api-tls volume %+v, want Secret %s", vols, tc.wantSecret)
			}
		})
	}
}

func TestAPIServerNameIsFixedPerHAProxy(t *testing.T) {
	hap := &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "team"}}
	if got := APIServerName(hap); got != "haproxy-edge-dataplane.team.svc" {
		t.Fatalf("server name %q", got)
	}
}

// TestAnInstanceThatDoesNotVerifyIsUnusable: against a real TLS server,
// a certificate of another CA makes the instance unusable with a reason
// saying verification failed; a down instance is left to applying.
func TestAnInstanceThatDoesNotVerifyIsUnusable(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	r := &HAProxyReconciler{HTTP: &http.Client{Timeout: 5 * time.Second}}
	ctx := context.Background()

	served := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	trusting, err := r.verifyingClient(served, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got := checkInstance(ctx, trusting, srv.URL); got != "" {
		t.Fatalf("a verified instance is unusable: %s", got)
	}

	other, err := pki.NewCA("other", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	distrusting, err := r.verifyingClient(other.Cert, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got := checkInstance(ctx, distrusting, srv.URL); !strings.HasPrefix(got, "TLS verification failed") {
		t.Fatalf("a certificate of another CA: %q", got)
	}
	wrongName, err := r.verifyingClient(served, "haproxy-edge-dataplane.team.svc")
	if err != nil {
		t.Fatal(err)
	}
	if got := checkInstance(ctx, wrongName, srv.URL); !strings.HasPrefix(got, "TLS verification failed") {
		t.Fatalf("a certificate for another name: %q", got)
	}

	url := srv.URL
	srv.Close()
	if got := checkInstance(ctx, trusting, url); got != "" {
		t.Fatalf("a down instance is reported as a verification failure: %q", got)
	}
}
