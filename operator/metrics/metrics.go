// Package metrics defines the operator's own Prometheus metrics, served with
// controller-runtime's (reconciles, work queue) on the metrics endpoint.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// Applies counts applies to instances by outcome: reload, runtime
	// (no reload), unchanged or error.
	Applies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "haproxy_tcp_operator_applies_total",
		Help: "Configuration applies to HAProxy instances, by outcome: reload, runtime (no reload), unchanged, error.",
	}, []string{"haproxy", "outcome"})

	// ApplyDuration is how long one apply to one instance took.
	ApplyDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "haproxy_tcp_operator_apply_duration_seconds",
		Help:    "Time to apply a configuration to one HAProxy instance.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"haproxy"})

	// Mappings counts the served TCPMappings by state: accepted,
	// rejected (any reason) and conflict (rejected for a conflict).
	Mappings = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "haproxy_tcp_operator_mappings",
		Help: "TCPMappings an HAProxy serves, by state: accepted, rejected, conflict.",
	}, []string{"haproxy", "state"})

	// OutOfSync counts ready instances not running the desired
	// configuration.
	OutOfSync = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "haproxy_tcp_operator_instances_out_of_sync",
		Help: "Ready HAProxy instances that do not run the desired configuration.",
	}, []string{"haproxy"})

	// CertificateExpiry is when each served TLSContext's certificate
	// expires, for alerts that fire before clients refuse it.
	CertificateExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "haproxy_tcp_operator_certificate_expiry_timestamp_seconds",
		Help: "When the certificate of a served TLSContext expires, as a Unix time.",
	}, []string{"haproxy", "namespace", "tlscontext"})

	// ReloadHeld is 1 while reload pacing holds a change that needs a
	// reload of an HAProxy: the change is neither served nor Programmed
	// yet, and no reconcile runs until the hold ends.
	ReloadHeld = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "haproxy_tcp_operator_reload_held",
		Help: "1 while reload pacing holds a change that needs a reload of an HAProxy, else 0.",
	}, []string{"haproxy"})

	// Exclusions counts the objects HAProxy refused and that are left out
	// of an HAProxy's configuration.
	Exclusions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "haproxy_tcp_operator_excluded_objects",
		Help: "Objects left out of an HAProxy's configuration because HAProxy refused them.",
	}, []string{"haproxy"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(Applies, ApplyDuration, Mappings, OutOfSync, ReloadHeld, CertificateExpiry, Exclusions)
}

// Forget drops the series of a deleted HAProxy.
func Forget(haproxy string) {
	for _, v := range []*prometheus.MetricVec{Applies.MetricVec, Mappings.MetricVec} {
		v.DeletePartialMatch(prometheus.Labels{"haproxy": haproxy})
	}
	ApplyDuration.DeletePartialMatch(prometheus.Labels{"haproxy": haproxy})
	OutOfSync.DeleteLabelValues(haproxy)
	Exclusions.DeleteLabelValues(haproxy)
	ReloadHeld.DeleteLabelValues(haproxy)
	CertificateExpiry.DeletePartialMatch(prometheus.Labels{"haproxy": haproxy})
}
