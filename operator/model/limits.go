package model

import "time"

// Limits are the admission rules and access log of a backend. HAProxy
// checks them once the backend is chosen, so on a port shared by SNI
// hosts each host's backend has its own.
type Limits struct {
	// MaxConn refuses a connection when the backend already carries this
	// many (with Group, the backends of Group together); zero is
	// unbounded.
	MaxConn int32 `json:"maxConn,omitempty"`
	// Group, when set, are the backends of the mappings that share
	// traffic with this one (this one among them): MaxConn bounds their
	// connections together.
	Group []string `json:"group,omitempty"`
	// QueueTimeout bounds the wait for a server below its MaxConn; zero
	// keeps HAProxy's (the connect timeout).
	QueueTimeout time.Duration `json:"queueTimeout,omitempty"`
	// Rate, when set, refuses a client address opening more connections
	// than it allows.
	Rate *RateLimit `json:"rate,omitempty"`
	// Allowed, when not empty, refuses client addresses outside these
	// CIDRs.
	Allowed []string `json:"allowed,omitempty"`
	// Denied refuses client addresses in these CIDRs, before Allowed.
	Denied []string `json:"denied,omitempty"`
	// AccessLog, when set, logs every connection as a JSON line.
	AccessLog *AccessLog `json:"accessLog,omitempty"`
}

// RateLimit is a number of new connections per client address in a
// sliding period, counted in a stick table of the backend.
type RateLimit struct {
	Connections int32         `json:"connections"`
	Period      time.Duration `json:"period"`
	// Table, when set, is the backend whose stick table counts the
	// clients of every mapping sharing traffic with this one; that
	// backend declares it. Empty: the backend's own.
	Table string `json:"table,omitempty"`
}

// AccessLog is what a backend's log lines say about their connections.
type AccessLog struct {
	// Mapping names the mappings of the backend (namespace/name, several
	// separated by spaces); the server's name tells which one served.
	Mapping string `json:"mapping"`
	// SNIFetch reads the SNI while the backend's rules run:
	// FetchClientHelloSNI, FetchTerminatedSNI or empty when there is none.
	SNIFetch string `json:"sniFetch,omitempty"`
}

// AccessLogs says whether any backend logs its connections: the
// frontends then get the JSON log format.
func (c Config) AccessLogs() bool {
	for _, b := range c.Backends {
		if b.Limits != nil && b.Limits.AccessLog != nil {
			return true
		}
	}
	return false
}
