package dataplane

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCredentialsMatchOnlyBothRight(t *testing.T) {
	wantUser, wantPass := sha256.Sum256([]byte("admin")), sha256.Sum256([]byte("s3cret"))
	for _, tc := range []struct {
		user, pass string
		want       bool
	}{
		{"admin", "s3cret", true},
		{"admin", "wrong", false},
		{"root", "s3cret", false},
		{"", "", false},
		{"admin", "s3cret-and-more", false},
		{"admi", "s3cret", false},
	} {
		if got := credentialsMatch(wantUser, wantPass, tc.user, tc.pass); got != tc.want {
			t.Errorf("user %q password %q: %v, want %v", tc.user, tc.pass, got, tc.want)
		}
	}
}

// BenchmarkCredentialCheck times the whole authentication step of a
// request for a wrong user, a wrong password (same lengths, and other
// lengths) and the right pair: the wrong cases take the same time, so
// timing tells an attacker neither which part was wrong nor how long
// the secrets are. Compare with
//
//	go test ./haproxy/dataplane -run '^$' -bench CredentialCheck -count 10 | benchstat -col /case -
func BenchmarkCredentialCheck(b *testing.B) {
	s := &Server{opt: Options{User: "operator-admin", Password: "correct-horse-battery-staple"}}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := s.authenticate(ok)
	for _, c := range []struct{ name, user, pass string }{
		{"case=wrong-user", "operator-admix", "correct-horse-battery-staple"},
		{"case=wrong-password", "operator-admin", "correct-horse-battery-stapla"},
		{"case=wrong-user-length", "x", "correct-horse-battery-staple"},
		{"case=wrong-password-length", "operator-admin", "x"},
		{"case=right", "operator-admin", "correct-horse-battery-staple"},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/v2/info", nil)
			req.SetBasicAuth(c.user, c.pass)
			for b.Loop() {
				h.ServeHTTP(discard{}, req)
			}
		})
	}
}

// BenchmarkCredentialCompare times only the comparison.
func BenchmarkCredentialCompare(b *testing.B) {
	wantUser, wantPass := sha256.Sum256([]byte("operator-admin")), sha256.Sum256([]byte("correct-horse-battery-staple"))
	for _, c := range []struct{ name, user, pass string }{
		{"case=wrong-user", "operator-admix", "correct-horse-battery-staple"},
		{"case=wrong-password", "operator-admin", "correct-horse-battery-stapla"},
		{"case=right", "operator-admin", "correct-horse-battery-staple"},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				credentialsMatch(wantUser, wantPass, c.user, c.pass)
			}
		})
	}
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}
