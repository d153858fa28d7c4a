// Package scale builds the inputs of the scale benchmarks: snapshots of
// as many mappings as the end-to-end benchmark (make bench) creates, for
// the benchmarks of the pure steps and of the applier.
package scale

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

// Snapshot is n mappings the way the scale benchmark (make bench)
// creates them: half cleartext on ports of their own, half SNI
// passthrough with 100 hosts per port, each to a Service of its own with
// two ready endpoints.
func Snapshot(n int) snapshot.Snapshot {
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
