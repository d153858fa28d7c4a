package convert

import (
	"slices"
	"sort"
	"strings"

	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// maxConnectionsLimit is the CRD's bound on maxConnections.
const maxConnectionsLimit = 1000000

// circuitBreakers maps Ambassador's circuit_breakers (a list with one
// entry per priority) to maxConnections: the default priority's
// max_connections bounds the connections to the service, as
// maxConnections bounds the mapping's connections, per instance in both.
// The other fields are about HTTP requests and Envoy's priorities, and
// are left out with a note. nil when nothing maps.
func (c *converter) circuitBreakers(v any, what, where string) *int32 {
	list, ok := v.([]any)
	if !ok {
		c.note("%s: %s: circuit_breakers %v not carried over: it must be a list", where, what, v)
		return nil
	}
	var out *int32
	for _, e := range list {
		cb, _ := e.(map[string]any)
		if cb == nil {
			c.note("%s: %s: circuit_breakers entry %v not carried over: it must be a map", where, what, e)
			continue
		}
		if p := str(cb, "priority"); p != "" && p != "default" {
			c.note("%s: %s: circuit_breakers for priority %s not carried over: HAProxy has no request priorities", where, what, p)
			continue
		}
		if n, ok := number(cb["max_connections"]); ok {
			if n < 1 || n > maxConnectionsLimit {
				c.note("%s: %s: circuit_breakers max_connections %d not carried over: maxConnections must be between 1 and %d", where, what, n, maxConnectionsLimit)
			} else {
				out = ptr.To(int32(n))
				c.note("%s: %s: circuit_breakers max_connections %d becomes maxConnections %d (connections beyond it are refused, per HAProxy instance)", where, what, n, n)
			}
		}
		var extra []string
		for k := range cb {
			if k != "priority" && k != "max_connections" {
				extra = append(extra, k)
			}
		}
		sort.Strings(extra)
		if len(extra) > 0 {
			c.note("%s: %s: circuit_breakers %s not carried over: they bound HTTP requests and retries, which a TCP proxy does not see (maxConnectionsPerServer with queueTimeoutMs queues connections per server instead)", where, what, strings.Join(extra, ", "))
		}
	}
	return out
}

// applyModuleCircuitBreakers gives every converted mapping without its own
// circuit_breakers the ambassador Module's maxConnections.
func (c *converter) applyModuleCircuitBreakers() {
	if c.moduleMaxConns == nil {
		return
	}
	for _, o := range c.res.Objects {
		if m, isMapping := o.(*v1alpha1.TCPMapping); isMapping && !slices.Contains(c.ownBreakers, m) {
			m.Spec.MaxConnections = ptr.To(*c.moduleMaxConns)
		}
	}
}

// moduleCircuitBreakers reads the ambassador Module's circuit_breakers,
// which hold for every mapping that sets none.
func (c *converter) moduleCircuitBreakers(cfg map[string]any, where string) {
	v, present := cfg["circuit_breakers"]
	if !present {
		return
	}
	c.moduleMaxConns = c.circuitBreakers(v, "Module ambassador", where)
	if c.moduleMaxConns != nil {
		c.note("%s: Module ambassador: circuit_breakers max_connections applies to every converted TCPMapping without circuit_breakers of its own", where)
	}
}
