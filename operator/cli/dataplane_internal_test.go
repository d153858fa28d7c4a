package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestListenAddress(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "10.1.2.3:5555", want: "10.1.2.3:5555"},
		{in: ":5555", want: ":5555"},
		{in: "fd00::12:5555", want: "[fd00::12]:5555"},
		{in: "[fd00::12]:5555", want: "[fd00::12]:5555"},
		{in: "5555", err: "want host:port"},
		{in: "10.1.2.3:http", err: "port must be a number"},
		{in: "fd00::zz:5555", err: "not an IP address"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := listenAddress(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want an error saying %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestDataplaneRefusesToServeWithoutTLS: no certificate, no API.
func TestDataplaneRefusesToServeWithoutTLS(t *testing.T) {
	t.Setenv("DATAPLANE_USER", "u")
	t.Setenv("DATAPLANE_PASSWORD", "p")
	var out, errOut bytes.Buffer
	err := Dataplane(context.Background(), []string{"--listen=127.0.0.1:0"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "serves only HTTPS") {
		t.Fatalf("got %v, want a refusal naming HTTPS", err)
	}
}
