package manifests

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/metrics"
	// controller-runtime's reconcile metrics, registered by its
	// controller package in the registry the operator serves.
	_ "sigs.k8s.io/controller-runtime/pkg/controller"
)

const dashboardFile = "../dashboards/haproxy-tcp-operator.json"

// query is one PromQL expression of the dashboard and where it sits.
type query struct {
	where, expr string
}

// dashboardQueries walks the dashboard JSON and returns every PromQL
// expression: panel targets (expr, at any depth, so rows' nested panels
// count) and the metric selectors of query variables' label_values().
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s is not JSON: %v", dashboardFile, err)
	}
	var qs []query
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if e, ok := v["expr"].(string); ok {
				qs = append(qs, query{where, e})
			}
			if title, ok := v["title"].(string); ok {
				where = title
			}
			for k, c := range v {
				if k != "templating" {
					walk(where, c)
				}
			}
		case []any:
			for _, c := range v {
				walk(where, c)
			}
		}
	}
	walk("dashboard", dash)

	vars, _ := dash["templating"].(map[string]any)["list"].([]any)
	labelValues := regexp.MustCompile(`^\s*label_values\((.+),\s*\w+\s*\)\s*$`)
	for _, v := range vars {
		v := v.(map[string]any)
		if v["type"] != "query" {
			continue
		}
		q, _ := v["query"].(string)
		if m, ok := v["query"].(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		where := fmt.Sprintf("variable %v", v["name"])
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("%s: query %q is not label_values(<metric selector>, <label>)", where, q)
			continue
		}
		qs = append(qs, query{where, m[1]})
	}
	return qs
}

// grafanaVariable matches $name, ${name} and ${name:format}.
var grafanaVariable = regexp.MustCompile(`\$\{?(\w+)(?::\w+)?\}?`)

// withoutVariables replaces Grafana's variables by what they expand to at
// query time: a duration for the interval ones, a value elsewhere.
func withoutVariables(expr string) string {
	return grafanaVariable.ReplaceAllStringFunc(expr, func(v string) string {
		switch name := grafanaVariable.FindStringSubmatch(v)[1]; name {
		case "__rate_interval", "__interval", "__range":
			return "5m"
		default:
			return "value"
		}
	})
}

// metricNames parses expr with Prometheus's PromQL parser and returns the
// metric name of every series selector in it.
func metricNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	var errs []error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			errs = append(errs, fmt.Errorf("selector %s names no metric", vs))
		}
		names = append(names, name)
		return nil
	})
	if len(names) == 0 {
		errs = append(errs, errors.New("selects no series"))
	}
	return names, errors.Join(errs...)
}

// haproxyMetrics starts Debian's HAProxy with its built-in Prometheus
// exporter on 127.0.0.1 and a TCP listener, backend and server like the
// ones the operator renders, and returns the metric families it exports.
func haproxyMetrics(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	bin := "/usr/sbin/haproxy"
	if p := os.Getenv("HAPROXY_BIN"); p != "" {
		bin = p
	}
	ports := make([]int, 3)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global
    stats socket %s/haproxy.sock mode 600 level admin
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend stats
    mode http
    bind 127.0.0.1:%d
    http-request use-service prometheus-exporter if { path /metrics }
frontend fe
    bind 127.0.0.1:%d
    default_backend be
backend be
    balance roundrobin
    server s1 127.0.0.1:%d weight 10 check inter 1s
`, dir, ports[0], ports[1], ports[2])
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", cfgPath)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[0])
	deadline := time.Now().Add(15 * time.Second)
	for {
		families, err := scrape(url)
		if err == nil {
			return families
		}
		if time.Now().After(deadline) {
			t.Fatalf("scrape HAProxy's exporter at %s: %v\n%s", url, err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func scrape(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// registeredInOperator reports whether a collector of the operator's
// registry (the one its metrics endpoint serves) describes a metric of
// this name, whether or not it has samples yet. The registry refuses a
// second collector that describes the same name differently: the probe
// is one such collector, unregistered again when it was accepted.
func registeredInOperator(t *testing.T, name string) bool {
	t.Helper()
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "dashboard test probe " + t.Name()})
	err := ctrlmetrics.Registry.Register(probe)
	if err == nil {
		ctrlmetrics.Registry.Unregister(probe)
		return false
	}
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) || strings.Contains(err.Error(), "previously registered descriptor with the same fully-qualified name") {
		return true
	}
	t.Fatalf("probe the operator's registry for %s: %v", name, err)
	return false
}

// exported reports whether a series name is one the operator or HAProxy
// exports: a family name, or a histogram's or summary's _bucket, _sum or
// _count series.
func exported(t *testing.T, name string, haproxy, gathered map[string]*dto.MetricFamily) bool {
	if _, ok := haproxy[name]; ok {
		return true
	}
	if _, ok := gathered[name]; ok || registeredInOperator(t, name) {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		// Only a gathered family says its type: a counter has no _sum.
		if f, ok := gathered[base]; ok {
			typ := f.GetType()
			return typ == dto.MetricType_HISTOGRAM || typ == dto.MetricType_GAUGE_HISTOGRAM ||
				(typ == dto.MetricType_SUMMARY && suffix != "_bucket")
		}
	}
	return false
}

func TestDashboardQueriesNameExportedMetrics(t *testing.T) {
	haproxy := haproxyMetrics(t)
	if len(haproxy) < 50 {
		t.Fatalf("HAProxy's exporter returned %d metric families; is it built with the Prometheus exporter?", len(haproxy))
	}
	// A vector is gathered, with its type, once it has a series: give the
	// operator's histogram one, so its _bucket, _sum and _count count.
	metrics.ApplyDuration.WithLabelValues("dashboard-test")
	t.Cleanup(func() { metrics.ApplyDuration.DeleteLabelValues("dashboard-test") })
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gather the operator's registry: %v", err)
	}
	gathered := map[string]*dto.MetricFamily{}
	for _, f := range families {
		gathered[f.GetName()] = f
	}

	qs := dashboardQueries(t)
	if len(qs) < 20 {
		t.Fatalf("%d queries in %s; expected a panel per subject", len(qs), dashboardFile)
	}
	used := map[string]bool{}
	for _, q := range qs {
		expr := withoutVariables(q.expr)
		names, err := metricNames(expr)
		if err != nil {
			t.Errorf("%s: %q does not parse as PromQL: %v", q.where, q.expr, err)
			continue
		}
		for _, n := range names {
			used[n] = true
			if !exported(t, n, haproxy, gathered) {
				t.Errorf("%s: %q names %s, which neither HAProxy 2.6's exporter nor the operator exports", q.where, q.expr, n)
			}
		}
	}

	// The dashboard covers each of the operator's own metrics, and the
	// HAProxy subjects it is for: connections, bytes, errors, server
	// state and weights, reloads.
	for _, want := range []string{
		"haproxy_tcp_operator_applies_total",
		"haproxy_tcp_operator_apply_duration_seconds_bucket",
		"haproxy_tcp_operator_mappings",
		"haproxy_tcp_operator_instances_out_of_sync",
		"haproxy_tcp_operator_excluded_objects",
		"haproxy_tcp_operator_certificate_expiry_timestamp_seconds",
		"controller_runtime_reconcile_total",
		"haproxy_frontend_connections_total",
		"haproxy_frontend_bytes_in_total",
		"haproxy_frontend_bytes_out_total",
		"haproxy_backend_connection_errors_total",
		"haproxy_server_status",
		"haproxy_server_weight",
		"haproxy_process_start_time_seconds",
	} {
		if !used[want] {
			t.Errorf("no query of the dashboard uses %s", want)
		}
	}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d queries over %d metrics: %s", len(qs), len(names), strings.Join(names, " "))
}

// TestDashboardCheckCatchesUnknownMetrics proves the check can fail: a
// misspelt metric and a selector without a name are refused.
func TestDashboardCheckCatchesUnknownMetrics(t *testing.T) {
	haproxy := haproxyMetrics(t)
	for _, expr := range []string{
		`rate(haproxy_frontend_connection_total[5m])`,
		`haproxy_tcp_operator_apply_seconds_bucket`,
		`haproxy_tcp_operator_mappings_bucket`,
	} {
		names, err := metricNames(expr)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		if exported(t, names[0], haproxy, map[string]*dto.MetricFamily{}) {
			t.Errorf("%s passes as exported", names[0])
		}
	}
	if _, err := metricNames(`{proxy="x"}`); err == nil {
		t.Error("a selector without a metric name passes")
	}
	if _, err := metricNames(`rate(haproxy_frontend_connections_total[$__rate_interval])`); err == nil {
		t.Error("an expression with a Grafana variable left in parses")
	}
}
