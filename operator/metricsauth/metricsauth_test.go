package metricsauth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// clock is a settable time for the cache's expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestGuardAsksTheAPIServer runs the Guard against a real API server:
// who has no or a made-up token gets 401, a ServiceAccount without the
// role 403, one with it the metrics. A grant is cached for allowTTL, so
// a revoked role shows once it expires, and the Guard asks nothing while
// the answer stands.
func TestGuardAsksTheAPIServer(t *testing.T) {
	env := &envtest.Environment{BinaryAssetsDirectory: filepath.Join("..", "..", "bin", "k8s")}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start kube-apiserver and etcd (make test-deps builds them): %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	token := func(name string) string {
		t.Helper()
		if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, name, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	reader, stranger := token("reader"), token("stranger")
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "default", Name: "reader"}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	readerMay := func() bool {
		sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:                  "system:serviceaccount:default:reader",
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return sar.Status.Allowed
	}
	// The API server's RBAC follows bindings through its own cache.
	poll(t, "the API server to let the reader get /metrics", readerMay)

	g, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Unix(1_000_000, 0)}
	g.now = clk.now
	served := httptest.NewServer(g.Wrap(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "metrics")
	})))
	t.Cleanup(served.Close)

	for _, c := range []struct {
		what, header, path string
		want               int
	}{
		{"no header", "", "/metrics", http.StatusUnauthorized},
		{"another scheme", "Basic " + reader, "/metrics", http.StatusUnauthorized},
		{"an empty bearer", "Bearer ", "/metrics", http.StatusUnauthorized},
		{"a made-up token", "Bearer not-a-token", "/metrics", http.StatusUnauthorized},
		{"a ServiceAccount without the role", "Bearer " + stranger, "/metrics", http.StatusForbidden},
		{"the reader, on a path the role does not name", "Bearer " + reader, "/debug/pprof/", http.StatusForbidden},
		{"the reader", "Bearer " + reader, "/metrics", http.StatusOK},
		{"the reader, scheme in lower case", "bearer " + reader, "/metrics", http.StatusOK},
	} {
		if got := get(t, served.URL+c.path, c.header); got != c.want {
			t.Errorf("%s: %d, want %d", c.what, got, c.want)
		}
	}

	// Revoked: the cached grant stands until it expires, then the API
	// server's answer shows.
	if err := cs.RbacV1().ClusterRoleBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the API server to refuse the reader", func() bool { return !readerMay() })
	if got := get(t, served.URL+"/metrics", "Bearer "+reader); got != http.StatusOK {
		t.Errorf("within the cached grant: %d, want 200", got)
	}
	clk.advance(allowTTL)
	if got := get(t, served.URL+"/metrics", "Bearer "+reader); got != http.StatusForbidden {
		t.Errorf("once the grant expired and the role is gone: %d, want 403", got)
	}
}

// TestGuardFailsClosed: an API server that refuses connections or never
// answers gets every request refused with 500, never served, and nothing
// is cached, so the next request asks again.
func TestGuardFailsClosed(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hanging.Close)
	t.Cleanup(func() { close(release) })

	for _, c := range []struct {
		what string
		host string
	}{
		{"refused", "http://" + closedAddr},
		{"hanging", hanging.URL},
	} {
		t.Run(c.what, func(t *testing.T) {
			g, err := New(&rest.Config{Host: c.host}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/metrics", nil)
			req.Header.Set("Authorization", "Bearer some-token")
			status, reason := g.Decide(req)
			if status != http.StatusInternalServerError {
				t.Errorf("API server %s: %d (%s), want 500", c.what, status, reason)
			}
			if n := len(g.answers); n != 0 {
				t.Errorf("API server %s: %d answers cached, want none", c.what, n)
			}
		})
	}
}

// TestCacheStaysBounded: a flood of distinct tokens never grows the cache
// past maxCached; expired answers go first.
func TestCacheStaysBounded(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	g := &Guard{now: clk.now, answers: map[[sha256.Size]byte]answer{}}
	key := func(i int) [sha256.Size]byte { return sha256.Sum256([]byte(fmt.Sprint(i))) }
	for i := 0; i < maxCached; i++ {
		g.remember(key(i), answer{status: http.StatusUnauthorized, expires: clk.now().Add(denyTTL)})
	}
	if len(g.answers) != maxCached {
		t.Fatalf("%d answers, want %d", len(g.answers), maxCached)
	}
	g.remember(key(-1), answer{status: http.StatusUnauthorized, expires: clk.now().Add(denyTTL)})
	if len(g.answers) > maxCached {
		t.Errorf("%d answers after one more, want at most %d", len(g.answers), maxCached)
	}
	if _, ok := g.cached(key(-1)); !ok {
		t.Error("the newest answer is not cached")
	}

	// Half expire: room is made from them, the live half stays.
	g = &Guard{now: clk.now, answers: map[[sha256.Size]byte]answer{}}
	for i := 0; i < maxCached; i++ {
		ttl := denyTTL
		if i%2 == 0 {
			ttl = allowTTL
		}
		g.remember(key(i), answer{status: http.StatusOK, expires: clk.now().Add(ttl)})
	}
	clk.advance(denyTTL)
	g.remember(key(-1), answer{status: http.StatusOK, expires: clk.now().Add(allowTTL)})
	if want := maxCached/2 + 1; len(g.answers) != want {
		t.Errorf("%d answers, want %d (the live half and the new one)", len(g.answers), want)
	}
	if _, ok := g.cached(key(0)); !ok {
		t.Error("a live answer was dropped while expired ones were there")
	}
	if _, ok := g.cached(key(1)); ok {
		t.Error("an expired answer is still served")
	}
}

func TestBearerToken(t *testing.T) {
	for header, want := range map[string]string{
		"":                 "",
		"Bearer":           "",
		"Bearer ":          "",
		"Bearer abc":       "abc",
		"bearer abc":       "abc",
		"BEARER  abc ":     "abc",
		"Basic abc":        "",
		"Token abc":        "",
		" Bearer abc":      "abc",
		"Bearerabc":        "",
		"Bearer a.b.c-d_e": "a.b.c-d_e",
	} {
		if got := bearerToken(header); got != want {
			t.Errorf("bearerToken(%q) = %q, want %q", header, got, want)
		}
	}
}

func get(t *testing.T, url, authorization string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// poll waits up to 30 s for cond.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
