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
	Frontends []*Frontend `json:"frontends,omitempty"`
	// Backends are sorted by name.
	Backends []*Backend `json:"backends,omitempty"`
	// Certificates are the PEM files the frontends load, sorted by file.
	Certificates []Certificate `json:"certificates,omitempty"`
	// Maps are the map files the frontends route by, sorted by name.
	// Their entries change at runtime, so routes and weights change
	// without a reload.
	Maps []Map `json:"maps,omitempty"`
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
	// InspectSNI waits for the TLS ClientHello so Pick can read
	// req.ssl_sni without terminating TLS.
	InspectSNI bool `json:"inspectSNI,omitempty"`
	// Pick, when set, routes every connection through maps (host, then
	// weighted pick); otherwise DefaultBackend takes every connection.
	Pick *Pick `json:"pick,omitempty"`
	// DefaultBackend takes every connection of a frontend without Pick.
	DefaultBackend string `json:"defaultBackend,omitempty"`
	// Listen makes the frontend and its DefaultBackend, which then has
	// the frontend's name, one HAProxy listen section: one proxy instead
	// of two for a port that carries a single mapping, which in HAProxy
	// 2.6 saves about 8 KiB per port and its share of every reload.
	Listen bool `json:"listen,omitempty"`
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

// SNI fetches a host map is keyed by.
const (
	// FetchClientHelloSNI reads the SNI from the ClientHello (passthrough).
	FetchClientHelloSNI = "req.ssl_sni"
	// FetchTerminatedSNI reads the SNI of a TLS session HAProxy terminated.
	FetchTerminatedSNI = "ssl_fc_sni"
)

// PickRange is the number of slots a group's connections are spread
// over: a connection draws a slot at random, and the weight map gives
// each member of the group a range of slots as wide as its share, so a
// share is exact to 1/PickRange whatever the members' endpoint counts.
const PickRange = 10000

// Pick routes a connection in two steps, each a lookup in a map file
// whose entries change at runtime:
//   - its group: HostMap maps the lowercased SNI (Fetch) to a group
//     number, first as it is, then with its first label replaced by "*"
//     (a *. wildcard host); no match, or no Fetch, is group 0 (the
//     mappings without a host);
//   - its backend: the connection draws a slot in [0, PickRange) and
//     WeightMap maps group*PickRange+slot, by ranges "lo:hi", to the
//     backend of one mapping of the group.
//
// A key no entry covers leaves the connection without a backend, and
// HAProxy closes it.
type Pick struct {
	// Fetch is FetchClientHelloSNI or FetchTerminatedSNI; empty when the
	// frontend does not route by host.
	Fetch string `json:"fetch,omitempty"`
	// HostMap is the map file of hosts; only with Fetch.
	HostMap string `json:"hostMap,omitempty"`
	// WeightMap is the map file of slot ranges.
	WeightMap string `json:"weightMap"`
}

// Map is a map file: one "key value" line per entry.
type Map struct {
	// Name is the file name in the instance's map directory: letters,
	// digits, - and _, then ".map", which every Data Plane API keeps as
	// it is.
	Name string `json:"name"`
	// Entries are in file order; keys are unique.
	Entries []MapEntry `json:"entries,omitempty"`
}

// Content is the map file: one "key value" line per entry, in order.
func (m Map) Content() []byte {
	n := 0
	for _, e := range m.Entries {
		n += len(e.Key) + len(e.Value) + 2
	}
	b := make([]byte, 0, n)
	for _, e := range m.Entries {
		b = append(append(append(append(b, e.Key...), ' '), e.Value...), '\n')
	}
	return b
}

// MapEntry is one line of a map file.
type MapEntry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Backend is a set of servers: one mapping's endpoints, or the loop to a
// terminator.
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
	// page; empty on a Pool slot.
	Description string `json:"description,omitempty"`
	// Members are the mappings whose servers this backend holds (one),
	// with their share of their group.
	Members []Member `json:"members,omitempty"`
	// Servers are the members' servers, balanced equally.
	Servers []Server `json:"servers,omitempty"`
	// Pool marks a slot of a TLS port's pool of backends: which mapping
	// holds it changes at runtime, so none of its lines may name one.
	Pool bool `json:"pool,omitempty"`
	// Template, when set, is how a Dynamic server of this backend is
	// made (every field but Name, Address and Port): servers come and go
	// at runtime as endpoints do, so it is the backend's structure, not
	// the servers.
	Template *Server `json:"template,omitempty"`
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

// Server is one upstream address.
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
	// Dynamic servers are endpoints of a Kubernetes Service: added and
	// removed at runtime (HAProxy's add/del server) as the backend's
	// Template says.
	Dynamic bool `json:"dynamic,omitempty"`
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
	for _, m := range c.Maps {
		if m.Name == proxyOrFile {
			return c.mapSources(m.Name)
		}
	}
	return nil
}

// HealthCheck is an active TCP connect check (over TLS for a server
// with TLS) of each server of a backend, those added at runtime too.
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

// mapSources are the objects of the frontends that load map file name.
func (c Config) mapSources(name string) []string {
	var out []string
	for _, f := range c.Frontends {
		if p := f.Pick; p != nil && (p.HostMap == name || p.WeightMap == name) {
			out = append(out, f.Sources...)
		}
	}
	return out
}
