package e2e

import (
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
)

// TestHealthCheckTakesADeadServerOutAndBack: of a Service's two endpoints
// one stops listening. Within fall×interval (and some slack for the
// check in flight) the stats page shows it DOWN and every connection
// reaches the other; once it listens again on the same port it is UP
// within rise×interval and gets connections again. Any other server of
// the backend (one retired at runtime) stays in maintenance, never DOWN.
func TestHealthCheckTakesADeadServerOutAndBack(t *testing.T) {
	const (
		interval   = 200 * time.Millisecond
		rise, fall = 2, 3
		slack      = 2 * time.Second
	)
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	steady, flaky := backend(t, "steady", ""), backend(t, "flaky", "")
	service(t, ns, "pair", map[string]int32{"": 80})
	publish(t, ns, "pair", "", steady, flaky)
	create(t, mapping(ns, "checked", v1alpha1.TCPMappingSpec{Port: 2820, Service: "pair",
		HealthCheck: &v1alpha1.HealthCheck{IntervalMs: ptr.To(interval.Milliseconds()), Rise: ptr.To(int32(rise)), Fall: ptr.To(int32(fall))}}))
	condition(t, ns, "checked", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 2820), "", "steady")

	be := "tcpm-be-" + ns + ":checked"
	var steadyRow, flakyRow string
	eventually(t, 10*time.Second, "both endpoints on the stats page", func() error {
		steadyRow, flakyRow = serverRow(t, ns, ip, be, steady.Addr.Port), serverRow(t, ns, ip, be, flaky.Addr.Port)
		if steadyRow == "" || flakyRow == "" {
			return fmt.Errorf("rows %q and %q", steadyRow, flakyRow)
		}
		return nil
	})
	waitStatus(t, ns, ip, flakyRow, "UP", 10*time.Second)
	st := stats(t, ns, ip)
	for row, s := range st {
		if serverOf(row, be) && row != steadyRow && row != flakyRow && s["status"] != "MAINT" {
			t.Errorf("spare slot %s has status %q, want MAINT", row, s["status"])
		}
		if serverOf(row, be) && s["check_status"] != "" && row != steadyRow && row != flakyRow {
			t.Errorf("spare slot %s was checked: %q", row, s["check_status"])
		}
	}

	port := flaky.Addr.Port
	if err := flaky.Close(); err != nil {
		t.Fatal(err)
	}
	closed := time.Now()
	waitStatus(t, ns, ip, flakyRow, "DOWN", fall*interval+slack)
	t.Logf("flaky DOWN %v after it stopped listening (fall×interval = %v)", time.Since(closed).Round(time.Millisecond), fall*interval)
	const n = 40
	if s := split(addr(ip, 2820), n); s["steady"] != n {
		t.Errorf("with flaky DOWN: %v, want all %d connections to reach steady", s, n)
	}

	ln, err := bed.host.Listen(port)
	if err != nil {
		t.Fatalf("listen again on %d: %v", port, err)
	}
	t.Cleanup(func() { ln.Close() })
	go dataplanetest.ServeGreeting(ln, "flaky")
	back := time.Now()
	waitStatus(t, ns, ip, flakyRow, "UP", rise*interval+slack)
	t.Logf("flaky UP %v after it listened again (rise×interval = %v)", time.Since(back).Round(time.Millisecond), rise*interval)
	if s := split(addr(ip, 2820), n); s["flaky"] == 0 || s["steady"] == 0 || s["failed"] != 0 {
		t.Errorf("with flaky UP again: %v, want connections to reach both and none to fail", s)
	}
}

// serverRow is the proxy/server row of backend be whose address has
// port, or "" if none shows it yet.
func serverRow(t *testing.T, ns, ip, be string, port int) string {
	t.Helper()
	for row, s := range stats(t, ns, ip) {
		if serverOf(row, be) && strings.HasSuffix(s["addr"], fmt.Sprintf(":%d", port)) {
			return row
		}
	}
	return ""
}

// serverOf reports whether a stats row (proxy/server) is a server of
// proxy be, not its BACKEND row or, for a listen section, its FRONTEND
// row.
func serverOf(row, be string) bool {
	sv, ok := strings.CutPrefix(row, be+"/")
	return ok && sv != "BACKEND" && sv != "FRONTEND"
}

// waitStatus polls the stats page until row (proxy/server) has status.
func waitStatus(t *testing.T, ns, ip, row, status string, within time.Duration) {
	t.Helper()
	eventually(t, within, row+" "+status+" on the stats page", func() error {
		st, err := readStats(ns, ip)
		if err != nil {
			return err
		}
		if got := st[row]["status"]; !strings.HasPrefix(got, status) || (status == "UP" && strings.Contains(got, "going")) {
			return fmt.Errorf("status %q", got)
		}
		return nil
	})
}

// stats reads the stats page's CSV: a map from proxy/server to column
// name to value.
func stats(t *testing.T, ns, ip string) map[string]map[string]string {
	t.Helper()
	st, err := readStats(ns, ip)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func readStats(ns, ip string) (map[string]map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var creds corev1.Secret
	if err := cluster.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "haproxy-edge-stats"}, &creds); err != nil {
		return nil, fmt.Errorf("stats credentials: %w", err)
	}
	body, err := getAs("http://"+addr(ip, 8404)+"/stats;csv", string(creds.Data["username"]), string(creds.Data["password"]))
	if err != nil {
		return nil, fmt.Errorf("stats page: %w", err)
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "# "))).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("stats CSV: %w", err)
	}
	out := map[string]map[string]string{}
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, h := range rows[0] {
			if i < len(r) {
				m[h] = r[i]
			}
		}
		out[r[0]+"/"+r[1]] = m
	}
	return out, nil
}

// TestHealthCheckBadInputIsRefusedNamingTheField: the API server refuses
// health check settings out of range.
func TestHealthCheckBadInputIsRefusedNamingTheField(t *testing.T) {
	mapping := func(spec string) string {
		return "apiVersion: haproxy-operator.io/v1alpha1\nkind: TCPMapping\nmetadata:\n  name: bad-check\n  namespace: default\nspec:\n  port: 2222\n  service: qotm\n  healthCheck:\n" + spec
	}
	tests := map[string]struct {
		yaml string
		want []string
	}{
		"intervalMs 9":      {mapping("    intervalMs: 9\n"), []string{"spec.healthCheck.intervalMs", "greater than or equal to 10"}},
		"rise 0":            {mapping("    rise: 0\n"), []string{"spec.healthCheck.rise", "greater than or equal to 1"}},
		"fall 101":          {mapping("    fall: 101\n"), []string{"spec.healthCheck.fall", "less than or equal to 100"}},
		"fall as words":     {mapping("    fall: often\n"), []string{"spec.healthCheck.fall", "integer"}},
		"send with a quote": {mapping("    send: 'x\"'\n"), []string{"spec.healthCheck.send", "should match"}},
		"expect with $":     {mapping("    expect: '${HOME}'\n"), []string{"spec.healthCheck.expect", "should match"}},
		"send too long":     {mapping("    send: '" + strings.Repeat("a", 257) + "'\n"), []string{"spec.healthCheck.send", "256"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { refusedNamingTheField(t, tc.yaml, tc.want...) })
	}
}

// TestHealthCheckSendAndExpect: a check that expects what the server
// sends passes (CR and LF included), one that sends a line and expects
// its echo passes, one that expects what never comes marks the server
// DOWN.
func TestHealthCheckSendAndExpect(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "greeter")
	check := func(send, expect string) *v1alpha1.HealthCheck {
		return &v1alpha1.HealthCheck{IntervalMs: ptr.To(int64(200)), Rise: ptr.To(int32(1)), Fall: ptr.To(int32(1)), Send: send, Expect: expect}
	}
	create(t,
		mapping(ns, "greeted", v1alpha1.TCPMappingSpec{Port: 2830, Service: "greeter", HealthCheck: check("", "greeter\n")}),
		mapping(ns, "echoed", v1alpha1.TCPMappingSpec{Port: 2831, Service: "greeter", HealthCheck: check("ping\r\n", "ping\r\n")}),
		mapping(ns, "wrong", v1alpha1.TCPMappingSpec{Port: 2832, Service: "greeter", HealthCheck: check("", "stranger")}),
	)
	for _, m := range []string{"greeted", "echoed", "wrong"} {
		condition(t, ns, m, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	waitStatus(t, ns, ip, onlyServerRow(t, ns, ip, "tcpm-be-"+ns+":greeted"), "UP", 10*time.Second)
	waitStatus(t, ns, ip, onlyServerRow(t, ns, ip, "tcpm-be-"+ns+":echoed"), "UP", 10*time.Second)
	waitStatus(t, ns, ip, onlyServerRow(t, ns, ip, "tcpm-be-"+ns+":wrong"), "DOWN", 10*time.Second)
	routesTo(t, addr(ip, 2830), "", "greeter")
}

// TestHealthCheckErrorLimitMarksDownOnClientErrors: with active checks a
// minute apart, a server that stops listening is marked DOWN by the
// clients' failed connections (errorLimit), long before the next check.
func TestHealthCheckErrorLimitMarksDownOnClientErrors(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	steady, flaky := backend(t, "steady", ""), backend(t, "flaky", "")
	service(t, ns, "pair", map[string]int32{"": 80})
	publish(t, ns, "pair", "", steady, flaky)
	create(t, mapping(ns, "observed", v1alpha1.TCPMappingSpec{Port: 2840, Service: "pair", Retries: ptr.To(int32(0)),
		HealthCheck: &v1alpha1.HealthCheck{IntervalMs: ptr.To(int64(60000)), ErrorLimit: ptr.To(int32(2))}}))
	condition(t, ns, "observed", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 2840), "", "steady")
	be := "tcpm-be-" + ns + ":observed"
	var flakyRow string
	eventually(t, 10*time.Second, "flaky on the stats page", func() error {
		if flakyRow = serverRow(t, ns, ip, be, flaky.Addr.Port); flakyRow == "" {
			return fmt.Errorf("no row for port %d", flaky.Addr.Port)
		}
		return nil
	})
	waitStatus(t, ns, ip, flakyRow, "UP", 10*time.Second)
	if err := flaky.Close(); err != nil {
		t.Fatal(err)
	}
	closed := time.Now()
	s := split(addr(ip, 2840), 10)
	waitStatus(t, ns, ip, flakyRow, "DOWN", 5*time.Second)
	t.Logf("flaky DOWN %v after it stopped listening, clients saw %v", time.Since(closed).Round(time.Millisecond), s)
	if s["failed"] == 0 || s["failed"] > 2 {
		t.Errorf("clients saw %v, want 1 or 2 failed connections before flaky was marked DOWN", s)
	}
	const n = 20
	if s := split(addr(ip, 2840), n); s["steady"] != n {
		t.Errorf("with flaky DOWN: %v, want all %d connections to reach steady", s, n)
	}
}

// TestHealthCheckSpeaksTLSToHTTPSServices: for an https:// service the
// check runs over TLS with the server's settings: expecting the greeting
// a TLS server sends only after a handshake passes, and a server that does
// not speak TLS is marked DOWN although it accepts connections.
func TestHealthCheckSpeaksTLSToHTTPSServices(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	service(t, ns, "tlsy", map[string]int32{"": 443})
	publish(t, ns, "tlsy", "", backend(t, "tlsy", "tlsy"))
	service(t, ns, "plain", map[string]int32{"": 443})
	publish(t, ns, "plain", "", backend(t, "plain", ""))
	check := &v1alpha1.HealthCheck{IntervalMs: ptr.To(int64(200)), Rise: ptr.To(int32(1)), Fall: ptr.To(int32(1)), Expect: "tlsy\n"}
	insecure := &v1alpha1.UpstreamTLS{InsecureSkipVerify: true}
	create(t,
		mapping(ns, "tls-checked", v1alpha1.TCPMappingSpec{Port: 2850, Service: "https://tlsy", UpstreamTLS: insecure, HealthCheck: check}),
		mapping(ns, "plain-checked", v1alpha1.TCPMappingSpec{Port: 2851, Service: "https://plain", UpstreamTLS: insecure, HealthCheck: &v1alpha1.HealthCheck{IntervalMs: ptr.To(int64(200)), Fall: ptr.To(int32(1))}}),
	)
	for _, m := range []string{"tls-checked", "plain-checked"} {
		condition(t, ns, m, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	waitStatus(t, ns, ip, onlyServerRow(t, ns, ip, "tcpm-be-"+ns+":tls-checked"), "UP", 10*time.Second)
	waitStatus(t, ns, ip, onlyServerRow(t, ns, ip, "tcpm-be-"+ns+":plain-checked"), "DOWN", 10*time.Second)
	routesTo(t, addr(ip, 2850), "", "tlsy")
}

// TestHealthCheckCoversEndpointsAddedWithoutReload: an endpoint that
// appears later is added as a server at runtime; it is checked like the
// others: UP while it listens, DOWN once it stops.
func TestHealthCheckCoversEndpointsAddedWithoutReload(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	first, later := backend(t, "first", ""), backend(t, "later", "")
	service(t, ns, "grow", map[string]int32{"": 80})
	publish(t, ns, "grow", "", first)
	create(t, mapping(ns, "growing", v1alpha1.TCPMappingSpec{Port: 2860, Service: "grow",
		HealthCheck: &v1alpha1.HealthCheck{IntervalMs: ptr.To(int64(200)), Rise: ptr.To(int32(1)), Fall: ptr.To(int32(1))}}))
	condition(t, ns, "growing", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 2860), "", "first")
	reloads := reloadCount(t, ns, ip)
	publish(t, ns, "grow", "", first, later)
	be := "tcpm-be-" + ns + ":growing"
	var row string
	eventually(t, 10*time.Second, "the later endpoint added", func() error {
		if row = serverRow(t, ns, ip, be, later.Addr.Port); row == "" {
			return fmt.Errorf("no row for port %d", later.Addr.Port)
		}
		return nil
	})
	waitStatus(t, ns, ip, row, "UP", 10*time.Second)
	if n := reloadCount(t, ns, ip); n != reloads {
		t.Errorf("adding an endpoint reloaded HAProxy (%d reloads, was %d)", n, reloads)
	}
	if err := later.Close(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ns, ip, row, "DOWN", 5*time.Second)
}
