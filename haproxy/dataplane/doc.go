// Package dataplane is the HTTP server that runs beside HAProxy in each
// instance and serves the part of the HAProxy Data Plane API v2 the operator
// uses: raw configuration with versions, validation and hitless reloads,
// runtime server changes, reload status and certificate storage. It owns
// the HAProxy master process of its instance. Runtime commands and
// certificate files go through client-native's runtime and storage
// packages; the configuration is stored byte for byte as it was posted.
package dataplane
