package apply

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
)

// Stages at which HAProxy refuses a configuration.
const (
	// StageValidate: the API checked the configuration (haproxy -c) and
	// refused it; nothing changed.
	StageValidate = "validate"
	// StageReload: the configuration passed the check but HAProxy failed
	// to load it; the API went back to the previous one.
	StageReload = "reload"
)

// RefusedError says HAProxy refused the configuration: the instance still
// runs the previous one. Lines are HAProxy's messages, for the caller to
// find the objects responsible. Any other error from Apply (a timeout, a
// connection error) says nothing about the configuration.
type RefusedError struct {
	// Stage is StageValidate or StageReload.
	Stage string
	// Lines are HAProxy's messages, its ALERT lines when there are any.
	Lines []string
	// Err is the API's answer.
	Err error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("HAProxy refused the configuration at %s: %s", e.Stage, strings.Join(e.Lines, "; "))
}

// Unwrap gives the API's answer.
func (e *RefusedError) Unwrap() error { return e.Err }

// refusal turns an API answer into a *RefusedError when it is HAProxy
// refusing the configuration, and returns nil otherwise. Both APIs answer
// a failed forced reload with an error saying "reload failed" (ours 500,
// the official one 400) after rolling back; a check that failed is a 400
// or 422 without it.
func refusal(err error) *RefusedError {
	var rl *client.ReloadError
	if errors.As(err, &rl) {
		return &RefusedError{Stage: StageReload, Lines: messageLines(rl.Response), Err: err}
	}
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) {
		return nil
	}
	lower := strings.ToLower(apiErr.Message)
	switch {
	case strings.Contains(lower, "reload failed"):
		return &RefusedError{Stage: StageReload, Lines: messageLines(apiErr.Message), Err: err}
	case apiErr.Status == http.StatusBadRequest || apiErr.Status == http.StatusUnprocessableEntity:
		return &RefusedError{Stage: StageValidate, Lines: messageLines(apiErr.Message), Err: err}
	}
	return nil
}

// messageLines are the lines of an HAProxy message worth showing: the
// ALERT lines when there are any, else every non-empty line.
func messageLines(msg string) []string {
	var all, alerts []string
	// The official API joins HAProxy's lines as `; msg="..."`.
	msg = strings.ReplaceAll(msg, `; msg="`, "\n")
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSuffix(strings.TrimSpace(l), `"`)
		if l == "" {
			continue
		}
		all = append(all, l)
		if strings.Contains(l, "[ALERT]") {
			alerts = append(alerts, l)
		}
	}
	if len(alerts) > 0 {
		return alerts
	}
	return all
}
