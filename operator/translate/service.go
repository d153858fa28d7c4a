package translate

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// serviceRef is a parsed TCPMapping service string.
type serviceRef struct {
	TLS  bool
	Name string // DNS name, Service name[.namespace] or IP address
	Port int32
	IP   bool
}

var serviceSyntax = regexp.MustCompile(`^((http|https)://)?([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*|\[[0-9a-fA-F:.]+\])(:([0-9]{1,5}))?$`)

// parseService reads [scheme://]name[.namespace][:port]. The API server
// already refuses malformed strings; this check keeps translation safe for
// input that did not come through it (the render command).
func parseService(s string) (serviceRef, error) {
	m := serviceSyntax.FindStringSubmatch(s)
	if m == nil {
		return serviceRef{}, fmt.Errorf("service %q is not [scheme://]name[.namespace][:port]", s)
	}
	ref := serviceRef{TLS: m[2] == "https", Name: m[3], Port: 80}
	if ref.TLS {
		ref.Port = 443
	}
	if m[8] != "" {
		p, _ := strconv.Atoi(m[8])
		if p < 1 || p > 65535 {
			return serviceRef{}, fmt.Errorf("service %q: port %d is not between 1 and 65535", s, p)
		}
		ref.Port = int32(p)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(ref.Name, "["), "]")
	if addr, err := netip.ParseAddr(host); err == nil {
		ref.IP = true
		ref.Name = addr.String()
	} else if strings.HasPrefix(ref.Name, "[") {
		return serviceRef{}, fmt.Errorf("service %q: %s is not an IPv6 address", s, host)
	}
	return ref, nil
}

// endpoint is one upstream address.
type endpoint struct {
	IP   string
	Port int32
}

// target is what a service string resolved to.
type target struct {
	// Endpoints are the ready endpoints of a Kubernetes Service.
	Endpoints []endpoint
	// Service is namespace/name when the target is a Kubernetes Service.
	Service string
	// DNSName is set when the target is resolved by DNS.
	DNSName string
	// IP is set for a literal address.
	IP   string
	Port int32
	TLS  bool
}

var clusterSuffix = regexp.MustCompile(`\.svc(\.cluster\.local)?$`)

// serviceName is the name of the Kubernetes Service a service string may
// resolve to (without its namespace), or "" when it names none: an
// address or a string that does not parse.
func serviceName(service string) string {
	ref, err := parseService(service)
	if err != nil || ref.IP {
		return ""
	}
	name, _, _ := strings.Cut(clusterSuffix.ReplaceAllString(ref.Name, ""), ".")
	return name
}

// resolveService finds what a mapping's service string points at: a
// Kubernetes Service (its ready endpoints), an address, or a DNS name.
// permit is asked about a Service before anything of it is looked at; a
// verdict it returns is the result.
func (idx *index) resolveService(mappingNamespace, service string, permit func(namespace, name string) *Condition) (target, Condition) {
	ref, err := parseService(service)
	if err != nil {
		return target{}, fail(v1alpha1.ReasonInvalidService, err.Error())
	}
	tgt := target{Port: ref.Port, TLS: ref.TLS}
	if ref.IP {
		tgt.IP = ref.Name
		return tgt, ok(v1alpha1.ReasonResolved, fmt.Sprintf("service is the address %s", ref.Name))
	}

	name := clusterSuffix.ReplaceAllString(ref.Name, "")
	inCluster := name != ref.Name
	parts := strings.Split(name, ".")
	var namespace string
	switch {
	case len(parts) == 1:
		namespace, name, inCluster = mappingNamespace, parts[0], true
	case len(parts) == 2:
		namespace, name = parts[1], parts[0]
		// name.namespace is a Service when that namespace exists;
		// otherwise it is a DNS name such as example.com.
		if _, known := idx.namespaces[namespace]; known {
			inCluster = true
		}
		if _, found := idx.services[key(namespace, name)]; found {
			inCluster = true
		}
	default:
		if inCluster {
			return target{}, fail(v1alpha1.ReasonInvalidService,
				fmt.Sprintf("service %q: a cluster name must be name.namespace.svc", service))
		}
	}

	if !inCluster {
		tgt.DNSName = ref.Name
		return tgt, ok(v1alpha1.ReasonResolved, fmt.Sprintf("service %s is resolved by DNS", ref.Name))
	}

	if denied := permit(namespace, name); denied != nil {
		return target{}, *denied
	}
	tgt.Service = key(namespace, name)
	svc := idx.services[tgt.Service]
	if svc == nil {
		// The target still names the Service, so its creation is noticed.
		return tgt, fail(v1alpha1.ReasonServiceNotFound, fmt.Sprintf("Service %s/%s not found", namespace, name))
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		if len(svc.Spec.ExternalName) > 253 || !objectName.MatchString(strings.TrimSuffix(svc.Spec.ExternalName, ".")) {
			return tgt, fail(v1alpha1.ReasonInvalidService,
				fmt.Sprintf("Service %s/%s: externalName %q is not a DNS name", namespace, name, svc.Spec.ExternalName))
		}
		tgt.DNSName = svc.Spec.ExternalName
		return tgt, ok(v1alpha1.ReasonResolved,
			fmt.Sprintf("Service %s/%s is the external name %s, resolved by DNS", namespace, name, svc.Spec.ExternalName))
	}

	var port *corev1.ServicePort
	var ports []string
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		ports = append(ports, strconv.Itoa(int(p.Port)))
		if p.Port == ref.Port && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) {
			port = p
		}
	}
	if port == nil {
		return target{}, fail(v1alpha1.ReasonServicePortNotFound,
			fmt.Sprintf("Service %s/%s has no TCP port %d (ports: %s)", namespace, name, ref.Port, strings.Join(ports, ", ")))
	}
	tgt.Endpoints = idx.readyEndpoints(svc, port)
	plural := "s"
	if len(tgt.Endpoints) == 1 {
		plural = ""
	}
	msg := fmt.Sprintf("Service %s/%s port %d has %d ready endpoint%s", namespace, name, ref.Port, len(tgt.Endpoints), plural)
	return tgt, ok(v1alpha1.ReasonResolved, msg)
}

// readyEndpoints lists the ready endpoints of one Service port, each with
// the target port the Service port maps to, sorted and without duplicates.
func (idx *index) readyEndpoints(svc *corev1.Service, port *corev1.ServicePort) []endpoint {
	family := ""
	if len(svc.Spec.IPFamilies) > 0 {
		family = string(svc.Spec.IPFamilies[0])
	}
	seen := map[endpoint]bool{}
	var out []endpoint
	for _, es := range idx.slices[key(svc.Namespace, svc.Name)] {
		if es.AddressType == discoveryv1.AddressTypeFQDN || (family != "" && string(es.AddressType) != family) {
			continue
		}
		var target *int32
		for _, p := range es.Ports {
			pname := ""
			if p.Name != nil {
				pname = *p.Name
			}
			if pname == port.Name && (p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP) && p.Port != nil {
				target = p.Port
			}
		}
		if target == nil {
			continue
		}
		for _, ep := range es.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if len(ep.Addresses) == 0 {
				continue
			}
			// EndpointSlices from files never met the API server's
			// validation: only an IP address may reach a server line.
			ip, err := netip.ParseAddr(ep.Addresses[0])
			if err != nil || ip.Zone() != "" {
				continue
			}
			e := endpoint{IP: ip.String(), Port: *target}
			if !seen[e] {
				seen[e] = true
				out = append(out, e)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].IP != out[j].IP {
			return out[i].IP < out[j].IP
		}
		return out[i].Port < out[j].Port
	})
	return out
}
