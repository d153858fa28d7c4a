package model

import (
	"fmt"
	"strconv"
	"strings"
)

// Prefix starts every HAProxy section and file name the operator creates,
// so it never touches what it did not create.
const Prefix = "tcpm"

// ListenerKey names a listening address and port, e.g. "2222" or
// "127.0.0.1-2222".
func ListenerKey(address string, port int32) string {
	p := strconv.Itoa(int(port))
	if address == "" {
		return p
	}
	return address + "-" + p
}

// FrontendName is the public frontend of a listener.
func FrontendName(listener string) string { return Prefix + "-fe-" + listener }

// BackendName is the backend of mapping namespace/name, named so the
// stats page shows whose it is. Names of Kubernetes objects hold no ":",
// so the name cannot collide with another mapping's.
func BackendName(namespace, name string) string {
	return Prefix + "-be-" + namespace + ":" + name
}

// SlotBackendName is the k-th backend of the pool of a TLS listener: the
// backend of whichever mapping holds the slot (its servers, named by
// mapping, say whose it is), or an empty one waiting for a new host.
func SlotBackendName(listener string, k int) string {
	return fmt.Sprintf("%s-be-%s-%d", Prefix, listener, k)
}

// WeightMapName is the map file of slot ranges of the frontend named
// proxy, and HostMapName its map file of hosts. Map file names keep to
// letters, digits, - and _ (every Data Plane API stores them as they
// are), so the "." and ":" of an address become "_"; an IPv4 address
// never yields "__", which an IPv6 address with four groups must, so two
// listeners cannot share a file.
func WeightMapName(proxy string) string { return mapFileBase(proxy) + "-weights.map" }

// HostMapName is the map file of hosts of the frontend named proxy.
func HostMapName(proxy string) string { return mapFileBase(proxy) + "-hosts.map" }

func mapFileBase(proxy string) string {
	return strings.NewReplacer(".", "_", ":", "_").Replace(proxy)
}

// TerminatorName is the internal frontend terminating TLS for the i-th
// TLSContext of a listener whose port mixes several TLS setups, and the
// loop backend that leads to it.
func TerminatorName(listener string, i int) string {
	return fmt.Sprintf("%s-tls-%s-%d", Prefix, listener, i)
}

// LoopBackendName is the backend that hands connections to a terminator.
func LoopBackendName(listener string, i int) string {
	return fmt.Sprintf("%s-to-tls-%s-%d", Prefix, listener, i)
}

// TerminatorSocket is the UNIX socket file of a terminator.
func TerminatorSocket(listener string, i int) string {
	return fmt.Sprintf("tls-%s-%d.sock", listener, i)
}

// ServerName names the i-th server (from 1) of a mapping, so the stats
// page shows whose server it is.
func ServerName(namespace, name string, i int) string {
	return fmt.Sprintf("%s:%s:%d", namespace, name, i)
}

// EndpointServerName names the server of a mapping's endpoint ip:port,
// so it keeps its name while other endpoints come and go.
func EndpointServerName(namespace, name, ip string, port int32) string {
	return fmt.Sprintf("%s:%s:%s:%d", namespace, name, ip, port)
}

// CertificateFile is the PEM file of a TLSContext's certificate.
func CertificateFile(namespace, name string) string {
	return namespace + "_" + name + ".pem"
}

// CAFile is the PEM file of a TLSContext's client CA bundle.
func CAFile(namespace, name string) string {
	return namespace + "_" + name + ".ca.pem"
}

// CRLFile is the PEM file of a TLSContext's client certificate revocation
// lists.
func CRLFile(namespace, name string) string {
	return namespace + "_" + name + ".crl.pem"
}

// UpstreamCAFile is the PEM file of the CA bundle from Secret
// namespace/name that upstream certificates are verified against; the
// .ca.pem ending tells the instances it holds no key, as for CAFile. The
// "upstream_" start cannot be a namespace followed by "_", so it never
// meets a TLSContext's files.
func UpstreamCAFile(namespace, name string) string {
	return "upstream_" + namespace + "_" + name + ".ca.pem"
}

// UpstreamCertificateFile is the PEM file (chain and key) from Secret
// namespace/name that HAProxy presents to upstreams.
func UpstreamCertificateFile(namespace, name string) string {
	return "upstream_" + namespace + "_" + name + ".pem"
}
