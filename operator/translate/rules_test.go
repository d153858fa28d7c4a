package translate

import (
	"testing"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

func TestParseService(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    serviceRef
		wantErr bool
	}{
		"a bare name defaults to port 80":          {in: "qotm", want: serviceRef{Name: "qotm", Port: 80}},
		"https:// defaults to port 443 and TLS":    {in: "https://qotm", want: serviceRef{Name: "qotm", Port: 443, TLS: true}},
		"http:// is cleartext":                     {in: "http://qotm:8080", want: serviceRef{Name: "qotm", Port: 8080}},
		"a namespace and port are kept":            {in: "qotm.other:9000", want: serviceRef{Name: "qotm.other", Port: 9000}},
		"an IPv4 address is a literal":             {in: "10.0.0.1:7000", want: serviceRef{Name: "10.0.0.1", Port: 7000, IP: true}},
		"a bracketed IPv6 address is a literal":    {in: "[2001:db8::1]:7000", want: serviceRef{Name: "2001:db8::1", Port: 7000, IP: true}},
		"a path is refused":                        {in: "qotm/path", wantErr: true},
		"another scheme is refused":                {in: "tcp://qotm", wantErr: true},
		"a port over 65535 is refused":             {in: "qotm:70000", wantErr: true},
		"port 0 is refused":                        {in: "qotm:0", wantErr: true},
		"a newline is refused":                     {in: "qotm\nbind :1", wantErr: true},
		"a space is refused":                       {in: "qotm weight 1", wantErr: true},
		"brackets around a name are refused":       {in: "[qotm]:80", wantErr: true},
		"uppercase is refused like the API server": {in: "QOTM", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseService(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseService(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("parseService(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestServerWeight(t *testing.T) {
	tests := map[string]struct {
		share float64
		n     int
		want  int32
	}{
		"all of a group on one server gets HAProxy's top weight": {100, 1, 256},
		"90% on one server":                        {90, 1, 230},
		"10% on one server":                        {10, 1, 26},
		"50% spread over two servers":              {50, 2, 64},
		"a tiny share keeps weight 1":              {1, 10, 1},
		"weight 0 receives nothing":                {0, 3, 0},
		"no servers, no weight":                    {50, 0, 0},
		"a third of the remainder over one server": {100.0 / 3, 1, 85},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := serverWeight(tc.share, tc.n); got != tc.want {
				t.Errorf("serverWeight(%v, %d) = %d, want %d", tc.share, tc.n, got, tc.want)
			}
		})
	}
}

func TestSlots(t *testing.T) {
	for n, want := range map[int]int{0: 4, 1: 4, 3: 4, 4: 4, 5: 8, 9: 16} {
		if got := slots(n); got != want {
			t.Errorf("slots(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestHostCovered(t *testing.T) {
	hosts := []v1alpha1.Hostname{"host1", "*.example.com"}
	tests := map[string]bool{
		"host1":             true,
		"host2":             false,
		"a.example.com":     true,
		"a.b.example.com":   false,
		"example.com":       false,
		"*.example.com":     true,
		"*.sub.example.com": false,
	}
	for host, want := range tests {
		if got := hostCovered(hosts, host); got != want {
			t.Errorf("hostCovered(%q) = %v, want %v", host, got, want)
		}
	}
}
