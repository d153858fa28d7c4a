// Package compat holds the applier's compatibility suite: the whole
// contract of operator/apply (first apply; one reload for a change of
// structure; none for weight and endpoint changes, nor for an apply that
// changes nothing; certificates and CA bundles created, rotated and
// deleted; refused configurations leave the old one serving; concurrent
// changes retried) as tests against any HAProxy Data Plane API v2.
//
// The tests drive the operator's own output: a snapshot of resources (a
// cleartext TCPMapping, a weighted pair on one port, a mapping
// terminating TLS and one requiring client certificates of a CA, backed
// by Services whose endpoints are loopback servers) is translated and
// rendered as the operator does, and applied; every outcome is checked
// with real connections through HAProxy.
//
// The target is chosen by environment:
//
//   - nothing set: this project's dataplane, in process, with a real
//     haproxy;
//   - DATAPLANEAPI_BIN: that binary (the official dataplaneapi), started
//     by the suite beside an HAProxy it starts (HAPROXY_BIN or Debian's),
//     with none of the operator's environment variables set;
//   - DATAPLANEAPI_URL, DATAPLANEAPI_USER, DATAPLANEAPI_PASSWORD and
//     DATAPLANEAPI_MASTER_SOCKET (the HAProxy master CLI, to count reloads
//     through show proc): a server started elsewhere whose HAProxy can
//     listen on 127.0.0.1 and whose configuration names its runtime
//     socket in a stats socket line.
//
// Each case logs its measured reload count as a line
// "RESULT <case> target=<kind> reloads=<n>".
//
// For example, against the official dataplaneapi v2.9:
//
//	DATAPLANEAPI_BIN=/path/to/dataplaneapi go test ./operator/apply/compat/ -count=1 -v
//
// Only loopback addresses are used.
package compat
