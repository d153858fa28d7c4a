// Package metricsauth guards the operator's metrics endpoint the way the
// Kubernetes components guard theirs: a request carries a bearer token
// the API server accepts (TokenReview), whose user may get the path
// (SubjectAccessReview on a non-resource URL). Answers are cached
// briefly, so a scraper costs the API server two reviews a minute, not
// two per scrape.
//
// It talks to the API server through client-go's typed clients only.
// The API server library's delegating authenticator would do the same
// work but links its whole stack (CEL, gRPC, OpenTelemetry) into the
// operator: 16 MB of binary, most of it resident.
package metricsauth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// How long an answer stands. A granted request is served from the cache
// for a minute, so revoking a scraper's role takes up to that long; a
// refusal is remembered for less, so granting one takes effect soon.
const (
	allowTTL = time.Minute
	denyTTL  = 10 * time.Second
	// reviewTimeout bounds one review, so a hanging API server fails a
	// scrape instead of holding it.
	reviewTimeout = 10 * time.Second
	// maxCached bounds the cache: requests with made-up tokens must not
	// grow it without end.
	maxCached = 4096
)

// Guard decides who may read the metrics.
type Guard struct {
	tokens authenticationclient.TokenReviewInterface
	access authorizationclient.SubjectAccessReviewInterface
	now    func() time.Time

	mu      sync.Mutex
	answers map[[sha256.Size]byte]answer
}

// answer is a cached decision: the HTTP status to give and why.
type answer struct {
	status  int
	message string
	expires time.Time
}

// New returns a Guard that asks the API server cfg and httpClient reach;
// a nil httpClient is made from cfg.
func New(cfg *rest.Config, httpClient *http.Client) (*Guard, error) {
	if httpClient == nil {
		var err error
		if httpClient, err = rest.HTTPClientFor(cfg); err != nil {
			return nil, fmt.Errorf("client for %s: %w", cfg.Host, err)
		}
	}
	tokens, err := authenticationclient.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("token review client: %w", err)
	}
	access, err := authorizationclient.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("subject access review client: %w", err)
	}
	return &Guard{
		tokens:  tokens.TokenReviews(),
		access:  access.SubjectAccessReviews(),
		now:     time.Now,
		answers: map[[sha256.Size]byte]answer{},
	}, nil
}

// FilterProvider is a metrics server FilterProvider that puts a Guard in
// front of the metrics handler.
func FilterProvider(cfg *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	g, err := New(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	return func(log logr.Logger, next http.Handler) (http.Handler, error) {
		return g.Wrap(log, next), nil
	}, nil
}

// Wrap serves next to the requests the Guard allows and answers the
// others with 401 (no or an unknown token), 403 (not allowed) or 500 (the
// API server could not be asked).
func (g *Guard) Wrap(log logr.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		status, message := g.Decide(req)
		if status != http.StatusOK {
			if status == http.StatusInternalServerError {
				log.Error(nil, "Could not check a metrics request", "reason", message)
			} else {
				log.V(4).Info("Refused a metrics request", "status", status, "reason", message)
			}
			http.Error(w, http.StatusText(status), status)
			return
		}
		next.ServeHTTP(w, req)
	})
}

// Decide returns http.StatusOK when req may be served, otherwise the
// status to refuse it with and the reason.
func (g *Guard) Decide(req *http.Request) (int, string) {
	token := bearerToken(req.Header.Get("Authorization"))
	if token == "" {
		return http.StatusUnauthorized, "no bearer token"
	}
	verb, path := strings.ToLower(req.Method), req.URL.Path
	key := sha256.Sum256([]byte(token + "\x00" + verb + "\x00" + path))
	if a, ok := g.cached(key); ok {
		return a.status, a.message
	}
	ctx, cancel := context.WithTimeout(req.Context(), reviewTimeout)
	defer cancel()
	a, err := g.review(ctx, token, verb, path)
	if err != nil {
		// Not cached: the next request asks again.
		return http.StatusInternalServerError, err.Error()
	}
	g.remember(key, a)
	return a.status, a.message
}

// review asks the API server who token is and whether they may verb path.
func (g *Guard) review(ctx context.Context, token, verb, path string) (answer, error) {
	now := g.now()
	tr, err := g.tokens.Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return answer{}, fmt.Errorf("token review: %w", err)
	}
	if !tr.Status.Authenticated {
		msg := "token not accepted"
		if tr.Status.Error != "" {
			msg += ": " + tr.Status.Error
		}
		return answer{status: http.StatusUnauthorized, message: msg, expires: now.Add(denyTTL)}, nil
	}
	u := tr.Status.User
	extra := make(map[string]authorizationv1.ExtraValue, len(u.Extra))
	for k, v := range u.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar, err := g.access.Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:                  u.Username,
		UID:                   u.UID,
		Groups:                u.Groups,
		Extra:                 extra,
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: verb},
	}}, metav1.CreateOptions{})
	if err != nil {
		return answer{}, fmt.Errorf("subject access review for %s: %w", u.Username, err)
	}
	if !sar.Status.Allowed || sar.Status.Denied {
		msg := fmt.Sprintf("%s may not %s %s", u.Username, verb, path)
		if sar.Status.Reason != "" {
			msg += ": " + sar.Status.Reason
		}
		return answer{status: http.StatusForbidden, message: msg, expires: now.Add(denyTTL)}, nil
	}
	return answer{status: http.StatusOK, message: u.Username, expires: now.Add(allowTTL)}, nil
}

func (g *Guard) cached(key [sha256.Size]byte) (answer, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a, ok := g.answers[key]
	if !ok {
		return answer{}, false
	}
	if !g.now().Before(a.expires) {
		delete(g.answers, key)
		return answer{}, false
	}
	return a, true
}

func (g *Guard) remember(key [sha256.Size]byte, a answer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.answers) >= maxCached {
		now := g.now()
		for k, old := range g.answers {
			if !now.Before(old.expires) {
				delete(g.answers, k)
			}
		}
		if len(g.answers) >= maxCached {
			// Full of live answers (a flood of tokens): start over rather
			// than grow; the cost is reviews asked again.
			clear(g.answers)
		}
	}
	g.answers[key] = a
}

// bearerToken is the token of an "Authorization: Bearer <token>" header,
// or "" when the header carries none.
func bearerToken(header string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
