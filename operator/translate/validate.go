package translate

import (
	"fmt"
	"net/netip"
	"regexp"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
)

// ReasonInvalidSpec is the API's reason for a field the API server would
// have refused (input that bypassed it, e.g. the render command's YAML).
const ReasonInvalidSpec = v1alpha1.ReasonInvalidSpec

// The API server's rules for the same fields (see api/v1alpha1 markers).
var (
	// objectName is a DNS subdomain, the rule for namespace and object
	// names; it also keeps server names and certificate file names clean.
	objectName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	hostname   = regexp.MustCompile(`^([*][.])?[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	refName    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)?$`)
	alpnName   = regexp.MustCompile(`^[A-Za-z0-9._/-]{1,64}$`)
	tlsName    = regexp.MustCompile(`^[A-Za-z0-9_+-]{1,64}$`)
)

// maxTimeoutMs is HAProxy's largest timeout, about 24.8 days.
const maxTimeoutMs = 2147483647

// maxRetries bounds retries as the CRD does.
const maxRetries = 100

// Health check bounds, as the CRD sets them: intervals from 10 ms to a
// day, rise and fall up to 100.
const (
	minCheckIntervalMs = 10
	maxCheckIntervalMs = 86400000
	maxCheckCount      = 100
	maxCheckText       = 256
)

// checkText is the CRD's pattern for healthCheck send and expect: text
// that goes into haproxy.cfg inside double quotes, so no quote,
// backslash or $ (environment expansion).
var checkText = regexp.MustCompile(`^[ !#%-\[\]-~\t\r\n]*$`)

// maxTLSNames bounds cipherSuites and ecdhCurves as the CRD does.
const maxTLSNames = 64

// checkMeta refuses a namespace or name that is not a DNS subdomain.
func checkMeta(namespace, name string) string {
	switch {
	case len(namespace) > 63 || !objectName.MatchString(namespace):
		return fmt.Sprintf("metadata.namespace %q is not a DNS label", namespace)
	case len(name) > 253 || !objectName.MatchString(name):
		return fmt.Sprintf("metadata.name %q is not a DNS subdomain", name)
	}
	return ""
}

// checkMapping refuses the TCPMapping fields that reach haproxy.cfg and do
// not follow the CRD's rules. The service string is checked where it is
// parsed (resolveService).
func checkMapping(namespace, name string, spec *v1alpha1.TCPMappingSpec) string {
	if msg := checkMeta(namespace, name); msg != "" {
		return msg
	}
	if spec.Port < 1 || spec.Port > 65535 {
		return fmt.Sprintf("spec.port %d is not between 1 and 65535", spec.Port)
	}
	if spec.Address != "" {
		a, err := netip.ParseAddr(spec.Address)
		if err != nil || a.Zone() != "" {
			return fmt.Sprintf("spec.address %q is not an IPv4 or IPv6 address", spec.Address)
		}
	}
	if spec.Host != "" && (len(spec.Host) > 253 || !hostname.MatchString(spec.Host)) {
		return fmt.Sprintf("spec.host %q is not a lowercase DNS name, optionally starting with *.", spec.Host)
	}
	if spec.TLS != "" && (len(spec.TLS) > 253 || !refName.MatchString(spec.TLS)) {
		return fmt.Sprintf("spec.tls %q is not name or name.namespace", spec.TLS)
	}
	if spec.Weight != nil && (*spec.Weight < 0 || *spec.Weight > 100) {
		return fmt.Sprintf("spec.weight %d is not between 0 and 100", *spec.Weight)
	}
	if spec.IdleTimeoutMs != nil && (*spec.IdleTimeoutMs < 1 || *spec.IdleTimeoutMs > maxTimeoutMs) {
		return fmt.Sprintf("spec.idleTimeoutMs %d is not between 1 and %d", *spec.IdleTimeoutMs, maxTimeoutMs)
	}
	if spec.ConnectTimeoutMs != nil && (*spec.ConnectTimeoutMs < 1 || *spec.ConnectTimeoutMs > maxTimeoutMs) {
		return fmt.Sprintf("spec.connectTimeoutMs %d is not between 1 and %d", *spec.ConnectTimeoutMs, maxTimeoutMs)
	}
	if spec.Retries != nil && (*spec.Retries < 0 || *spec.Retries > maxRetries) {
		return fmt.Sprintf("spec.retries %d is not between 0 and %d", *spec.Retries, maxRetries)
	}
	if msg := checkLimits(spec); msg != "" {
		return msg
	}
	if hc := spec.HealthCheck; hc != nil {
		if hc.IntervalMs != nil && (*hc.IntervalMs < minCheckIntervalMs || *hc.IntervalMs > maxCheckIntervalMs) {
			return fmt.Sprintf("spec.healthCheck.intervalMs %d is not between %d and %d", *hc.IntervalMs, minCheckIntervalMs, maxCheckIntervalMs)
		}
		if hc.Rise != nil && (*hc.Rise < 1 || *hc.Rise > maxCheckCount) {
			return fmt.Sprintf("spec.healthCheck.rise %d is not between 1 and %d", *hc.Rise, maxCheckCount)
		}
		if hc.Fall != nil && (*hc.Fall < 1 || *hc.Fall > maxCheckCount) {
			return fmt.Sprintf("spec.healthCheck.fall %d is not between 1 and %d", *hc.Fall, maxCheckCount)
		}
		if hc.ErrorLimit != nil && (*hc.ErrorLimit < 1 || *hc.ErrorLimit > maxCheckCount) {
			return fmt.Sprintf("spec.healthCheck.errorLimit %d is not between 1 and %d", *hc.ErrorLimit, maxCheckCount)
		}
		for field, text := range map[string]string{"send": hc.Send, "expect": hc.Expect} {
			if len(text) > maxCheckText || !checkText.MatchString(text) {
				return fmt.Sprintf("spec.healthCheck.%s %q is not up to %d characters of printable ASCII, tab, CR or LF without \", \\ or $", field, text, maxCheckText)
			}
		}
	}
	switch spec.SendProxyProtocol {
	case "", "v1", "v2":
	default:
		return fmt.Sprintf("spec.sendProxyProtocol %q is not v1 or v2", spec.SendProxyProtocol)
	}
	switch spec.LoadBalancer {
	case "", model.BalanceRoundRobin, model.BalanceLeastConn, model.BalanceSource:
	default:
		return fmt.Sprintf("spec.loadBalancer %q is not roundrobin, leastconn or source", spec.LoadBalancer)
	}
	// A service that does not parse is reported where it is resolved.
	if ref, err := parseService(spec.Service); err == nil {
		if msg := checkUpstreamTLS(spec, ref); msg != "" {
			return msg
		}
		if msg := checkUpstreamName(spec, ref); msg != "" {
			return msg
		}
	}
	return ""
}

// checkTLSContext refuses the TLSContext fields that reach haproxy.cfg or
// name files and do not follow the CRD's rules.
func checkTLSContext(namespace, name string, spec *v1alpha1.TLSContextSpec) string {
	if msg := checkMeta(namespace, name); msg != "" {
		return msg
	}
	if len(spec.Secret) > 253 || !refName.MatchString(spec.Secret) {
		return fmt.Sprintf("spec.secret %q is not name or name.namespace", spec.Secret)
	}
	if spec.CASecret != "" && (len(spec.CASecret) > 253 || !refName.MatchString(spec.CASecret)) {
		return fmt.Sprintf("spec.caSecret %q is not name or name.namespace", spec.CASecret)
	}
	if spec.CertRequired != nil && *spec.CertRequired && spec.CASecret == "" {
		return "spec.certRequired needs spec.caSecret: client certificates are verified against it"
	}
	for _, v := range []v1alpha1.TLSVersion{spec.MinTLSVersion, spec.MaxTLSVersion} {
		if _, known := tlsVersions[v]; v != "" && !known {
			return fmt.Sprintf("TLS version %q is not one of v1.0, v1.1, v1.2, v1.3", v)
		}
	}
	if spec.MinTLSVersion != "" && spec.MaxTLSVersion != "" && spec.MinTLSVersion > spec.MaxTLSVersion {
		return "spec.minTLSVersion is above spec.maxTLSVersion"
	}
	if len(spec.ALPNProtocols) > 16 {
		return fmt.Sprintf("spec.alpnProtocols has %d entries, at most 16", len(spec.ALPNProtocols))
	}
	for i, p := range spec.ALPNProtocols {
		if !alpnName.MatchString(p) {
			return fmt.Sprintf("spec.alpnProtocols[%d] %q is not a protocol name (letters, digits and ._/-, at most 64)", i, p)
		}
	}
	for _, list := range []struct {
		field string
		names []string
	}{{"spec.cipherSuites", spec.CipherSuites}, {"spec.ecdhCurves", spec.ECDHCurves}} {
		field, names := list.field, list.names
		if len(names) > maxTLSNames {
			return fmt.Sprintf("%s has %d entries, at most %d", field, len(names), maxTLSNames)
		}
		for i, n := range names {
			if !tlsName.MatchString(n) {
				return fmt.Sprintf("%s[%d] %q is not an OpenSSL name (letters, digits and _+-, at most 64)", field, i, n)
			}
		}
	}
	return ""
}
