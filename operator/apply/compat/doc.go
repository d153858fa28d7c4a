// Package compat holds the applier's compatibility suite: the whole
// contract of operator/apply (first apply; one reload for a change of
// structure; none for weight and endpoint changes, nor for an apply that
// changes nothing; certificates created, rotated and deleted; refused
// configurations leave the old one serving; concurrent changes retried)
// as tests against any HAProxy Data Plane API v2.
//
// The target is chosen by environment:
//
//   - nothing set: this project's dataplane, in process, with a real
//     haproxy;
//   - DATAPLANEAPI_BIN: that binary (the official dataplaneapi), started
//     by the suite beside an HAProxy it starts (HAPROXY_BIN or Debian's);
//   - DATAPLANEAPI_URL, DATAPLANEAPI_USER, DATAPLANEAPI_PASSWORD and
//     DATAPLANEAPI_MASTER_SOCKET (the HAProxy master CLI, to count reloads
//     through show proc): a server started elsewhere, whose HAProxy runs
//     with TCPM_RUN_DIR and TCPM_CERT_DIR set to its runtime and
//     certificate storage directories and listens on 127.0.0.1.
//
// The official API finds HAProxy's runtime socket in the configuration's
// stats socket line and does not expand the ${TCPM_RUN_DIR} the template
// writes there; against it the suite writes that path literally
// (DATAPLANEAPI_RUN_DIR for a server started elsewhere).
//
// For example, against the official dataplaneapi v2.9:
//
//	DATAPLANEAPI_BIN=/path/to/dataplaneapi go test ./operator/apply/compat/ -count=1 -v
//
// Only loopback addresses are used.
package compat
