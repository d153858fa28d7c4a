package translate

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// normAddress is the one spelling of a mapping's address that listeners
// are compared and bound by: "" for all addresses (unset, 0.0.0.0, ::),
// an IPv4-mapped IPv6 address as IPv4, IPv6 in its canonical form. An
// address that does not parse is returned as is (validation rejects it).
func normAddress(address string) string {
	if address == "" {
		return ""
	}
	a, err := netip.ParseAddr(address)
	if err != nil {
		return address
	}
	a = a.Unmap()
	if a.IsUnspecified() {
		return ""
	}
	return a.String()
}

// portRange is one parsed spec.listeners entry.
type portRange struct {
	first, last int32
	// selector is nil when the entry allows every namespace; an entry
	// that does not parse has first > last and allows nothing.
	selector labels.Selector
}

// parsePorts reads "N" or "N-M".
func parsePorts(s string) (first, last int32, err error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	a, errA := strconv.Atoi(lo)
	b, errB := strconv.Atoi(hi)
	if errA != nil || errB != nil || a < 1 || b > 65535 || a > b {
		return 0, 0, fmt.Errorf("ports %q is not a port N or a range N-M with 1 <= N <= M <= 65535", s)
	}
	return int32(a), int32(b), nil
}

// parseListeners reads spec.listeners; the error names the first bad
// entry, which then allows nothing (closed rather than open).
func parseListeners(specs []v1alpha1.ListenerSpec) ([]portRange, error) {
	var out []portRange
	var firstErr error
	for i, l := range specs {
		r := portRange{first: 1, last: 0}
		first, last, err := parsePorts(l.Ports)
		if err == nil && l.Namespaces != nil && l.Namespaces.Selector != nil {
			r.selector, err = metav1.LabelSelectorAsSelector(l.Namespaces.Selector)
			if err != nil {
				err = fmt.Errorf("namespaces.selector: %w", err)
			}
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("spec.listeners[%d]: %w", i, err)
			}
		} else {
			r.first, r.last = first, last
		}
		out = append(out, r)
	}
	return out, firstErr
}

// listenerDenied says why the HAProxy's spec.listeners do not let
// namespace use port, or "" when they do (or are not set).
func (t *translation) listenerDenied(namespace string, port int32) string {
	if len(t.hap.Spec.Listeners) == 0 {
		return ""
	}
	var nsLabels labels.Set
	if ns := t.idx.namespaces[namespace]; ns != nil {
		nsLabels = ns.Labels
	}
	for _, r := range t.listeners {
		if port < r.first || port > r.last {
			continue
		}
		if r.selector == nil || r.selector.Matches(nsLabels) {
			return ""
		}
	}
	return fmt.Sprintf("port %d: the listeners of HAProxy %s/%s do not allow namespace %s on this port",
		port, t.hap.Namespace, t.hap.Name, namespace)
}
