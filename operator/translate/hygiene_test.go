package translate_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

func TestTheHandshakeBoundAndOldWorkerLimitComeFromTheHAProxy(t *testing.T) {
	tests := map[string]struct {
		spec      v1alpha1.HAProxySpec
		handshake time.Duration
		reloads   int32
	}{
		"unset fields take the documented defaults": {
			handshake: 5 * time.Second, reloads: 5,
		},
		"set fields are used as given": {
			spec: v1alpha1.HAProxySpec{
				Timeouts:            v1alpha1.TimeoutsSpec{Handshake: &metav1.Duration{Duration: 2 * time.Second}},
				MaxReloadsPerWorker: ptr.To[int32](3),
			},
			handshake: 2 * time.Second, reloads: 3,
		},
		"a zero handshake keeps the default rather than no bound": {
			spec: v1alpha1.HAProxySpec{
				Timeouts:            v1alpha1.TimeoutsSpec{Handshake: &metav1.Duration{}},
				MaxReloadsPerWorker: ptr.To[int32](0),
			},
			handshake: 5 * time.Second, reloads: 5,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := cluster(t)
			s.HAProxy.Spec = tc.spec
			cfg := translate.Translate(s).Config
			if cfg.HandshakeTimeout != tc.handshake || cfg.MaxReloadsPerWorker != tc.reloads {
				t.Errorf("handshake %v, max reloads %d; want %v, %d", cfg.HandshakeTimeout, cfg.MaxReloadsPerWorker, tc.handshake, tc.reloads)
			}
		})
	}
}
