package translate

import (
	"fmt"
	"regexp"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

// kind is how a mapping treats the bytes on its port.
type kind int

const (
	cleartext   kind = iota // no tls, no host: relay bytes
	passthrough             // host, no tls: route on the ClientHello's SNI
	terminated              // tls: HAProxy terminates TLS
)

// candidate is a mapping whose references resolved, waiting for conflict
// and weight checks. spec is the generation being tried: the current one,
// or the last accepted one while the current one is rejected.
type candidate struct {
	m        *v1alpha1.TCPMapping
	spec     *v1alpha1.TCPMappingSpec
	key      string
	listener string
	address  string
	kind     kind
	host     string
	ctx      *contextInfo
	target   target
	// upstream is the TLS towards an https:// service's servers.
	upstream *upstreamTLS
	ipv4     bool
	ipv6     bool
	idle     time.Duration
	// connect, retries and redispatch are the backend's connection
	// settings; zero, nil and false keep HAProxy's.
	connect    time.Duration
	retries    *int32
	redispatch bool
	// balance is the backend's algorithm, never empty.
	balance string
	// check is the backend's health check with defaults filled in; nil
	// checks nothing.
	check *model.HealthCheck
	// acceptProxy is the listener-wide PROXY protocol setting the mapping
	// asks for.
	acceptProxy bool
	result      *MappingResult
}

func (c *candidate) reject(reason, msg string) {
	c.result.Accepted = fail(reason, msg)
	c.result.Frontend, c.result.Backend = "", ""
}

// evaluate checks one generation (spec) of a mapping on its own: its
// settings and references.
func (t *translation) evaluate(m *v1alpha1.TCPMapping, spec *v1alpha1.TCPMappingSpec, generation int64) *candidate {
	c := &candidate{
		m:        m,
		spec:     spec,
		key:      key(m.Namespace, m.Name),
		address:  normAddress(spec.Address),
		listener: model.ListenerKey(normAddress(spec.Address), spec.Port),
		host:     spec.Host,
		result: &MappingResult{
			Namespace:  m.Namespace,
			Name:       m.Name,
			Generation: m.Generation,
			Accepted:   ok(v1alpha1.ReasonAccepted, "mapping is valid and has no conflict"),
		},
	}
	switch {
	case spec.TLS != "":
		c.kind = terminated
	case spec.Host != "":
		c.kind = passthrough
	default:
		c.kind = cleartext
	}
	if spec.IdleTimeoutMs != nil {
		c.idle = time.Duration(*spec.IdleTimeoutMs) * time.Millisecond
	}
	if spec.ConnectTimeoutMs != nil {
		c.connect = time.Duration(*spec.ConnectTimeoutMs) * time.Millisecond
	}
	c.retries = spec.Retries
	c.redispatch = boolOr(spec.Redispatch, false)
	c.acceptProxy = boolOr(spec.AcceptProxyProtocol, false)
	c.balance = spec.LoadBalancer
	if hc := spec.HealthCheck; hc != nil {
		c.check = &model.HealthCheck{Interval: 2 * time.Second, Rise: 2, Fall: 3, Send: hc.Send, Expect: hc.Expect}
		if hc.IntervalMs != nil {
			c.check.Interval = time.Duration(*hc.IntervalMs) * time.Millisecond
		}
		if hc.Rise != nil {
			c.check.Rise = *hc.Rise
		}
		if hc.Fall != nil {
			c.check.Fall = *hc.Fall
		}
		if hc.ErrorLimit != nil {
			c.check.ErrorLimit = *hc.ErrorLimit
		}
	}
	if c.balance == "" {
		c.balance = model.BalanceRoundRobin
	}

	c.ipv4 = boolOr(spec.EnableIPv4, boolOr(t.hap.Spec.EnableIPv4, true))
	c.ipv6 = boolOr(spec.EnableIPv6, boolOr(t.hap.Spec.EnableIPv6, false))

	// Settings first: these make the mapping itself invalid.
	if bad := checkMapping(m.Namespace, m.Name, spec); bad != "" {
		c.reject(ReasonInvalidSpec, bad)
		c.result.ResolvedRefs = fail(ReasonInvalidSpec, "references not resolved: the mapping is invalid")
		return c
	}
	if ex := t.excluded(RefTCPMapping+"/"+c.key, generation); ex != nil {
		c.reject(ex.Reason, ex.Message)
	} else if reserved := t.reservedPort(spec.Port); reserved != "" {
		c.reject(v1alpha1.ReasonConflict, fmt.Sprintf("port %d is %s", spec.Port, reserved))
	} else if denied := t.listenerDenied(m.Namespace, spec.Port); denied != "" {
		c.reject(v1alpha1.ReasonNotAllowedByListeners, denied)
	} else if !c.ipv4 && !c.ipv6 {
		c.reject(v1alpha1.ReasonInvalidIPFamilies,
			fmt.Sprintf("enableIPv4 and enableIPv6 are both false (defaults from HAProxy %s/%s): the service could not be resolved", t.hap.Namespace, t.hap.Name))
	}

	// References next.
	refs := ok(v1alpha1.ReasonResolved, "")
	if c.kind == terminated {
		ns, name := splitRef(spec.TLS, m.Namespace)
		denied := t.permit(contextCrossRef(m.Namespace, ns, name))
		var ci *contextInfo
		if denied == nil {
			t.reference(RefTLSContext, key(ns, name))
			ci = t.context(ns, name)
		}
		switch {
		case denied != nil:
			// The context is not even looked at: whether it exists and
			// what it holds are its namespace's business.
			refs = *denied
		case ci == nil:
			refs = fail(v1alpha1.ReasonTLSContextNotFound, fmt.Sprintf("TLSContext %s/%s not found", ns, name))
		case ci.rejected:
			// Only the context's name: its own status says why, and it
			// may belong to another team.
			refs = fail(v1alpha1.ReasonInvalidTLSContext, fmt.Sprintf("TLSContext %s/%s is not accepted (%s)", ns, name, ci.accepted.Reason))
		case !ci.resolved.Status && !ci.keepStored:
			refs = fail(ci.resolved.Reason, ci.resolved.Message)
		default:
			c.ctx = ci
			if c.host != "" && len(ci.spec.Hosts) > 0 && !hostCovered(ci.spec.Hosts, c.host) && c.result.Accepted.Status {
				c.reject(v1alpha1.ReasonHostNotInTLSContext,
					fmt.Sprintf("host %s is not among the hosts of TLSContext %s/%s", c.host, ns, name))
			}
		}
	}
	if refs.Status {
		tgt, cond := t.idx.resolveService(m.Namespace, spec.Service, func(ns, name string) *Condition {
			return t.permit(serviceCrossRef(m.Namespace, ns, name))
		})
		if tgt.Service != "" {
			t.reference(RefService, tgt.Service)
		}
		c.target = tgt
		refs = cond
		if refs.Status && tgt.TLS {
			ref, _ := parseService(spec.Service) // resolved above, so it parses
			up, cond := t.resolveUpstream(m.Namespace, spec, ref)
			if cond.Status {
				c.upstream = up
				v := up.verified
				c.result.UpstreamTLSVerified = &v
			} else {
				refs = cond
			}
		}
		if c.ctx != nil && refs.Status {
			refs.Message = fmt.Sprintf("TLSContext %s resolved; %s", c.ctx.key, refs.Message)
		}
	}
	c.result.ResolvedRefs = refs
	return c
}

// excluded returns the exclusion of one generation of an object, or nil.
func (t *translation) excluded(ref string, generation int64) *snapshot.Exclusion {
	for i := range t.idx.s.Exclusions {
		if ex := &t.idx.s.Exclusions[i]; ex.Ref == ref && ex.Generation == generation {
			return ex
		}
	}
	return nil
}

// reservedPort names what else uses port on every instance, or "".
func (t *translation) reservedPort(port int32) string {
	name := key(t.hap.Namespace, t.hap.Name)
	if st := t.result.Config.Stats; st != nil && st.Port == port {
		return fmt.Sprintf("the stats port of HAProxy %s", name)
	}
	dp := t.hap.Spec.DataPlaneAPI.Port
	if dp == 0 {
		dp = DefaultDataPlanePort
	}
	if port == dp {
		return fmt.Sprintf("the Data Plane API port of HAProxy %s", name)
	}
	return ""
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// globalConfig reads the HAProxy resource's own settings.
func (t *translation) globalConfig() model.Config {
	spec := t.hap.Spec
	cfg := model.Config{
		Name:                key(t.hap.Namespace, t.hap.Name),
		HardStopAfter:       DefaultHardStopAfter,
		HandshakeTimeout:    DefaultHandshakeTimeout,
		MaxReloadsPerWorker: DefaultMaxReloadsPerWorker,
	}
	t.result.HAProxy = ok(v1alpha1.ReasonAccepted, "settings are valid")
	if spec.HardStopAfter != nil {
		cfg.HardStopAfter = spec.HardStopAfter.Duration
	}
	// Out-of-range values (possible in YAML given to the render command)
	// keep the default rather than an unbounded or invalid timeout.
	if h := handshake(spec.Timeouts); h != nil && h.Duration >= time.Millisecond && h.Duration <= maxTimeoutMs*time.Millisecond {
		cfg.HandshakeTimeout = h.Duration
	}
	if n := spec.MaxReloadsPerWorker; n != nil && *n >= 1 {
		cfg.MaxReloadsPerWorker = *n
	}
	if err := selectorError(t.hap); err != nil {
		t.result.HAProxy = fail("InvalidSelector", fmt.Sprintf("HAProxy %s: %v", cfg.Name, err))
	}
	listeners, err := parseListeners(spec.Listeners)
	t.listeners = listeners
	if err != nil && t.result.HAProxy.Status {
		t.result.HAProxy = fail(ReasonInvalidSpec, fmt.Sprintf("HAProxy %s: %v; that entry allows no port", cfg.Name, err))
	}
	if !boolOr(spec.Stats.Enabled, true) {
		return cfg
	}
	st := &model.Stats{Port: spec.Stats.Port, Path: spec.Stats.Path}
	if st.Port == 0 {
		st.Port = DefaultStatsPort
	}
	if st.Path == "" {
		st.Path = DefaultStatsPath
	}
	if !statsPath.MatchString(st.Path) || st.Path == "/metrics" {
		t.result.HAProxy = fail(ReasonInvalidSpec,
			fmt.Sprintf("HAProxy %s: spec.stats.path %q must start with / and hold only letters, digits and ._~/- (not /metrics); using %s", cfg.Name, st.Path, DefaultStatsPath))
		st.Path = DefaultStatsPath
	}
	if spec.Stats.AuthSecret != "" {
		t.reference(RefSecret, key(t.hap.Namespace, spec.Stats.AuthSecret))
		s := t.idx.secrets[key(t.hap.Namespace, spec.Stats.AuthSecret)]
		if s == nil || len(s.Data["username"]) == 0 || len(s.Data["password"]) == 0 {
			// Without its credentials the page would be open: serve none.
			t.result.HAProxy = fail(v1alpha1.ReasonSecretNotFound,
				fmt.Sprintf("stats page disabled: Secret %s/%s with username and password not found", t.hap.Namespace, spec.Stats.AuthSecret))
			return cfg
		}
		if !safeCredential(s.Data["username"], true) || !safeCredential(s.Data["password"], false) {
			t.result.HAProxy = fail("InvalidSecret",
				fmt.Sprintf("stats page disabled: Secret %s/%s: username must be letters, digits and ._- and password printable ASCII without quotes or spaces", t.hap.Namespace, spec.Stats.AuthSecret))
			return cfg
		}
		st.User = string(s.Data["username"])
		st.Password = append(model.PrivateBytes(nil), s.Data["password"]...)
	}
	cfg.Stats = st
	return cfg
}

// statsPath is the CRD's rule for spec.stats.path.
var statsPath = regexp.MustCompile(`^/[A-Za-z0-9._~/-]{0,127}$`)

// safeCredential keeps credentials from carrying anything HAProxy's
// configuration syntax would interpret.
func safeCredential(b []byte, user bool) bool {
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		case !user && c > ' ' && c < 0x7f && c != '\'' && c != '"' && c != '\\' && c != '#' && c != '$':
		default:
			return false
		}
	}
	return true
}

// handshake is the handshake bound the spec sets, if any.
func handshake(t *v1alpha1.TimeoutsSpec) *metav1.Duration {
	if t == nil {
		return nil
	}
	return t.Handshake
}
