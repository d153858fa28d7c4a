package e2e

import (
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

func get(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
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
// (CSV) and /metrics, and the operator's /metrics.
func TestStatsPageAndMetricsShowEachMapping(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	canaryRelease(t, ns, 3300, 75, 25)
	create(t, mapping(ns, "solo", v1alpha1.TCPMappingSpec{Port: 3301, Service: "stable"}))
	for _, m := range []string{"stable", "canary", "solo"} {
		condition(t, ns, m, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	routesTo(t, addr(ip, 3301), "", "stable")

	body, err := get("http://" + addr(ip, 8404) + "/stats;csv")
	if err != nil {
		t.Fatal(err)
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
