package e2e

import (
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
// operator's /metrics.
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
	weights := map[string]string{}
	for _, r := range rows[1:] {
		weights[r[col["pxname"]]+"/"+r[col["svname"]]] = r[col["weight"]]
	}
	for row, want := range map[string]string{
		"tcpm-fe-3300/FRONTEND":            "",
		"tcpm-fe-3301/FRONTEND":            "",
		"tcpm-be-3300/" + ns + ":stable:1": "192",
		"tcpm-be-3300/" + ns + ":canary:1": "64",
		"tcpm-be-3301/" + ns + ":solo:1":   "256",
		"tcpm-be-3301/" + ns + ":solo:2":   "0",
	} {
		got, found := weights[row]
		if !found {
			t.Errorf("stats page lacks %s", row)
		} else if got != want {
			t.Errorf("stats page: %s weight %q, want %q", row, got, want)
		}
	}

	instance, err := get("http://" + addr(ip, 8404) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, series := range []string{
		`haproxy_frontend_current_sessions{proxy="tcpm-fe-3300"}`,
		`haproxy_server_weight{proxy="tcpm-be-3300",server="` + ns + `:canary:1"} 64`,
	} {
		if !strings.Contains(instance, series) {
			t.Errorf("instance /metrics lacks %s", series)
		}
	}

	operator, err := get("http://" + bed.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	hap := ns + "/edge"
	for _, series := range []string{
		`controller_runtime_reconcile_total{controller="haproxy",result="success"}`,
		`haproxy_tcp_operator_applies_total{haproxy="` + hap + `",outcome="reload"}`,
		`haproxy_tcp_operator_apply_duration_seconds_count{haproxy="` + hap + `"}`,
		`haproxy_tcp_operator_mappings{haproxy="` + hap + `",state="accepted"} 3`,
		`haproxy_tcp_operator_mappings{haproxy="` + hap + `",state="conflict"} 0`,
		`haproxy_tcp_operator_instances_out_of_sync{haproxy="` + hap + `"} 0`,
	} {
		if !strings.Contains(operator, series) {
			t.Errorf("operator /metrics lacks %s", series)
		}
	}
}
