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
				Timeouts:            &v1alpha1.TimeoutsSpec{Handshake: &metav1.Duration{Duration: 2 * time.Second}},
				MaxReloadsPerWorker: ptr.To[int32](3),
			},
			handshake: 2 * time.Second, reloads: 3,
		},
		"a zero handshake keeps the default rather than no bound": {
			spec: v1alpha1.HAProxySpec{
				Timeouts:            &v1alpha1.TimeoutsSpec{Handshake: &metav1.Duration{}},
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

// TestValuesFromFilesThatSkippedTheAPIServerNeverReachTheConfiguration
// covers inputs of the render command that CRD validation would refuse.
func TestValuesFromFilesThatSkippedTheAPIServerNeverReachTheConfiguration(t *testing.T) {
	t.Run("an EndpointSlice address that is no IP never becomes a server", func(t *testing.T) {
		s := cluster(t)
		for i := range s.EndpointSlices {
			if s.EndpointSlices[i].Name == "qotm-abcde" {
				s.EndpointSlices[i] = *s.EndpointSlices[i].DeepCopy()
				s.EndpointSlices[i].Endpoints[0].Addresses = []string{"10.0.0.11 backup\n    server x"}
			}
		}
		s.TCPMappings = pointers(mapping("relay", 0, 1, v1alpha1.TCPMappingSpec{Port: 2222, Service: "qotm"}))
		res := translate.Translate(s)
		be := backend(res, "tcpm-be-default:relay")
		if be == nil {
			t.Fatal("no backend")
		}
		for _, sv := range be.Servers {
			if sv.Address != "" && sv.Address != "10.0.0.12" {
				t.Errorf("server address %q", sv.Address)
			}
		}
	})
	t.Run("a stats path with a newline keeps the default path and says why", func(t *testing.T) {
		s := cluster(t)
		s.HAProxy.Spec.Stats.Path = "/stats\n    stats admin if TRUE"
		res := translate.Translate(s)
		if res.Config.Stats == nil || res.Config.Stats.Path != translate.DefaultStatsPath {
			t.Errorf("stats %+v, want the default path", res.Config.Stats)
		}
		if res.HAProxy.Status || res.HAProxy.Reason != translate.ReasonInvalidSpec {
			t.Errorf("HAProxy condition %+v, want InvalidSpec", res.HAProxy)
		}
	})
}
