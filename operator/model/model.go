// Package model is the HAProxy configuration the operator wants, as plain
// data: listeners, SNI routes, backends, weighted servers and certificates.
// translate produces it and render turns it into haproxy.cfg. It holds no
// behaviour beyond naming, and imports no Kubernetes or HAProxy package.
package model

import "time"

// Config is everything one HAProxy instance needs.
type Config struct {
	// Name identifies the HAProxy resource (namespace/name) in comments.
	Name string `json:"name"`
	// HardStopAfter bounds how long an old worker keeps connections open
	// after a reload.
	HardStopAfter time.Duration `json:"hardStopAfter"`
	// MaxReloadsPerWorker stops an old worker once it has lived through
	// more reloads than this, so old workers cannot pile up.
	MaxReloadsPerWorker int32 `json:"maxReloadsPerWorker"`
	// HandshakeTimeout bounds the time a client holds a connection before
	// it is routed: the ClientHello on SNI ports, the TLS handshake where
	// HAProxy terminates, and the wait for the backend connection.
	HandshakeTimeout time.Duration `json:"handshakeTimeout"`
	// Stats is the stats page and Prometheus exporter; nil when disabled.
	Stats *Stats `json:"stats,omitempty"`
	// Resolvers is the DNS resolvers section; nil when no server needs it.
	Resolvers *Resolvers `json:"resolvers,omitempty"`
	// Frontends are sorted by name.
	Frontends []Frontend `json:"frontends,omitempty"`
	// Backends are sorted by name.
	Backends []Backend `json:"backends,omitempty"`
	// Certificates are the PEM files the frontends load, sorted by file.
	Certificates []Certificate `json:"certificates,omitempty"`
}

// Stats is the HTTP frontend serving the stats page and /metrics.
type Stats struct {
	Port int32  `json:"port"`
	Path string `json:"path"`
	// User and Password protect the stats page when User is set.
	User     string       `json:"user,omitempty"`
	Password PrivateBytes `json:"password,omitempty"`
}

// Resolvers is the DNS resolvers section used by servers resolved by name.
type Resolvers struct {
	Name string `json:"name"`
}

// Frontend is one listening socket and its routing.
type Frontend struct {
	Name string `json:"name"`
	Bind Bind   `json:"bind"`
	// InspectSNI waits for the TLS ClientHello so routes can match
	// req.ssl_sni without terminating TLS.
	InspectSNI bool `json:"inspectSNI,omitempty"`
	// Routes are tried in order; the first whose host matches wins.
	Routes []Route `json:"routes,omitempty"`
	// DefaultBackend takes what no route matched; empty closes it.
	DefaultBackend string `json:"defaultBackend,omitempty"`
	// Description names the mappings the frontend carries, for the
	// stats page.
	Description string `json:"description,omitempty"`
	// Sources are the objects whose configuration this frontend carries,
	// as Kind/namespace/name, sorted: an error HAProxy reports about the
	// frontend concerns them and no one else.
	Sources []string `json:"sources,omitempty"`
}

// Bind is where a frontend listens.
type Bind struct {
	// Address is an IP address; empty listens on every address (or on the
	// address the instance is told to use).
	Address string `json:"address,omitempty"`
	Port    int32  `json:"port,omitempty"`
	// Socket, when set, is a UNIX socket file name in the instance's
	// runtime directory, used instead of Address and Port.
	Socket string `json:"socket,omitempty"`
	// AcceptProxy reads a PROXY protocol header first (internal sockets).
	AcceptProxy bool `json:"acceptProxy,omitempty"`
	// TLS terminates TLS on this bind when set.
	TLS *TLSBind `json:"tls,omitempty"`
}

// TLSBind is the TLS termination of a bind.
type TLSBind struct {
	// Certificate is the PEM file name (certificate chain and key).
	Certificate string `json:"certificate"`
	// CAFile verifies client certificates when set.
	CAFile string `json:"caFile,omitempty"`
	// CRLFile lists revoked client certificates; only with CAFile.
	CRLFile string `json:"crlFile,omitempty"`
	// Verify is "optional" or "required" when CAFile is set.
	Verify       string   `json:"verify,omitempty"`
	ALPN         []string `json:"alpn,omitempty"`
	MinVersion   string   `json:"minVersion,omitempty"`
	MaxVersion   string   `json:"maxVersion,omitempty"`
	Ciphers      []string `json:"ciphers,omitempty"`
	CipherSuites []string `json:"cipherSuites,omitempty"`
	Curves       []string `json:"curves,omitempty"`
}

// SNI fetches a route matches on.
const (
	// FetchClientHelloSNI reads the SNI from the ClientHello (passthrough).
	FetchClientHelloSNI = "req.ssl_sni"
	// FetchTerminatedSNI reads the SNI of a TLS session HAProxy terminated.
	FetchTerminatedSNI = "ssl_fc_sni"
)

// Route sends connections whose SNI matches Host to Backend.
type Route struct {
	// Fetch is FetchClientHelloSNI or FetchTerminatedSNI.
	Fetch string `json:"fetch"`
	// Host is an exact name or a *. wildcard for exactly one label.
	Host    string `json:"host"`
	Backend string `json:"backend"`
}

// Backend is a set of weighted servers; one weight group of mappings.
type Backend struct {
	Name string `json:"name"`
	// IdleTimeout closes connections idle in both directions; zero means
	// none (HAProxy's longest timeout, about 24 days, in practice).
	IdleTimeout time.Duration `json:"idleTimeout,omitempty"`
	// ConnectTimeout bounds the connection to a server; zero keeps the
	// defaults section's.
	ConnectTimeout time.Duration `json:"connectTimeout,omitempty"`
	// Retries is HAProxy's retries after a failed connection; nil keeps
	// HAProxy's default (3).
	Retries *int32 `json:"retries,omitempty"`
	// Redispatch sends every retry to another server.
	Redispatch bool `json:"redispatch,omitempty"`
	// Balance is HAProxy's balance algorithm: BalanceRoundRobin (also
	// when empty), BalanceLeastConn or BalanceSource.
	Balance string `json:"balance,omitempty"`
	// HashType is "consistent" for hashing algorithms, so weights can
	// change at runtime and a server change moves few clients.
	HashType string `json:"hashType,omitempty"`
	// Check, when set, health-checks every server of the backend.
	Check *HealthCheck `json:"check,omitempty"`
	// Limits are the connection limits, source ranges and access log of
	// the backend's mappings; nil when none is set.
	Limits *Limits `json:"limits,omitempty"`
	// Description names the mappings the backend carries, for the stats
	// page.
	Description string `json:"description,omitempty"`
	// Members are the mappings whose servers this backend holds.
	Members []Member `json:"members,omitempty"`
	// Servers are every member's servers, in member order.
	Servers []Server `json:"servers,omitempty"`
	// Sources are the objects whose configuration this backend carries,
	// as Kind/namespace/name, sorted.
	Sources []string `json:"sources,omitempty"`
}

// Member is one mapping's part of a weight group.
type Member struct {
	// Mapping is namespace/name.
	Mapping string `json:"mapping"`
	// Share is the percentage of the group's connections this mapping gets
	// when all members have servers.
	Share float64 `json:"share"`
}

// Server is one upstream address, or a spare slot kept for endpoints that
// may appear so that they can be filled without a reload.
type Server struct {
	Name string `json:"name"`
	// Address is an IP address, a DNS name, or empty for a spare slot.
	Address string `json:"address,omitempty"`
	// Socket is a UNIX socket file name in the runtime directory, for
	// loops to internal frontends.
	Socket string `json:"socket,omitempty"`
	Port   int32  `json:"port,omitempty"`
	// Weight is HAProxy's server weight, 0 to 256.
	Weight int32 `json:"weight"`
	// Spare slots are in maintenance until an endpoint fills them.
	Spare bool `json:"spare,omitempty"`
	// TLS opens TLS towards the server; SNI is then sent when set.
	TLS bool   `json:"tls,omitempty"`
	SNI string `json:"sni,omitempty"`
	// Verify is "required" (the server's certificate is checked against
	// CAFile and VerifyHost) or "none"; only with TLS.
	Verify string `json:"verify,omitempty"`
	// CAFile is the CA bundle the server's certificate is checked
	// against: a file name in the certificate directory, or
	// SystemCAFile.
	CAFile string `json:"caFile,omitempty"`
	// VerifyHost is the name the server's certificate must be valid for.
	VerifyHost string `json:"verifyHost,omitempty"`
	// ClientCertificate is the PEM file (chain and key) presented to the
	// server when it asks for one.
	ClientCertificate string `json:"clientCertificate,omitempty"`
	// Resolve is set for servers whose Address is a DNS name.
	Resolve *Resolve `json:"resolve,omitempty"`
	// SendProxy sends a PROXY protocol v2 header (internal loops, and
	// mappings that ask for v2).
	SendProxy bool `json:"sendProxy,omitempty"`
	// SendProxyV1 sends a PROXY protocol v1 (text) header instead.
	SendProxyV1 bool `json:"sendProxyV1,omitempty"`
	// MaxConn bounds the server's concurrent connections; more wait in
	// the backend's queue. Zero is unbounded.
	MaxConn int32 `json:"maxConn,omitempty"`
}

// Resolve says how a DNS name is resolved.
type Resolve struct {
	// Resolvers names the resolvers section.
	Resolvers string `json:"resolvers"`
	// Family restricts the lookup to "ipv4" or "ipv6"; empty allows both.
	Family string `json:"family,omitempty"`
	// Prefer is "ipv4" or "ipv6".
	Prefer string `json:"prefer"`
}

// Balance algorithms.
const (
	BalanceRoundRobin = "roundrobin"
	BalanceLeastConn  = "leastconn"
	BalanceSource     = "source"
	// HashConsistent is the hash-type of hashing algorithms.
	HashConsistent = "consistent"
)

// Server verification settings.
const (
	VerifyRequired = "required"
	VerifyNone     = "none"
	// SystemCAFile is the system's CA bundle on the instance (Debian's
	// ca-certificates path, which Alpine shares). An absolute path:
	// HAProxy 2.6 resolves its @system-ca keyword under ca-base, where
	// it does not exist.
	SystemCAFile = "/etc/ssl/certs/ca-certificates.crt"
)

// Kinds of certificate files: the Data Plane API stores them differently.
const (
	// CertificateKindCert is a certificate chain with its private key.
	CertificateKindCert = "cert"
	// CertificateKindCA is a bundle of CA certificates, no key.
	CertificateKindCA = "ca"
	// CertificateKindCRL is a bundle of certificate revocation lists.
	CertificateKindCRL = "crl"
)

// Certificate is a PEM file the frontends load.
type Certificate struct {
	// File is the file name in the instance's certificate directory.
	File string `json:"file"`
	// Kind is CertificateKindCert, CertificateKindCA or CertificateKindCRL.
	Kind string `json:"kind"`
	// PEM is the file content; it holds a private key unless the file is
	// a CA bundle or a CRL.
	PEM PrivateBytes `json:"pem"`
	// Keep says the file an instance already stores keeps serving and PEM
	// is empty: its Secret now holds something unusable, and the last
	// good content is only on the instances.
	Keep bool `json:"keep,omitempty"`
	// Sources are the objects this file comes from, as
	// Kind/namespace/name, sorted.
	Sources []string `json:"sources,omitempty"`
}

// SourcesOf names the objects behind an HAProxy proxy (frontend or
// backend) name or a certificate file name, as HAProxy's messages quote
// them; nil when nothing in c has that name.
func (c Config) SourcesOf(proxyOrFile string) []string {
	for _, f := range c.Frontends {
		if f.Name == proxyOrFile {
			return f.Sources
		}
	}
	for _, b := range c.Backends {
		if b.Name == proxyOrFile {
			return b.Sources
		}
	}
	for _, f := range c.Certificates {
		if f.File == proxyOrFile {
			return f.Sources
		}
	}
	return nil
}

// HealthCheck is an active TCP connect check (over TLS for a server
// with TLS) of each server of a backend. Spare slots carry it too, so
// that a slot filled at runtime is checked; a disabled slot is never
// checked.
type HealthCheck struct {
	// Interval is the time between two checks of a server.
	Interval time.Duration `json:"interval"`
	// Rise is the passed checks in a row that mark a DOWN server UP.
	Rise int32 `json:"rise"`
	// Fall is the failed checks in a row that mark an UP server DOWN.
	Fall int32 `json:"fall"`
	// Send is written once the check's connection is up; empty sends
	// nothing.
	Send string `json:"send,omitempty"`
	// Expect must be read for the check to pass; empty passes once the
	// connection is up.
	Expect string `json:"expect,omitempty"`
	// ErrorLimit, when not zero, marks a server DOWN after that many
	// failed connections in a row from clients (observe layer4).
	ErrorLimit int32 `json:"errorLimit,omitempty"`
}
