// Package manifests holds the tests that keep the install manifests in
// deploy/ honest: the Helm chart renders the same objects as kustomize and
// the API server accepts both, the ServiceMonitor component selects the
// operator's metrics Service, and every query of the Grafana dashboard
// names a metric the operator or HAProxy exports. It has no code of its own.
package manifests
