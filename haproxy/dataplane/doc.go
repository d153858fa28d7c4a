// Package dataplane is the HTTP server that runs beside HAProxy in each
// instance and serves the part of the HAProxy Data Plane API v2 the operator
// uses: raw configuration with versions, validation and hitless reloads,
// runtime server changes, dynamic servers, runtime map entries, reload
// status, certificate storage and map storage. It owns
// and supervises the HAProxy master process of its instance. It is built
// on client-native v5: the configuration package reads the stored
// configuration and its version, the storage package checks certificate
// files. Runtime actions, certificate swaps, dynamic servers and map
// entries go through haproxy/runtime, this project's client for HAProxy's
// stats socket (client-native's runtime package links the testing
// package, which the shipped binary must not).
//
// # What a request changes
//
// A request it refuses changes nothing. POST configuration/raw checks the
// version, validates a temporary copy with haproxy -c (a forced reload
// into a running HAProxy is the check itself: haproxy -c runs only when
// it failed, and a text HAProxy refuses is answered 400 as the check
// would have), runs the
// X-Runtime-Actions (skip_reload only; when one fails the applied ones are
// undone where HAProxy reports their previous value), stores file and
// version (write and rename), then reloads. The reload asks the master
// CLI often only once HAProxy printed the load's outcome ("Loading
// success" or "Loading failure"): connections to the CLI while the new
// master loads delay the load. A reload succeeds when the
// master's "show proc" lists a new current worker (the master binds the
// listeners before it forks the worker); it fails when HAProxy prints
// "Loading failure" or its failed-reload counter rises, and then the
// previous file and version are put back while the previous worker keeps
// serving. The answer of a forced reload, or the reload record
// (GET reloads/{id}, status failed), carries HAProxy's ALERT lines.
//
// # Transport
//
// The dataplane command serves the API only over TLS (Options.TLSCert and
// TLSKey), on the address it is given (the Pod's IP in an instance). A
// client that does not speak TLS gets its connection closed without an
// HTTP answer. The certificate files are read again when they change, so
// a rotated Secret volume is served from the next handshake on, without a
// restart.
//
// # Supervision
//
// HAProxy runs in its own process group with a parent-death signal, so it
// dies with the dataplane; a pidfile in Dir lets the next dataplane kill a
// master a previous one left. A master that dies is restarted with the
// stored configuration within a second. /healthz (liveness) and /readyz
// (readiness) need no credentials and answer only a word.
//
// # Conformance to the specification
//
// Every answer conforms to the Data Plane API v2 specification shipped in
// client-native v5 (specification/); the tests validate each one with an
// OpenAPI validator. Errors, 404 and 405 included, use the error model;
// configuration answers carry Configuration-Version. Where the
// specification leaves room, the dataplane is stricter:
//   - X-Runtime-Actions accepts only the named client-native actions
//     (SetServerWeight, SetServerAddr, SetServerState, SetServerCheckPort,
//     SetFrontendMaxConn, EnableAgentCheck, DisableAgentCheck,
//     SetServerAgentAddr, SetServerAgentSend) with their exact argument
//     counts, only with skip_reload=true; anything else is a 400 and
//     nothing runs. A failed action is a 400 and nothing is stored.
//   - A boolean query parameter that is not a boolean is a 400.
//   - A forced reload HAProxy cannot complete is a 500 (the previous
//     configuration stays stored and running).
//   - Certificate storage keeps names as given (client-native's storage
//     would rewrite "a.ca.pem" to "a_ca.pem"); *.ca.pem holds only
//     certificates, *.crl.pem only CRLs, other files a certificate and its
//     key. DELETE of a file the stored configuration names is a 400.
//   - skip_version=true stores without a version check and keeps the
//     version number.
//   - Map names (storage/maps, map= of runtime/maps_entries) resolve as on
//     the official API, to <MapDir>/<name> with ".map" added when
//     missing, but a name with characters other than letters, digits, -
//     and _ is refused instead of rewritten. POST runtime/maps_entries of
//     a key the map has is a 409 (HAProxy would add a duplicate).
//     force_sync=true rewrites the map file from HAProxy's entries.
//   - POST runtime/servers makes the new server serve at once (HAProxy
//     creates it in maintenance with checks off): its health and agent
//     checks are started and it is set ready, unless the body asks for
//     maintenance; a failed step deletes it again. DELETE runtime/servers
//     sets maintenance, shuts the server's connections down, then deletes
//     it. Neither touches the stored configuration: a reload keeps only
//     the servers the configuration lists.
package dataplane
