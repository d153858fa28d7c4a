package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func TestEchoesOfOwnServiceWritesAreDropped(t *testing.T) {
	svc := func(name, version string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: version}}
	}
	var w ownWrites
	w.wrote(svc("haproxy-edge", "41"))
	w.wrote(svc("haproxy-edge", "42")) // the last write counts
	p := w.notEchoes()
	for _, tc := range []struct {
		name string
		pass bool
		got  func() bool
	}{
		{"the echo of the last write", false, func() bool {
			return p.Update(event.UpdateEvent{ObjectOld: svc("haproxy-edge", "41"), ObjectNew: svc("haproxy-edge", "42")})
		}},
		{"the echo of a create", false, func() bool { return p.Create(event.CreateEvent{Object: svc("haproxy-edge", "42")}) }},
		{"an earlier write, seen late", true, func() bool {
			return p.Update(event.UpdateEvent{ObjectOld: svc("haproxy-edge", "40"), ObjectNew: svc("haproxy-edge", "41")})
		}},
		{"someone else's change after the write", true, func() bool {
			return p.Update(event.UpdateEvent{ObjectOld: svc("haproxy-edge", "42"), ObjectNew: svc("haproxy-edge", "43")})
		}},
		{"another Service at the same version", true, func() bool {
			return p.Update(event.UpdateEvent{ObjectOld: svc("backend", "41"), ObjectNew: svc("backend", "42")})
		}},
		{"a deletion of what was written", true, func() bool { return p.Delete(event.DeleteEvent{Object: svc("haproxy-edge", "42")}) }},
		{"an object without a version", true, func() bool { return p.Create(event.CreateEvent{Object: svc("unversioned", "")}) }},
	} {
		if got := tc.got(); got != tc.pass {
			t.Errorf("%s: passes = %v, want %v", tc.name, got, tc.pass)
		}
	}
}
