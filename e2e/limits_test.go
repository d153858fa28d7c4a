package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
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

// Client source addresses on the loopback interface: HAProxy sees
// connections from them as two different clients.
const (
	clientOne = "127.0.0.1"
	clientTwo = "127.0.0.2"
)

// dialFrom opens a connection to address from source; with sni it is
// TLS (any certificate accepted: these tests are about who gets in).
func dialFrom(source, address, sni string) (net.Conn, error) {
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	conn, err := d.Dial("tcp", address)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if sni == "" {
		return conn, nil
	}
	tc := tls.Client(conn, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// greetFrom connects from source and reads the backend's greeting; an
// error means HAProxy refused (closed) the connection. The connection is
// returned open so a test can hold it.
func greetFrom(source, address, sni string) (string, net.Conn, error) {
	conn, err := dialFrom(source, address, sni)
	if err != nil {
		return "", nil, err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		conn.Close()
		return "", nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return strings.TrimSpace(line), conn, nil
}

// admitted reports whether a connection from source reaches want; it
// closes the connection.
func admitted(source, address, sni, want string) error {
	got, conn, err := greetFrom(source, address, sni)
	if err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	conn.Close()
	if got != want {
		return fmt.Errorf("reached %q, want %q", got, want)
	}
	return nil
}

// TestMaxConnectionsRefusesTheConnectionBeyondTheLimit: with
// maxConnections 2, two held connections are served, the third is
// closed without reaching the backend, and once one of the two closes a
// new one is served again.
func TestMaxConnectionsRefusesTheConnectionBeyondTheLimit(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "capped")
	create(t, mapping(ns, "capped", v1alpha1.TCPMappingSpec{Port: 2900, Service: "capped", MaxConnections: ptr.To(int32(2))}))
	condition(t, ns, "capped", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 2900), "", "capped")
	// The probes' connections count against the limit until HAProxy has
	// closed them.
	row := "tcpm-be-" + ns + ":capped/BACKEND"
	eventually(t, 10*time.Second, "the probes' connections closed", func() error {
		st, err := readStats(ns, ip)
		if err == nil && st[row]["scur"] != "0" {
			err = fmt.Errorf("%s has %q current sessions", row, st[row]["scur"])
		}
		return err
	})

	var held []net.Conn
	for i := 0; i < 2; i++ {
		got, conn, err := greetFrom(clientOne, addr(ip, 2900), "")
		if err != nil || got != "capped" {
			t.Fatalf("connection %d of 2: %q, %v", i+1, got, err)
		}
		held = append(held, conn)
	}
	if got, conn, err := greetFrom(clientOne, addr(ip, 2900), ""); err == nil {
		conn.Close()
		t.Fatalf("third connection reached %q with two held and maxConnections 2", got)
	}
	held[0].Close()
	eventually(t, 10*time.Second, "a new connection once one of the two closed", func() error {
		return admitted(clientOne, addr(ip, 2900), "", "capped")
	})
	assertEchoes(t, held[1], "the second held connection")
	held[1].Close()
}

// TestMaxConnectionsPerServerQueuesUntilAServerFrees: with one server
// and maxConnectionsPerServer 1, a second connection waits in the queue
// while the first is open and is served as soon as it closes; with
// queueTimeoutMs 300 a connection that waits longer is closed.
func TestMaxConnectionsPerServerQueuesUntilAServerFrees(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "single")
	create(t, mapping(ns, "single", v1alpha1.TCPMappingSpec{Port: 2901, Service: "single",
		MaxConnectionsPerServer: ptr.To(int32(1)), QueueTimeoutMs: ptr.To(int64(1500))}))
	condition(t, ns, "single", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 2901), "", "single")

	_, first, err := greetFrom(clientOne, addr(ip, 2901), "")
	if err != nil {
		t.Fatal(err)
	}
	queued, err := dialFrom(clientOne, addr(ip, 2901), "")
	if err != nil {
		t.Fatal(err)
	}
	defer queued.Close()
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(queued).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	select {
	case got := <-lines:
		t.Fatalf("second connection got %q while the only server was full", got)
	case <-time.After(500 * time.Millisecond):
	}
	freed := time.Now()
	first.Close()
	select {
	case got := <-lines:
		if got != "single" {
			t.Fatalf("queued connection got %q once the server freed, want the greeting", got)
		}
		t.Logf("queued connection served %v after the first closed", time.Since(freed).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		t.Fatal("queued connection not served after the first closed")
	}

	// The queued one now holds the server; one more waits out the queue
	// timeout and is closed.
	start := time.Now()
	_, conn, err := greetFrom(clientOne, addr(ip, 2901), "")
	if err == nil {
		conn.Close()
		t.Fatal("a connection was served while the server was full past the queue timeout")
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("closed after %v, want it to wait about queueTimeoutMs (1500 ms) first", waited)
	}
}

// TestConnectionRateLimitRefusesOneClientNotAnother: with 3 connections
// per 10 s, a client's fourth connection is refused while a client from
// another address still connects.
func TestConnectionRateLimitRefusesOneClientNotAnother(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "rated")
	create(t, mapping(ns, "rated", v1alpha1.TCPMappingSpec{Port: 2902, Service: "rated",
		ConnectionRateLimit: &v1alpha1.ConnectionRateLimit{Connections: 3, PeriodMs: ptr.To(int64(10000))}}))
	condition(t, ns, "rated", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	// Wait for the mapping from clientTwo so clientOne's count starts
	// at zero.
	eventually(t, 30*time.Second, "mapping serves", func() error { return admitted(clientTwo, addr(ip, 2902), "", "rated") })

	for i := 1; i <= 3; i++ {
		if err := admitted(clientOne, addr(ip, 2902), "", "rated"); err != nil {
			t.Fatalf("connection %d of 3 from %s: %v", i, clientOne, err)
		}
	}
	if err := admitted(clientOne, addr(ip, 2902), "", "rated"); err == nil {
		t.Fatalf("fourth connection from %s within 10 s was served", clientOne)
	}
	if err := admitted(clientTwo, addr(ip, 2902), "", "rated"); err != nil {
		t.Errorf("%s (its second connection) was refused: %v", clientTwo, err)
	}
}

// TestSourceRangesPerSNIHostOnOnePort: two passthrough hosts on one port
// with opposite lists: a admits only 127.0.0.1, b denies it. Each client
// reaches exactly the host its lists admit, so the check follows the
// SNI. A cleartext mapping that allows 127.0.0.0/8 but denies 127.0.0.2
// shows that deny wins.
func TestSourceRangesPerSNIHostOnOnePort(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	service(t, ns, "svc-a", map[string]int32{"tls": 443})
	publish(t, ns, "svc-a", "tls", backend(t, "a", "a.example.com"))
	service(t, ns, "svc-b", map[string]int32{"tls": 443})
	publish(t, ns, "svc-b", "tls", backend(t, "b", "b.example.com"))
	serviceWithBackend(t, ns, "plain")
	create(t,
		mapping(ns, "only-one", v1alpha1.TCPMappingSpec{Port: 2903, Host: "a.example.com", Service: "svc-a:443",
			AllowedSourceRanges: []v1alpha1.SourceRange{clientOne + "/32", "::1/128"}}),
		mapping(ns, "not-one", v1alpha1.TCPMappingSpec{Port: 2903, Host: "b.example.com", Service: "svc-b:443",
			DeniedSourceRanges: []v1alpha1.SourceRange{clientOne + "/32"}}),
		mapping(ns, "deny-wins", v1alpha1.TCPMappingSpec{Port: 2904, Service: "plain",
			AllowedSourceRanges: []v1alpha1.SourceRange{"127.0.0.0/8"}, DeniedSourceRanges: []v1alpha1.SourceRange{clientTwo + "/32"}}),
	)
	for _, m := range []string{"only-one", "not-one", "deny-wins"} {
		condition(t, ns, m, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	eventually(t, 30*time.Second, "a.example.com serves "+clientOne, func() error {
		return admitted(clientOne, addr(ip, 2903), "a.example.com", "a")
	})
	tests := []struct {
		source, sni, want string
		admit             bool
	}{
		{clientOne, "a.example.com", "a", true},
		{clientTwo, "a.example.com", "a", false},
		{clientOne, "b.example.com", "b", false},
		{clientTwo, "b.example.com", "b", true},
	}
	for _, tc := range tests {
		err := admitted(tc.source, addr(ip, 2903), tc.sni, tc.want)
		if tc.admit && err != nil {
			t.Errorf("%s to %s: %v, want it served", tc.source, tc.sni, err)
		}
		if !tc.admit && err == nil {
			t.Errorf("%s to %s was served, want it refused", tc.source, tc.sni)
		}
	}
	eventually(t, 30*time.Second, "deny-wins serves "+clientOne, func() error {
		return admitted(clientOne, addr(ip, 2904), "", "plain")
	})
	if err := admitted(clientTwo, addr(ip, 2904), "", "plain"); err == nil {
		t.Errorf("%s was served though deniedSourceRanges names it and allowedSourceRanges covers it", clientTwo)
	}
}

// accessLogLine is one line of an access log, as the README documents it.
type accessLogLine struct {
	Mapping       string `json:"mapping"`
	ClientAddress string `json:"clientAddress"`
	ClientPort    int    `json:"clientPort"`
	SNI           string `json:"sni"`
	Frontend      string `json:"frontend"`
	Backend       string `json:"backend"`
	Server        string `json:"server"`
	BytesIn       int64  `json:"bytesIn"`
	BytesOut      int64  `json:"bytesOut"`
	DurationMs    int64  `json:"durationMs"`
	Termination   string `json:"termination"`
	Start         int64  `json:"start"`
}

// accessLog parses the JSON lines an instance wrote to its standard
// output (captured by the kubelet stand-in); other lines are skipped.
func accessLog(t *testing.T, ip string) []accessLogLine {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(bed.kubelet.Dir, strings.ReplaceAll(ip, ".", "-"), "pod.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []accessLogLine
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "{\"mapping\"") {
			continue
		}
		var l accessLogLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Errorf("access log line is not JSON: %v\n%s", err, line)
			continue
		}
		out = append(out, l)
	}
	return out
}

// TestAccessLogWritesOneJSONLinePerConnection: a passthrough mapping
// with accessLog and one without share a port with a mapping HAProxy
// terminates TLS for, also logged. A connection through each gives
// exactly one JSON line on the instance's standard output per logged
// mapping, naming its client, SNI (from the ClientHello, or from the TLS
// session behind the internal terminator), server, bytes and termination
// state, and none for the other.
func TestAccessLogWritesOneJSONLinePerConnection(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	service(t, ns, "svc-a", map[string]int32{"tls": 443})
	publish(t, ns, "svc-a", "tls", backend(t, "a", "a.example.com"))
	service(t, ns, "svc-b", map[string]int32{"tls": 443})
	publish(t, ns, "svc-b", "tls", backend(t, "b", "b.example.com"))
	create(t,
		mapping(ns, "logged", v1alpha1.TCPMappingSpec{Port: 2905, Host: "a.example.com", Service: "svc-a:443", AccessLog: ptr.To(true)}),
		mapping(ns, "quiet", v1alpha1.TCPMappingSpec{Port: 2905, Host: "b.example.com", Service: "svc-b:443"}),
		&v1alpha1.TLSContext{ObjectMeta: metav1.ObjectMeta{Name: "c-context", Namespace: ns}, Spec: v1alpha1.TLSContextSpec{Secret: "c-cert"}},
		mapping(ns, "terminated", v1alpha1.TCPMappingSpec{Port: 2905, Host: "c.example.com", TLS: "c-context", Service: "plain", AccessLog: ptr.To(true)}),
	)
	tlsSecret(t, ns, "c-cert", "c.example.com")
	serviceWithBackend(t, ns, "plain")
	condition(t, ns, "terminated", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 2905), "c.example.com", "plain")
	condition(t, ns, "logged", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	condition(t, ns, "quiet", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 2905), "a.example.com", "a")
	routesTo(t, addr(ip, 2905), "b.example.com", "b")
	before := len(accessLog(t, ip))

	var local, localC *net.TCPAddr
	for _, sni := range []string{"a.example.com", "b.example.com", "c.example.com"} {
		_, conn, err := greetFrom(clientOne, addr(ip, 2905), sni)
		if err != nil {
			t.Fatal(err)
		}
		assertEchoes(t, conn, sni)
		switch sni {
		case "a.example.com":
			local = conn.LocalAddr().(*net.TCPAddr)
		case "c.example.com":
			localC = conn.LocalAddr().(*net.TCPAddr)
		}
		conn.Close()
	}
	eventually(t, 10*time.Second, "the access log line of the terminated connection", func() error {
		for _, l := range accessLog(t, ip)[before:] {
			if l.ClientPort != localC.Port {
				continue
			}
			if l.Mapping != ns+"/terminated" || l.SNI != "c.example.com" || l.ClientAddress != clientOne || !strings.HasPrefix(l.Server, ns+":terminated:") {
				return fmt.Errorf("line %+v: want mapping %s/terminated, sni c.example.com, client %s and a server of the mapping", l, ns, clientOne)
			}
			return nil
		}
		return fmt.Errorf("no line for client port %d", localC.Port)
	})

	var mine []accessLogLine
	eventually(t, 10*time.Second, "the access log line of the connection", func() error {
		mine = nil
		for _, l := range accessLog(t, ip)[before:] {
			if l.ClientPort == local.Port {
				mine = append(mine, l)
			}
		}
		if len(mine) == 0 {
			return fmt.Errorf("no line for client port %d", local.Port)
		}
		return nil
	})
	for _, l := range accessLog(t, ip) {
		if strings.Contains(l.Mapping, "quiet") || strings.Contains(l.Server, "quiet") {
			t.Errorf("mapping quiet, without accessLog, was logged: %+v", l)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("%d lines for one connection: %+v", len(mine), mine)
	}
	l := mine[0]
	t.Logf("access log line: %+v", l)
	if l.Mapping != ns+"/logged" {
		t.Errorf("mapping %q, want %q", l.Mapping, ns+"/logged")
	}
	if l.ClientAddress != clientOne {
		t.Errorf("clientAddress %q, want %q", l.ClientAddress, clientOne)
	}
	if l.SNI != "a.example.com" {
		t.Errorf("sni %q, want a.example.com", l.SNI)
	}
	// The mapping holds a backend of the port's pool (tcpm-be-2905-<k>).
	if !strings.HasPrefix(l.Backend, "tcpm-be-2905-") || !strings.HasPrefix(l.Server, ns+":logged:") {
		t.Errorf("backend %q server %q, want a backend of port 2905's pool and a server of %s/logged", l.Backend, l.Server, ns)
	}
	// The ClientHello, and the TLS records of "ping\n" each way.
	if l.BytesIn < 100 || l.BytesOut < 100 {
		t.Errorf("bytesIn %d, bytesOut %d: want the TLS handshake and data counted", l.BytesIn, l.BytesOut)
	}
	if l.DurationMs < 0 || len(l.Termination) != 2 || l.Start < time.Now().Add(-time.Hour).Unix() {
		t.Errorf("durationMs %d, termination %q, start %d", l.DurationMs, l.Termination, l.Start)
	}
}

// TestStatsPageNamesTheMappingsOfEveryProxy: the stats page describes
// each frontend and backend with the TCPMappings it carries, and the
// servers carry namespace:mapping in their names, on the stats page and
// in the Prometheus metrics' server label. On a port routed by SNI, whose
// hosts come and go at runtime, the frontend and the pool's backends
// carry no description (it would take a reload to follow): their
// servers' names say whose they are.
func TestStatsPageNamesTheMappingsOfEveryProxy(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	service(t, ns, "svc-a", map[string]int32{"tls": 443})
	publish(t, ns, "svc-a", "tls", backend(t, "a", "a.example.com"))
	service(t, ns, "svc-b", map[string]int32{"tls": 443})
	publish(t, ns, "svc-b", "tls", backend(t, "b", "b.example.com"))
	create(t,
		mapping(ns, "first", v1alpha1.TCPMappingSpec{Port: 2906, Host: "a.example.com", Service: "svc-a:443"}),
		mapping(ns, "second", v1alpha1.TCPMappingSpec{Port: 2906, Host: "b.example.com", Service: "svc-b:443"}),
	)
	condition(t, ns, "first", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	condition(t, ns, "second", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)

	var creds corev1.Secret
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "haproxy-edge-stats"}, &creds); err != nil {
		t.Fatal(err)
	}
	page, err := getAs("http://"+addr(ip, 8404)+"/stats", string(creds.Data["username"]), string(creds.Data["password"]))
	if err != nil {
		t.Fatal(err)
	}
	create(t, mapping(ns, "plain", v1alpha1.TCPMappingSpec{Port: 2907, Service: "svc-a:443"}))
	condition(t, ns, "plain", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	eventually(t, 10*time.Second, "the stats page shows port 2907", func() error {
		var err error
		page, err = getAs("http://"+addr(ip, 8404)+"/stats", string(creds.Data["username"]), string(creds.Data["password"]))
		if err == nil && !strings.Contains(page, "tcpm-be-"+ns+":plain") {
			err = errors.New("no tcpm-be-" + ns + ":plain yet")
		}
		return err
	})
	// Port 2907 carries one mapping: one listen section, named after the
	// mapping's backend, with its description.
	want := map[string]string{
		"tcpm-fe-2906":             "",
		"tcpm-be-" + ns + ":plain": "TCPMapping " + ns + "/plain",
	}
	if strings.Contains(page, "tcpm-fe-2907") {
		t.Error("port 2907 has a frontend of its own beside its listen section")
	}
	// Each proxy's title row on the page: its name, then its description.
	titles := map[string]string{}
	for _, row := range strings.Split(page, `<tr class="titre">`)[1:] {
		name, rest, ok := strings.Cut(strings.TrimPrefix(row, `<th class="pxname" width="10%"><a name="`), `"`)
		if !ok {
			continue
		}
		if _, desc, ok := strings.Cut(rest, `<th class="desc" width="90%">`); ok {
			titles[name], _, _ = strings.Cut(desc, "</th>")
		}
	}
	for proxy, desc := range want {
		if titles[proxy] != desc {
			t.Errorf("stats page describes %s as %q, want %q", proxy, titles[proxy], desc)
		}
	}
	// Prometheus labels carry proxy and server names only: the servers'
	// names trace each series to its mapping.
	metrics, err := get("http://" + addr(ip, 8404) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"first", "second"} {
		if !strings.Contains(metrics, fmt.Sprintf(`server="%s:%s:`, ns, m)) {
			t.Errorf("/metrics has no series of a server %s:%s:...", ns, m)
		}
	}
	// Each backend of the pool holds the servers of one mapping at most.
	owners := map[string]map[string]bool{}
	for row := range stats(t, ns, ip) {
		be, server, _ := strings.Cut(row, "/")
		if !strings.HasPrefix(be, "tcpm-be-2906-") || server == "BACKEND" {
			continue
		}
		parts := strings.SplitN(server, ":", 3)
		if len(parts) < 3 || parts[0] != ns {
			t.Errorf("server row %s is not named %s:<mapping>:...", row, ns)
			continue
		}
		if owners[be] == nil {
			owners[be] = map[string]bool{}
		}
		owners[be][parts[1]] = true
	}
	held := map[string]int{}
	for be, ms := range owners {
		if len(ms) != 1 {
			t.Errorf("backend %s holds servers of %v", be, ms)
		}
		for m := range ms {
			held[m]++
		}
	}
	if held["first"] != 1 || held["second"] != 1 {
		t.Errorf("the pool's backends hold %v, want first and second in one each", held)
	}
}

// TestLimitsBadInputIsRefusedNamingTheField: the API server refuses
// limits out of range, source ranges that are no CIDR and a queue
// timeout without a per-server limit.
func TestLimitsBadInputIsRefusedNamingTheField(t *testing.T) {
	mapping := func(spec string) string {
		return "apiVersion: haproxy-operator.io/v1alpha1\nkind: TCPMapping\nmetadata:\n  name: bad-limits\n  namespace: default\nspec:\n  port: 2222\n  service: qotm\n" + spec
	}
	tests := map[string]struct {
		yaml string
		want []string
	}{
		"maxConnections 0":              {mapping("  maxConnections: 0\n"), []string{"spec.maxConnections", "greater than or equal to 1"}},
		"maxConnectionsPerServer 2M":    {mapping("  maxConnectionsPerServer: 2000000\n"), []string{"spec.maxConnectionsPerServer", "less than or equal to 1000000"}},
		"queueTimeoutMs alone":          {mapping("  queueTimeoutMs: 100\n"), []string{"spec", "queueTimeoutMs needs maxConnectionsPerServer"}},
		"queueTimeoutMs 0":              {mapping("  maxConnectionsPerServer: 1\n  queueTimeoutMs: 0\n"), []string{"spec.queueTimeoutMs", "greater than or equal to 1"}},
		"rate without connections":      {mapping("  connectionRateLimit: {periodMs: 1000}\n"), []string{"spec.connectionRateLimit.connections", "Required"}},
		"rate period 10ms":              {mapping("  connectionRateLimit: {connections: 1, periodMs: 10}\n"), []string{"spec.connectionRateLimit.periodMs", "greater than or equal to 100"}},
		"allowed not a CIDR":            {mapping("  allowedSourceRanges: [\"10.0.0.1\"]\n"), []string{"spec.allowedSourceRanges[0]", "must be a CIDR"}},
		"allowed prefix 33":             {mapping("  allowedSourceRanges: [\"10.0.0.0/33\"]\n"), []string{"spec.allowedSourceRanges[0]", "must be a CIDR"}},
		"denied IPv6 prefix 129":        {mapping("  deniedSourceRanges: [\"10.0.0.0/8\", \"2001:db8::/129\"]\n"), []string{"spec.deniedSourceRanges[1]", "must be a CIDR"}},
		"denied a name":                 {mapping("  deniedSourceRanges: [\"example.com/8\"]\n"), []string{"spec.deniedSourceRanges[0]", "must be a CIDR"}},
		"allowed empty":                 {mapping("  allowedSourceRanges: []\n"), []string{"spec.allowedSourceRanges", "at least 1"}},
		"accessLog as words":            {mapping("  accessLog: yes please\n"), []string{"spec.accessLog", "boolean"}},
		"maxConnections as words":       {mapping("  maxConnections: many\n"), []string{"spec.maxConnections", "integer"}},
		"allowed 65 ranges":             {mapping("  allowedSourceRanges: [" + strings.TrimSuffix(strings.Repeat("\"10.0.0.0/8\",", 65), ",") + "]\n"), []string{"spec.allowedSourceRanges", "must have at most 64 items"}},
		"denied range of 50 characters": {mapping("  deniedSourceRanges: [\"" + strings.Repeat("1", 50) + "\"]\n"), []string{"spec.deniedSourceRanges[0]", "may not be more than 49"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { refusedNamingTheField(t, tc.yaml, tc.want...) })
	}
}

// TestSourceRangesIPv6: mappings listening on ::1 admit or refuse an IPv6
// client by IPv6 CIDRs, and an allow list of IPv4 ranges refuses it.
func TestSourceRangesIPv6(t *testing.T) {
	ns := newNamespace(t, nil)
	newHAProxy(t, ns, 1)
	serviceWithBackend(t, ns, "six")
	ports := map[string]int32{}
	specs := map[string]v1alpha1.TCPMappingSpec{
		"allow-six": {AllowedSourceRanges: []v1alpha1.SourceRange{"::1/128"}},
		"deny-six":  {AllowedSourceRanges: []v1alpha1.SourceRange{"::/0"}, DeniedSourceRanges: []v1alpha1.SourceRange{"::1/128"}},
		// Not 0.0.0.0/0: HAProxy matches an IPv4-compatible IPv6
		// address (::1 is ::0.0.0.1) against IPv4 ranges as that IPv4
		// address, as the README says.
		"only-four": {AllowedSourceRanges: []v1alpha1.SourceRange{"127.0.0.0/8", "10.0.0.0/8"}},
	}
	for name, spec := range specs {
		ports[name] = int32(dataplanetest.FreePort(t, "::1"))
		spec.Port, spec.Address, spec.Service = ports[name], "::1", "six"
		create(t, mapping(ns, name, spec))
	}
	for name := range specs {
		condition(t, ns, name, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	eventually(t, 30*time.Second, "allow-six serves ::1", func() error {
		return admitted("::1", addr("::1", ports["allow-six"]), "", "six")
	})
	if err := admitted("::1", addr("::1", ports["deny-six"]), "", "six"); err == nil {
		t.Error("deny-six served ::1, which its deniedSourceRanges names")
	}
	if err := admitted("::1", addr("::1", ports["only-four"]), "", "six"); err == nil {
		t.Error("only-four served ::1 with an IPv4-only allowedSourceRanges")
	}
}

// TestSourceRangesChangeOnALiveMapping: denying a client on a mapping
// that serves it takes effect, and so does lifting the denial.
func TestSourceRangesChangeOnALiveMapping(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "live")
	create(t, mapping(ns, "live", v1alpha1.TCPMappingSpec{Port: 2908, Service: "live"}))
	condition(t, ns, "live", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	eventually(t, 30*time.Second, clientTwo+" served", func() error { return admitted(clientTwo, addr(ip, 2908), "", "live") })

	updateMapping(t, ns, "live", func(m *v1alpha1.TCPMapping) {
		m.Spec.DeniedSourceRanges = []v1alpha1.SourceRange{clientTwo + "/32"}
	})
	eventually(t, 30*time.Second, clientTwo+" refused once denied", func() error {
		if admitted(clientTwo, addr(ip, 2908), "", "live") == nil {
			return fmt.Errorf("still served")
		}
		return nil
	})
	if err := admitted(clientOne, addr(ip, 2908), "", "live"); err != nil {
		t.Errorf("%s, not denied, was refused: %v", clientOne, err)
	}

	updateMapping(t, ns, "live", func(m *v1alpha1.TCPMapping) { m.Spec.DeniedSourceRanges = nil })
	eventually(t, 30*time.Second, clientTwo+" served again", func() error { return admitted(clientTwo, addr(ip, 2908), "", "live") })
}
