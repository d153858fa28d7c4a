package compat_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
)

// target is one Data Plane API the suite drives.
type target struct {
	endpoint   string
	user, pass string
	// reloads is how many times HAProxy reloaded so far.
	reloads func() (int, error)
	// sent counts the requests the applier's client sent.
	sent *counter
	// kind names the API in the suite's RESULT lines.
	kind string
}

// client is a Data Plane API client whose requests are counted.
func (tg *target) client() *client.Client {
	return client.New(tg.endpoint, tg.user, tg.pass, &http.Client{Transport: tg.sent})
}

// sideClient is an uncounted client, for changes made behind the
// applier's back.
func (tg *target) sideClient() *client.Client {
	return client.New(tg.endpoint, tg.user, tg.pass, nil)
}

func (tg *target) reloadCount(t testing.TB) int {
	t.Helper()
	n, err := tg.reloads()
	if err != nil {
		t.Fatalf("count reloads: %v", err)
	}
	return n
}

// startTarget gives each test a Data Plane API with an HAProxy behind it,
// chosen by environment (see the package documentation).
func startTarget(t testing.TB) *target {
	t.Helper()
	tg := &target{sent: &counter{base: http.DefaultTransport}}
	switch {
	case os.Getenv("DATAPLANEAPI_URL") != "":
		// The client adds /v2 itself.
		tg.endpoint = strings.TrimSuffix(strings.TrimSuffix(os.Getenv("DATAPLANEAPI_URL"), "/"), "/v2")
		tg.user, tg.pass = os.Getenv("DATAPLANEAPI_USER"), os.Getenv("DATAPLANEAPI_PASSWORD")
		sock := os.Getenv("DATAPLANEAPI_MASTER_SOCKET")
		if sock == "" {
			t.Fatal("DATAPLANEAPI_URL needs DATAPLANEAPI_MASTER_SOCKET to count reloads")
		}
		tg.reloads = func() (int, error) { return masterReloads(sock) }
		tg.kind = "url"
	case os.Getenv("DATAPLANEAPI_BIN") != "":
		startOfficial(t, tg, os.Getenv("DATAPLANEAPI_BIN"))
		tg.kind = "bin"
	default:
		inst := dataplanetest.Start(t, "127.0.0.1")
		tg.endpoint = "http://" + inst.Server.Addr()
		tg.user, tg.pass = dataplanetest.User, dataplanetest.Password
		tg.reloads = inst.Server.ReloadCount
		tg.kind = "dataplane"
	}
	return tg
}

// masterReloads reads the master's reload count from show proc on the
// HAProxy master CLI.
func masterReloads(socket string) (int, error) {
	p, err := dataplanetest.ShowProc(socket)
	return p.Reloads, err
}

// counter is a RoundTripper that counts requests by method and answers
// by status.
type counter struct {
	base http.RoundTripper

	mu       sync.Mutex
	methods  map[string]int
	statuses map[int]int
	log      []string
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.methods == nil {
		c.methods, c.statuses = map[string]int{}, map[int]int{}
	}
	c.methods[req.Method]++
	line := req.Method + " " + req.URL.Path
	if err == nil {
		c.statuses[resp.StatusCode]++
		line += fmt.Sprintf(" %d", resp.StatusCode)
	}
	c.log = append(c.log, line)
	return resp, err
}

// reset forgets what was counted.
func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.methods, c.statuses, c.log = nil, nil, nil
}

// changes is how many requests other than GET were sent, and what they
// were.
func (c *counter) changes() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var lines []string
	for _, l := range c.log {
		if !strings.HasPrefix(l, "GET ") {
			lines = append(lines, l)
		}
	}
	return len(lines), lines
}

// total is how many requests were sent.
func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.log)
}

func (c *counter) status(code int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.statuses[code]
}
