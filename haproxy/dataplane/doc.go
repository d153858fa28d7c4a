// Package dataplane is the HTTP server that runs beside HAProxy in each
// instance and serves the part of the HAProxy Data Plane API v2 the operator
// uses: raw configuration with versions, validation and hitless reloads,
// runtime server changes, reload status and certificate storage. It owns
// the HAProxy master process of its instance. It is built on client-native:
// the configuration package reads the stored configuration and its
// version, the runtime package runs runtime actions and certificate swaps,
// the storage package keeps certificate files. A posted configuration is
// stored byte for byte (with client-native's # _version line), so the
// operator can compare what runs with what it rendered.
package dataplane
