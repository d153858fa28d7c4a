package e2e

import (
	"context"
	"crypto/tls"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

func get(url string) (string, error) { return getAs(url, "", "") }

// getAs GETs url with Basic credentials when user is set.
func getAs(url, user, password string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), err
}

// TestStatsPageAndMetricsShowEachMapping reads an instance's stats page
// (CSV; 401 without the generated credentials) and /metrics, and the
// operator's /metrics (HTTPS; 401 without a token, 403 without the
// metrics-reader role).
func TestStatsPageAndMetricsShowEachMapping(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	canaryRelease(t, ns, 3300, 75, 25)
	create(t, mapping(ns, "solo", v1alpha1.TCPMappingSpec{Port: 3301, Service: "stable"}))
	for _, m := range []string{"stable", "canary", "solo"} {
		condition(t, ns, m, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	routesTo(t, addr(ip, 3301), "", "stable")

	// The stats page asks for the credentials the operator generated.
	if _, err := get("http://" + addr(ip, 8404) + "/stats;csv"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("the stats page without credentials: %v, want 401", err)
	}
	var creds corev1.Secret
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "haproxy-edge-stats"}, &creds); err != nil {
		t.Fatal(err)
	}
	var body string
	eventually(t, 10*time.Second, "the stats page with the generated credentials", func() error {
		var err error
		body, err = getAs("http://"+addr(ip, 8404)+"/stats;csv", string(creds.Data["username"]), string(creds.Data["password"]))
		return err
	})
	var svc corev1.Service
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "haproxy-edge"}, &svc); err != nil {
		t.Fatal(err)
	}
	for _, p := range svc.Spec.Ports {
		if p.Port == 8404 {
			t.Errorf("the mappings' Service exposes the stats port: %+v", svc.Spec.Ports)
		}
	}
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "haproxy-edge-stats"}, &svc); err != nil || svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("the stats Service: %v %+v", err, svc.Spec)
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "# "))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	// Each mapping has its backend, and its servers are named by it; the
	// shares live in the frontend's weight map, not in server weights.
	servers := map[string]int{}
	seen := map[string]bool{}
	for _, r := range rows[1:] {
		px, sv := r[col["pxname"]], r[col["svname"]]
		seen[px+"/"+sv] = true
		if sv != "FRONTEND" && sv != "BACKEND" && strings.HasPrefix(px, "tcpm-be-"+ns+":") &&
			strings.HasPrefix(sv, strings.TrimPrefix(px, "tcpm-be-")+":") && r[col["weight"]] == "1" {
			servers[px]++
		}
	}
	// Port 3301 carries one mapping: its frontend is the listen section
	// named after the mapping's backend.
	for _, row := range []string{"tcpm-fe-3300/FRONTEND", "tcpm-be-" + ns + ":solo/FRONTEND", "tcpm-be-" + ns + ":solo/BACKEND"} {
		if !seen[row] {
			t.Errorf("stats page lacks %s", row)
		}
	}
	for _, m := range []string{"stable", "canary", "solo"} {
		if be := "tcpm-be-" + ns + ":" + m; servers[be] != 1 {
			t.Errorf("stats page: backend %s has %d servers named by the mapping with weight 1, want 1", be, servers[be])
		}
	}

	instance, err := get("http://" + addr(ip, 8404) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, series := range []string{
		`haproxy_frontend_current_sessions{proxy="tcpm-fe-3300"}`,
		`haproxy_server_weight{proxy="tcpm-be-` + ns + `:canary",server="` + ns + `:canary:`,
	} {
		if !strings.Contains(instance, series) {
			t.Errorf("instance /metrics lacks %s", series)
		}
	}

	operator := scrapeOperatorMetrics(t, ns)
	hap := ns + "/edge"
	for _, series := range []string{
		`controller_runtime_reconcile_total{controller="haproxy",result="success"}`,
		`haproxy_tcp_operator_applies_total{haproxy="` + hap + `",outcome="reload"}`,
		`haproxy_tcp_operator_apply_duration_seconds_count{haproxy="` + hap + `"}`,
		`haproxy_tcp_operator_mappings{haproxy="` + hap + `",state="accepted"} 3`,
		`haproxy_tcp_operator_mappings{haproxy="` + hap + `",state="conflict"} 0`,
		`haproxy_tcp_operator_instances_out_of_sync{haproxy="` + hap + `"} 0`,
		`haproxy_tcp_operator_reload_held{haproxy="` + hap + `"} 0`,
	} {
		if !strings.Contains(operator, series) {
			t.Errorf("operator /metrics lacks %s", series)
		}
	}
}

// metricsReaderRole is the ClusterRole the servicemonitor component ships
// for scrapers of the operator's metrics.
const metricsReaderRole = "../deploy/components/servicemonitor/metrics_reader_role.yaml"

// scrapeOperatorMetrics reads the operator's /metrics as a scraper must:
// over HTTPS with the token of a ServiceAccount bound to the shipped
// metrics-reader ClusterRole. On the way it checks that the endpoint
// refuses a request without a token (401), with the token of a
// ServiceAccount that lacks the role (403) and with a token the API server
// does not accept.
func scrapeOperatorMetrics(t *testing.T, ns string) string {
	t.Helper()
	return operatorMetricsScraper(t, ns)()
}

// operatorMetricsScraper makes what scrapeOperatorMetrics needs, checks
// what it checks, and returns a scrape with the scraper's token that
// takes one request: for reading a gauge within a window.
func operatorMetricsScraper(t *testing.T, ns string) func() string {
	t.Helper()
	ctx := ctxFor(t)
	raw, err := os.ReadFile(metricsReaderRole)
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(raw, &role); err != nil {
		t.Fatalf("%s: %v", metricsReaderRole, err)
	}
	if err := cluster.client.Create(ctx, &role); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create the ClusterRole %s: %v", role.Name, err)
	}
	cs, err := kubernetes.NewForConfig(cluster.cfg)
	if err != nil {
		t.Fatal(err)
	}
	token := func(name string) string {
		t.Helper()
		create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("request a token for ServiceAccount %s/%s: %v", ns, name, err)
		}
		return tr.Status.Token
	}
	scraper, stranger := token("metrics-scraper"), token("stranger")
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-scraper-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "metrics-scraper"}},
	}
	if err := cluster.client.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.client.Delete(context.Background(), binding) })
	// The operator caches an authorizer's "no" for a while: ask it only
	// once the API server's RBAC says yes.
	eventually(t, 30*time.Second, "the API server lets the scraper get /metrics", func() error {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:                  "system:serviceaccount:" + ns + ":metrics-scraper",
			Groups:                []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
		}}
		if err := cluster.client.Create(ctx, sar); err != nil {
			return err
		}
		if !sar.Status.Allowed {
			return fmt.Errorf("not allowed: %s", sar.Status.Reason)
		}
		return nil
	})

	url := "https://" + bed.metricsAddr + "/metrics"
	for _, c := range []struct {
		what, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"the token of a ServiceAccount without the metrics-reader role", stranger, http.StatusForbidden},
		{"a token the API server does not know", "not-a-token", http.StatusUnauthorized},
	} {
		if code, _, err := getBearer(url, c.token); err != nil || code != c.want {
			t.Errorf("operator /metrics with %s: %d %v, want %d", c.what, code, err, c.want)
		}
	}
	eventually(t, 30*time.Second, "the operator's /metrics with the scraper's token", func() error {
		code, b, err := getBearer(url, scraper)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("%s: %d %s", url, code, strings.TrimSpace(b))
		}
		return nil
	})
	return func() string {
		t.Helper()
		code, body, err := getBearer("https://"+bed.metricsAddr+"/metrics", scraper)
		if err != nil || code != http.StatusOK {
			t.Fatalf("operator /metrics: %d %v", code, err)
		}
		return body
	}
}

// getBearer GETs url over TLS with the bearer token, when set, and returns
// the status code and body. The operator's serving certificate is
// self-signed, as it is in a Pod without --metrics-cert-dir; a scraper
// skips verification the same way.
func getBearer(url, token string) (int, string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed by design, see above
	}}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
