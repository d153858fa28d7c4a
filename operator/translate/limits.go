package translate

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
)

// Limit bounds, as the CRD sets them.
const (
	maxConnLimit      = 1000000
	minRatePeriodMs   = 100
	maxRatePeriodMs   = 86400000
	maxSourceRanges   = 64
	defaultRatePeriod = time.Second
	maxDescribed      = 20
)

// checkLimits validates the limits, source ranges and access log of a
// spec, as the CRD does, for specs that did not pass through it.
func checkLimits(spec *v1alpha1.TCPMappingSpec) string {
	for field, v := range map[string]*int32{"maxConnections": spec.MaxConnections, "maxConnectionsPerServer": spec.MaxConnectionsPerServer} {
		if v != nil && (*v < 1 || *v > maxConnLimit) {
			return fmt.Sprintf("spec.%s %d is not between 1 and %d", field, *v, maxConnLimit)
		}
	}
	if q := spec.QueueTimeoutMs; q != nil {
		if *q < 1 || *q > maxTimeoutMs {
			return fmt.Sprintf("spec.queueTimeoutMs %d is not between 1 and %d", *q, maxTimeoutMs)
		}
		if spec.MaxConnectionsPerServer == nil {
			return "spec.queueTimeoutMs needs spec.maxConnectionsPerServer: connections queue only for full servers"
		}
	}
	if r := spec.ConnectionRateLimit; r != nil {
		if r.Connections < 1 || r.Connections > maxConnLimit {
			return fmt.Sprintf("spec.connectionRateLimit.connections %d is not between 1 and %d", r.Connections, maxConnLimit)
		}
		if r.PeriodMs != nil && (*r.PeriodMs < minRatePeriodMs || *r.PeriodMs > maxRatePeriodMs) {
			return fmt.Sprintf("spec.connectionRateLimit.periodMs %d is not between %d and %d", *r.PeriodMs, minRatePeriodMs, maxRatePeriodMs)
		}
	}
	if spec.AllowedSourceRanges != nil && len(spec.AllowedSourceRanges) == 0 {
		return "spec.allowedSourceRanges is empty: it would refuse every client; leave it out to allow all"
	}
	for field, ranges := range map[string][]v1alpha1.SourceRange{"allowedSourceRanges": spec.AllowedSourceRanges, "deniedSourceRanges": spec.DeniedSourceRanges} {
		if len(ranges) > maxSourceRanges {
			return fmt.Sprintf("spec.%s has %d entries, more than %d", field, len(ranges), maxSourceRanges)
		}
		for i, r := range ranges {
			if _, err := netip.ParsePrefix(string(r)); err != nil {
				return fmt.Sprintf("spec.%s[%d] %q is not a CIDR such as 10.0.0.0/8 or 2001:db8::/32", field, i, r)
			}
		}
	}
	return ""
}

// prefixes normalises CIDRs (host bits cleared), sorted and without
// duplicates, so lists that mean the same render and compare the same;
// checkLimits has already parsed them.
func prefixes(ranges []v1alpha1.SourceRange) []string {
	var out []string
	for _, r := range ranges {
		p, err := netip.ParsePrefix(string(r))
		if err != nil {
			continue
		}
		out = append(out, p.Masked().String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// limitsOf is the backend-level part of a candidate's limits, without
// the access log's mapping names (which belong to the group); nil when
// the spec sets none.
func limitsOf(c *candidate) *model.Limits {
	spec := c.spec
	l := model.Limits{
		Allowed: prefixes(spec.AllowedSourceRanges),
		Denied:  prefixes(spec.DeniedSourceRanges),
	}
	if spec.MaxConnections != nil {
		l.MaxConn = *spec.MaxConnections
	}
	if spec.QueueTimeoutMs != nil {
		l.QueueTimeout = time.Duration(*spec.QueueTimeoutMs) * time.Millisecond
	}
	if r := spec.ConnectionRateLimit; r != nil {
		l.Rate = &model.RateLimit{Connections: r.Connections, Period: defaultRatePeriod}
		if r.PeriodMs != nil {
			l.Rate.Period = time.Duration(*r.PeriodMs) * time.Millisecond
		}
	}
	if boolOr(spec.AccessLog, false) {
		l.AccessLog = &model.AccessLog{}
		switch c.kind {
		case passthrough:
			l.AccessLog.SNIFetch = model.FetchClientHelloSNI
		case terminated:
			l.AccessLog.SNIFetch = model.FetchTerminatedSNI
		}
	}
	if l.MaxConn == 0 && l.QueueTimeout == 0 && l.Rate == nil && l.Allowed == nil && l.Denied == nil && l.AccessLog == nil {
		return nil
	}
	return &l
}

// groupLimits are the limits of a group's backend: its oldest member's,
// which the others agree with (limitsConflict), and an access log that
// names every member.
func groupLimits(g *group) *model.Limits {
	l := limitsOf(g.first())
	if l != nil && l.AccessLog != nil {
		names := make([]string, 0, len(g.members))
		for _, c := range g.members {
			names = append(names, c.key)
		}
		l.AccessLog.Mapping = strings.Join(names, " ")
	}
	return l
}

// serverMaxConn is the per-server connection bound of a candidate's
// servers; zero is unbounded.
func serverMaxConn(c *candidate) int32 {
	if c.spec.MaxConnectionsPerServer == nil {
		return 0
	}
	return *c.spec.MaxConnectionsPerServer
}

// limitsConflict: mappings sharing a backend must agree on its limits,
// source ranges and access log, as on its other settings; "" when they
// do, else a sentence naming the first setting that differs.
func limitsConflict(winner, c *candidate, where string) string {
	a, b := limitSettings(winner), limitSettings(c)
	for i := range a {
		if a[i].value != b[i].value {
			return fmt.Sprintf("%s has %s %s from TCPMapping %s, which is older; mappings that share traffic must agree, and this one has %s",
				where, a[i].field, a[i].value, winner.key, b[i].value)
		}
	}
	return ""
}

// setting is one backend-level setting of a mapping, in the words of
// the spec, with its default filled in.
type setting struct{ field, value string }

// limitSettings lists the backend-level limits of a candidate, always
// the same fields in the same order.
func limitSettings(c *candidate) []setting {
	l := limitsOf(c)
	if l == nil {
		l = &model.Limits{}
	}
	maxConn, rate := "unset", "unset"
	if l.MaxConn != 0 {
		maxConn = fmt.Sprint(l.MaxConn)
	}
	if l.Rate != nil {
		rate = fmt.Sprintf("%d per %d ms", l.Rate.Connections, l.Rate.Period.Milliseconds())
	}
	list := func(ranges []string) string {
		if ranges == nil {
			return "unset"
		}
		return "[" + strings.Join(ranges, ", ") + "]"
	}
	return []setting{
		{"maxConnections", maxConn},
		{"queueTimeoutMs", msString(l.QueueTimeout)},
		{"connectionRateLimit", rate},
		{"allowedSourceRanges", list(l.Allowed)},
		{"deniedSourceRanges", list(l.Denied)},
		{"accessLog", fmt.Sprint(l.AccessLog != nil)},
	}
}

// describeProxies sets each frontend's and backend's description to the
// TCPMappings it carries, so the stats page traces every proxy to them.
func describeProxies(cfg *model.Config) {
	for _, f := range cfg.Frontends {
		if f.Pick != nil && f.Pick.HostMap != "" {
			// Its hosts, and so its mappings, come and go at runtime;
			// a description would need a reload to follow.
			continue
		}
		f.Description = mappingsIn(f.Sources)
	}
	for _, b := range cfg.Backends {
		if b.Pool {
			// Which mapping holds a slot changes at runtime; its
			// servers' names say whose they are.
			continue
		}
		// Only a translation's own backends are described, before its
		// result shares them with the next one's.
		b.Description = mappingsIn(b.Sources)
	}
}

// mappingsIn lists the TCPMappings among sources (Kind/namespace/name),
// at most maxDescribed of them so the line stays short.
func mappingsIn(sources []string) string {
	var names []string
	for _, s := range sources {
		if n, ok := strings.CutPrefix(s, RefTCPMapping+"/"); ok {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return ""
	}
	more := ""
	if len(names) > maxDescribed {
		more = fmt.Sprintf(" and %d more", len(names)-maxDescribed)
		names = names[:maxDescribed]
	}
	return "TCPMapping " + strings.Join(names, ", ") + more
}

// shareLimits makes the limits of a weight group's backends (one per
// mapping, named names, in member order) hold for the group together, as
// the mappings agreed: their connections count together against
// maxConnections, and a client's connections to any of them against the
// rate limit, in the first one's stick table.
func shareLimits(backends []*model.Backend, names []string) {
	if len(names) < 2 {
		return
	}
	for i := range backends {
		l := backends[i].Limits
		if l == nil {
			continue
		}
		if l.MaxConn != 0 {
			l.Group = names
		}
		if l.Rate != nil {
			l.Rate.Table = names[0]
		}
	}
}
