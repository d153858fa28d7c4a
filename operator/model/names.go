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

// BackendName is the backend of the weight group for host on a listener;
// host "" is the listener's default group.
func BackendName(listener, host string) string {
	if host == "" {
		return Prefix + "-be-" + listener
	}
	// HAProxy names allow [A-Za-z0-9-_.:]; hosts never hold "_", so "_."
	// cannot collide with a real host.
	return Prefix + "-be-" + listener + "-" + strings.Replace(host, "*.", "_.", 1)
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
