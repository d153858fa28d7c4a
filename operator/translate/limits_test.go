package translate

import (
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

func TestCheckLimitsNamesTheFieldAndTheReason(t *testing.T) {
	tests := map[string]struct {
		spec v1alpha1.TCPMappingSpec
		want string
	}{
		"every field in range is valid": {v1alpha1.TCPMappingSpec{MaxConnections: ptr.To(int32(1)), MaxConnectionsPerServer: ptr.To(int32(1000000)),
			QueueTimeoutMs: ptr.To(int64(1)), ConnectionRateLimit: &v1alpha1.ConnectionRateLimit{Connections: 1, PeriodMs: ptr.To(int64(100))},
			AllowedSourceRanges: []v1alpha1.SourceRange{"10.1.2.3/8", "::1/128"}, DeniedSourceRanges: []v1alpha1.SourceRange{"0.0.0.0/0"}, AccessLog: ptr.To(true)}, ""},
		"maxConnections 0 is out of range":         {v1alpha1.TCPMappingSpec{MaxConnections: ptr.To(int32(0))}, "spec.maxConnections 0 is not between 1 and 1000000"},
		"maxConnectionsPerServer over the bound":   {v1alpha1.TCPMappingSpec{MaxConnectionsPerServer: ptr.To(int32(1000001))}, "spec.maxConnectionsPerServer 1000001"},
		"a queue timeout needs a per-server limit": {v1alpha1.TCPMappingSpec{QueueTimeoutMs: ptr.To(int64(5))}, "spec.queueTimeoutMs needs spec.maxConnectionsPerServer"},
		"a rate of 0 connections":                  {v1alpha1.TCPMappingSpec{ConnectionRateLimit: &v1alpha1.ConnectionRateLimit{}}, "spec.connectionRateLimit.connections 0"},
		"a rate period of 99 ms":                   {v1alpha1.TCPMappingSpec{ConnectionRateLimit: &v1alpha1.ConnectionRateLimit{Connections: 1, PeriodMs: ptr.To(int64(99))}}, "spec.connectionRateLimit.periodMs 99"},
		"an empty allow list admits no one":        {v1alpha1.TCPMappingSpec{AllowedSourceRanges: []v1alpha1.SourceRange{}}, "spec.allowedSourceRanges is empty"},
		"a bare address is no CIDR":                {v1alpha1.TCPMappingSpec{AllowedSourceRanges: []v1alpha1.SourceRange{"10.0.0.1"}}, `spec.allowedSourceRanges[0] "10.0.0.1" is not a CIDR`},
		"a /129 is no IPv6 CIDR":                   {v1alpha1.TCPMappingSpec{DeniedSourceRanges: []v1alpha1.SourceRange{"::/0", "2001:db8::/129"}}, `spec.deniedSourceRanges[1] "2001:db8::/129"`},
		"a zone is no CIDR":                        {v1alpha1.TCPMappingSpec{DeniedSourceRanges: []v1alpha1.SourceRange{"fe80::1%eth0/64"}}, `spec.deniedSourceRanges[0]`},
		"65 ranges are too many":                   {v1alpha1.TCPMappingSpec{DeniedSourceRanges: make([]v1alpha1.SourceRange, 65)}, "spec.deniedSourceRanges has 65 entries, more than 64"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := checkLimits(&tc.spec)
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("checkLimits = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLimitsConflictNamesTheFirstSettingThatDiffers(t *testing.T) {
	cand := func(spec v1alpha1.TCPMappingSpec) *candidate { return &candidate{spec: &spec, key: "ns/m"} }
	tests := map[string]struct {
		winner, newer v1alpha1.TCPMappingSpec
		want          string
	}{
		"nothing set on either agrees": {},
		"the same ranges in another order and spelling agree": {
			v1alpha1.TCPMappingSpec{AllowedSourceRanges: []v1alpha1.SourceRange{"10.0.0.0/8", "192.168.1.1/24"}},
			v1alpha1.TCPMappingSpec{AllowedSourceRanges: []v1alpha1.SourceRange{"192.168.1.0/24", "10.9.9.9/8", "10.0.0.0/8"}}, ""},
		"a rate period of 1000 ms is the default": {
			v1alpha1.TCPMappingSpec{ConnectionRateLimit: &v1alpha1.ConnectionRateLimit{Connections: 5}},
			v1alpha1.TCPMappingSpec{ConnectionRateLimit: &v1alpha1.ConnectionRateLimit{Connections: 5, PeriodMs: ptr.To(int64(1000))}}, ""},
		"maxConnections set on one only": {v1alpha1.TCPMappingSpec{MaxConnections: ptr.To(int32(5))}, v1alpha1.TCPMappingSpec{},
			"port 1 has maxConnections 5 from TCPMapping ns/m, which is older; mappings that share traffic must agree, and this one has unset"},
		"a denied range more": {v1alpha1.TCPMappingSpec{}, v1alpha1.TCPMappingSpec{DeniedSourceRanges: []v1alpha1.SourceRange{"::1/128"}},
			"port 1 has deniedSourceRanges unset from TCPMapping ns/m, which is older; mappings that share traffic must agree, and this one has [::1/128]"},
		"access log on one only": {v1alpha1.TCPMappingSpec{AccessLog: ptr.To(true)}, v1alpha1.TCPMappingSpec{AccessLog: ptr.To(false)},
			"port 1 has accessLog true from TCPMapping ns/m, which is older; mappings that share traffic must agree, and this one has false"},
		"per-server limits are each mapping's own": {v1alpha1.TCPMappingSpec{MaxConnectionsPerServer: ptr.To(int32(1))}, v1alpha1.TCPMappingSpec{MaxConnectionsPerServer: ptr.To(int32(2))}, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := limitsConflict(cand(tc.winner), cand(tc.newer), "port 1"); got != tc.want {
				t.Errorf("limitsConflict =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
