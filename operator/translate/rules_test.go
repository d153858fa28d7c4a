package translate

import (
	"reflect"
	"testing"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
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

func TestSpread(t *testing.T) {
	member := func(name string, weight int32, endpoints int) *candidate {
		c := &candidate{m: &v1alpha1.TCPMapping{}, spec: &v1alpha1.TCPMappingSpec{}, result: &MappingResult{Backend: "tcpm-be-ns:" + name}}
		c.m.Namespace, c.m.Name = "ns", name
		if weight >= 0 {
			c.spec.Weight = &weight
		}
		for i := 0; i < endpoints; i++ {
			c.target.Endpoints = append(c.target.Endpoints, endpoint{IP: "10.0.0.1", Port: int32(1000 + i)})
		}
		return c
	}
	tests := map[string]struct {
		members []*candidate
		number  int64
		want    []model.MapEntry
	}{
		"a 1% canary with 3 endpoints beside a stable with 50 gets 1% of the slots": {
			members: []*candidate{member("stable", -1, 50), member("canary", 1, 3)},
			want:    []model.MapEntry{{Key: "0:9899", Value: "tcpm-be-ns:stable"}, {Key: "9900:9999", Value: "tcpm-be-ns:canary"}},
		},
		"three unweighted members split by largest remainder": {
			members: []*candidate{member("a", -1, 1), member("b", -1, 1), member("c", -1, 1)},
			want: []model.MapEntry{{Key: "0:3333", Value: "tcpm-be-ns:a"}, {Key: "3334:6666", Value: "tcpm-be-ns:b"},
				{Key: "6667:9999", Value: "tcpm-be-ns:c"}},
		},
		"weights under 100 are relative": {
			members: []*candidate{member("a", 30, 1), member("b", 10, 1)},
			want:    []model.MapEntry{{Key: "0:7499", Value: "tcpm-be-ns:a"}, {Key: "7500:9999", Value: "tcpm-be-ns:b"}},
		},
		"weight 0 gets no slot": {
			members: []*candidate{member("a", 0, 1), member("b", -1, 1)},
			want:    []model.MapEntry{{Key: "0:9999", Value: "tcpm-be-ns:b"}},
		},
		"a member without endpoints yields its share to the others": {
			members: []*candidate{member("a", 50, 0), member("b", 50, 2)},
			want:    []model.MapEntry{{Key: "0:9999", Value: "tcpm-be-ns:b"}},
		},
		"with no endpoints anywhere the shares stay": {
			members: []*candidate{member("a", 50, 0), member("b", 50, 0)},
			want:    []model.MapEntry{{Key: "0:4999", Value: "tcpm-be-ns:a"}, {Key: "5000:9999", Value: "tcpm-be-ns:b"}},
		},
		"a host's group number offsets its slots": {
			members: []*candidate{member("a", -1, 1)},
			number:  7,
			want:    []model.MapEntry{{Key: "70000:79999", Value: "tcpm-be-ns:a"}},
		},
		"every weight 0: no slot, connections are closed": {
			members: []*candidate{member("a", 0, 1)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := spread(&group{members: tc.members}, tc.number)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("spread = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPoolSizeGrowsOnlyWhenFull(t *testing.T) {
	for n, want := range map[int]int{0: 8, 1: 8, 8: 8, 9: 16, 100: 128, 128: 128, 129: 256} {
		if got := poolSize(n); got != want {
			t.Errorf("poolSize(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestGroupNumbersAreStableAndDistinct(t *testing.T) {
	groups := func(hosts ...string) []*group {
		var out []*group
		for _, h := range hosts {
			out = append(out, &group{host: h})
		}
		return out
	}
	before := groupNumbers(groups("", "a.example", "b.example", "*.c.example"))
	after := groupNumbers(groups("", "b.example", "*.c.example", "d.example"))
	if before[""] != 0 || after[""] != 0 {
		t.Errorf("the mappings without a host are not group 0: %v, %v", before, after)
	}
	for _, h := range []string{"b.example", "*.c.example"} {
		if before[h] != after[h] {
			t.Errorf("%s changed number when other hosts came and went: %d, then %d", h, before[h], after[h])
		}
	}
	seen := map[int64]string{}
	for h, n := range after {
		if o, dup := seen[n]; dup {
			t.Errorf("%s and %s share group number %d", h, o, n)
		}
		if n < 0 || n >= maxGroupNumber {
			t.Errorf("%s has group number %d, outside [0, %d)", h, n, maxGroupNumber)
		}
		seen[n] = h
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
