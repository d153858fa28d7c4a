package render_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/render"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// scaleSnapshot is n mappings the way the scale benchmark (make bench)
// creates them: half cleartext on ports of their own, half SNI
// passthrough with 100 hosts per port, each to a Service of its own with
// two ready endpoints.
func scaleSnapshot(n int) snapshot.Snapshot {
	s := snapshot.Snapshot{
		HAProxy:    v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "default"}},
		Namespaces: []corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "default"}}},
	}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		name := fmt.Sprintf("m-%05d", i)
		s.Services = append(s.Services, corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "tcp", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		})
		s.EndpointSlices = append(s.EndpointSlices, discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name + "-abcde", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("tcp"), Port: ptr.To(int32(8080))}},
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{fmt.Sprintf("10.%d.%d.1", i/250, i%250)}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
				{Addresses: []string{fmt.Sprintf("10.%d.%d.2", i/250, i%250)}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			},
		})
		spec := v1alpha1.TCPMappingSpec{Service: name + ":80"}
		if i%2 == 0 {
			spec.Port = int32(10000 + i/2)
		} else {
			spec.Port, spec.Host = int32(30000+(i/2)/100), fmt.Sprintf("host-%05d.example.com", i)
		}
		s.TCPMappings = append(s.TCPMappings, &v1alpha1.TCPMapping{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Generation: 1, CreationTimestamp: metav1.NewTime(created.Add(time.Duration(i) * time.Second))},
			Spec:       spec,
		})
	}
	return s
}

// TestScaleSnapshotIsServed keeps the benchmark honest: every mapping of
// the snapshot it measures is accepted and rendered.
func TestScaleSnapshotIsServed(t *testing.T) {
	res := translate.Translate(scaleSnapshot(400))
	text, err := render.Config(res.Config)
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for _, m := range res.Mappings {
		if m.Accepted.Status {
			accepted++
		}
	}
	if accepted != 400 {
		t.Errorf("%d of 400 mappings accepted", accepted)
	}
	if got := strings.Count(string(text), "\nbackend "); got < 400 {
		t.Errorf("%d backends rendered for 400 mappings", got)
	}
}

// BenchmarkTranslateRender is the pure part of every reconcile at 1k and
// 10k mappings; its cost should grow linearly (10k at most 12 times 1k).
func BenchmarkTranslateRender(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		snap := scaleSnapshot(n)
		b.Run(fmt.Sprintf("mappings=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := render.Config(translate.Translate(snap).Config); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWeightChange is the pure part of a reconcile after one
// mapping's weight changed: translating its port again and rendering what
// changed. It should cost what one port costs, whatever the scale.
func BenchmarkWeightChange(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		snap := scaleSnapshot(n)
		res := translate.Translate(snap)
		rendered, err := render.Render(res.Config)
		if err != nil {
			b.Fatal(err)
		}
		// An SNI mapping: its port's weights live in a map file.
		m := snap.TCPMappings[1]
		port := m.Spec.Port
		changed := func(name string) bool { p, ok := res.PortOf[name]; return !ok || p == port }
		b.Run(fmt.Sprintf("mappings=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				m.Spec.Weight = ptr.To(int32(i % 100))
				next, ok := translate.Update(res, snap, []int32{port})
				if !ok {
					b.Fatal("the weight change reached beyond its port")
				}
				if _, err := rendered.Update(next.Config, changed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
