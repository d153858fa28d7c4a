package controller

import (
	"context"
	"fmt"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// TestChangedPortsFromTheChangesEqualsAFullComparison: the ports that
// versions read against the last ones name are those a comparison of
// every mapping's version names, whatever changed.
func TestChangedPortsFromTheChangesEqualsAFullComparison(t *testing.T) {
	mapping := func(name string, port int32, rv string) *v1alpha1.TCPMapping {
		return &v1alpha1.TCPMapping{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: rv}, Spec: v1alpha1.TCPMappingSpec{Port: port}}
	}
	base := func() []*v1alpha1.TCPMapping {
		var out []*v1alpha1.TCPMapping
		for i := range 20 {
			out = append(out, mapping(fmt.Sprintf("m%d", i), int32(1000+i%5), "1"))
		}
		return out
	}
	for name, c := range map[string]struct {
		edit func([]*v1alpha1.TCPMapping) []*v1alpha1.TCPMapping
		want []int32
	}{
		"nothing": {func(m []*v1alpha1.TCPMapping) []*v1alpha1.TCPMapping { return m }, []int32{}},
		"a new generation": {func(m []*v1alpha1.TCPMapping) []*v1alpha1.TCPMapping {
			c := mapping("m3", 1003, "2")
			c.Generation = 2
			m[3] = c
			return m
		}, []int32{1003}},
		"a move": {func(m []*v1alpha1.TCPMapping) []*v1alpha1.TCPMapping {
			m[3] = mapping("m3", 1004, "2")
			return m
		}, []int32{1003, 1004}},
		"a last accepted port": {func(m []*v1alpha1.TCPMapping) []*v1alpha1.TCPMapping {
			c := mapping("m3", 1003, "2")
			c.Status.LastAccepted = &v1alpha1.AcceptedTCPMapping{Spec: v1alpha1.TCPMappingSpec{Port: 2000}}
			m[3] = c
			return m
		}, []int32{1003, 2000}},
		"a status the operator writes": {func(m []*v1alpha1.TCPMapping) []*v1alpha1.TCPMapping {
			c := mapping("m3", 1003, "2")
			c.Status.Parents = []v1alpha1.ParentStatus{{}}
			m[3] = c
			return m
		}, []int32{}},
		"an accepted condition": {func(m []*v1alpha1.TCPMapping) []*v1alpha1.TCPMapping {
			c := mapping("m3", 1003, "2")
			c.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionAccepted, Status: metav1.ConditionTrue}}
			m[3] = c
			return m
		}, []int32{1003}},
		"a label": {func(m []*v1alpha1.TCPMapping) []*v1alpha1.TCPMapping {
			c := mapping("m3", 1003, "2")
			c.Labels = map[string]string{"tier": "b"}
			m[3] = c
			return m
		}, []int32{1003}},
		"recreated": {func(m []*v1alpha1.TCPMapping) []*v1alpha1.TCPMapping {
			c := mapping("m3", 1003, "2")
			c.UID = "other"
			m[3] = c
			return m
		}, []int32{1003}},
		"an added one":  {func(m []*v1alpha1.TCPMapping) []*v1alpha1.TCPMapping { return append(m, mapping("new", 3000, "5")) }, []int32{3000}},
		"a removed one": {func(m []*v1alpha1.TCPMapping) []*v1alpha1.TCPMapping { return append(m[:2:2], m[3:]...) }, []int32{1002}},
		"added, removed": {func(m []*v1alpha1.TCPMapping) []*v1alpha1.TCPMapping {
			return append(append(m[:2:2], m[3:]...), mapping("new", 3000, "5"))
		}, []int32{1002, 3000}},
	} {
		t.Run(name, func(t *testing.T) {
			r := &HAProxyReconciler{}
			before := versionsOf(&snapshot.Snapshot{TCPMappings: base()}, nil)
			now := versionsOf(&snapshot.Snapshot{TCPMappings: c.edit(base())}, &before)
			assertChangedPorts(t, r, before, now, nil, c.want)
		})
	}
}

// assertChangedPorts checks that changedPorts names want both from the
// changes now was read with and comparing every mapping.
func assertChangedPorts(t *testing.T, r *HAProxyReconciler, before, now inputVersions, last *translate.Result, want []int32) {
	t.Helper()
	got, ok := r.changedPorts(context.Background(), before, now, last)
	if !ok || !slices.Equal(got, want) {
		t.Errorf("from the changes: %v %v, want %v", got, ok, want)
	}
	now.against = 0 // compare every mapping
	full, ok := r.changedPorts(context.Background(), before, now, last)
	if !ok || !slices.Equal(full, want) {
		t.Errorf("comparing all: %v %v, want %v", full, ok, want)
	}
}

// TestChangedPortsLeaveOutRecordedVerdicts: a mapping whose status
// changed only to record the last translation's verdict on it changes
// no port; any other change to what a translation reads of it does.
func TestChangedPortsLeaveOutRecordedVerdicts(t *testing.T) {
	mapping := func(name string, port int32, rv string) *v1alpha1.TCPMapping {
		return &v1alpha1.TCPMapping{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: rv, Generation: 1}, Spec: v1alpha1.TCPMappingSpec{Port: port}}
	}
	base := func() []*v1alpha1.TCPMapping {
		var out []*v1alpha1.TCPMapping
		for i := range 6 {
			out = append(out, mapping(fmt.Sprintf("m%d", i), int32(1000+i), "1"))
		}
		return out
	}
	accepted := &translate.MappingResult{Namespace: "ns", Name: "m2", Generation: 1, InEffectGeneration: 1,
		Accepted: translate.Condition{Status: true}, ResolvedRefs: translate.Condition{Status: true}}
	rejected := &translate.MappingResult{Namespace: "ns", Name: "m3", Generation: 1,
		Accepted: translate.Condition{Reason: v1alpha1.ReasonConflict}, ResolvedRefs: translate.Condition{Status: true}}
	last := &translate.Result{Mappings: []*translate.MappingResult{accepted, rejected}}
	as := func(m *v1alpha1.TCPMapping, status metav1.ConditionStatus) *v1alpha1.TCPMapping {
		m.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionAccepted, Status: status}}
		return m
	}
	lastAccepted := func(m *v1alpha1.TCPMapping, gen int64, port int32) *v1alpha1.TCPMapping {
		m.Status.LastAccepted = &v1alpha1.AcceptedTCPMapping{Generation: gen, Spec: v1alpha1.TCPMappingSpec{Port: port}}
		return m
	}
	for name, c := range map[string]struct {
		edit func([]*v1alpha1.TCPMapping)
		want []int32
	}{
		"an acceptance recorded": {func(m []*v1alpha1.TCPMapping) {
			m[2] = lastAccepted(as(mapping("m2", 1002, "2"), metav1.ConditionTrue), 1, 1002)
		}, []int32{}},
		"a rejection recorded": {func(m []*v1alpha1.TCPMapping) {
			m[3] = as(mapping("m3", 1003, "2"), metav1.ConditionFalse)
		}, []int32{}},
		"both recorded, and a mapping without a verdict accepted": {func(m []*v1alpha1.TCPMapping) {
			m[2] = lastAccepted(as(mapping("m2", 1002, "2"), metav1.ConditionTrue), 1, 1002)
			m[3] = as(mapping("m3", 1003, "2"), metav1.ConditionFalse)
			m[4] = as(mapping("m4", 1004, "2"), metav1.ConditionTrue)
		}, []int32{1004}},
		"accepted, against the verdict": {func(m []*v1alpha1.TCPMapping) {
			m[3] = as(mapping("m3", 1003, "2"), metav1.ConditionTrue)
		}, []int32{1003}},
		"rejected, against the verdict": {func(m []*v1alpha1.TCPMapping) {
			m[2] = as(mapping("m2", 1002, "2"), metav1.ConditionFalse)
		}, []int32{1002}},
		"accepted without the spec as last accepted": {func(m []*v1alpha1.TCPMapping) {
			m[2] = as(mapping("m2", 1002, "2"), metav1.ConditionTrue)
		}, []int32{1002}},
		"a last accepted spec the verdict does not put in effect": {func(m []*v1alpha1.TCPMapping) {
			m[3] = lastAccepted(as(mapping("m3", 1003, "2"), metav1.ConditionFalse), 1, 1003)
		}, []int32{1003}},
		"a last accepted spec on another port": {func(m []*v1alpha1.TCPMapping) {
			m[2] = lastAccepted(as(mapping("m2", 1002, "2"), metav1.ConditionTrue), 1, 2002)
		}, []int32{1002, 2002}},
		"recorded, and a label": {func(m []*v1alpha1.TCPMapping) {
			c := lastAccepted(as(mapping("m2", 1002, "2"), metav1.ConditionTrue), 1, 1002)
			c.Labels = map[string]string{"tier": "b"}
			m[2] = c
		}, []int32{1002}},
		"recorded, at a new generation": {func(m []*v1alpha1.TCPMapping) {
			c := lastAccepted(as(mapping("m2", 1002, "2"), metav1.ConditionTrue), 2, 1002)
			c.Generation = 2
			m[2] = c
		}, []int32{1002}},
	} {
		t.Run(name, func(t *testing.T) {
			r := &HAProxyReconciler{}
			before := versionsOf(&snapshot.Snapshot{TCPMappings: base()}, nil)
			edited := base()
			c.edit(edited)
			now := versionsOf(&snapshot.Snapshot{TCPMappings: edited}, &before)
			assertChangedPorts(t, r, before, now, last, c.want)
			// Without the last translation's verdicts, every status change
			// a translation reads counts.
			if len(c.want) == 0 {
				if got, _ := r.changedPorts(context.Background(), before, now, nil); len(got) == 0 {
					t.Errorf("without verdicts: no port changed")
				}
			}
		})
	}
}

// TestVersionsKeptAlongTheChain: versions read against kept ones, then
// kept themselves, are what the next reconcile compares with.
func TestVersionsKeptAlongTheChain(t *testing.T) {
	r := &HAProxyReconciler{}
	m := func(name string, port int32, gen int64) *v1alpha1.TCPMapping {
		return &v1alpha1.TCPMapping{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Generation: gen}, Spec: v1alpha1.TCPMappingSpec{Port: port}}
	}
	// The cache hands out the same object until it changes: some steps
	// read the very objects of the step before, others equal copies.
	a2, b2, a4 := m("a", 1, 2), m("b", 3, 2), m("a", 4, 1)
	steps := []struct {
		mappings []*v1alpha1.TCPMapping
		want     []int32
	}{
		{[]*v1alpha1.TCPMapping{m("a", 1, 1), m("b", 2, 1)}, nil},
		{[]*v1alpha1.TCPMapping{a2, m("b", 2, 1)}, []int32{1}},
		{[]*v1alpha1.TCPMapping{a2, b2}, []int32{2, 3}},
		{[]*v1alpha1.TCPMapping{b2}, []int32{1}},
		{[]*v1alpha1.TCPMapping{b2, a4}, []int32{4}},
		{[]*v1alpha1.TCPMapping{b2, a4}, []int32{}},
		{[]*v1alpha1.TCPMapping{m("b", 3, 2), a4}, []int32{}},
		{[]*v1alpha1.TCPMapping{a4}, []int32{3}},
	}
	var last *inputVersions
	for i, s := range steps {
		now := versionsOf(&snapshot.Snapshot{TCPMappings: s.mappings}, last)
		if last != nil {
			got, ok := r.changedPorts(context.Background(), *last, now, nil)
			if !ok || !slices.Equal(got, s.want) {
				t.Errorf("step %d: changed ports %v %v, want %v", i, got, ok, s.want)
			}
		}
		now.keep()
		if len(now.mappings) != len(s.mappings) || len(now.objects) != len(s.mappings) {
			t.Errorf("step %d: %d versions and %d objects kept for %d mappings", i, len(now.mappings), len(now.objects), len(s.mappings))
		}
		last = &now
	}
}

// TestSectionsOnTheChangedPorts: the sections a change names are those on
// its ports in the last translation and in this one (so that sections
// gone count), once each and in name order; other ports' are not named.
func TestSectionsOnTheChangedPorts(t *testing.T) {
	last := translate.Result{SectionsOn: map[int32][]string{
		80:  {"tcpm-fe-80", "tcpm-be-ns:a", "tcpm-be-ns:gone"},
		443: {"tcpm-fe-443", "tcpm-be-443-0"},
	}}
	now := translate.Result{SectionsOn: map[int32][]string{
		80:  {"tcpm-fe-80", "tcpm-be-ns:a", "tcpm-be-ns:new"},
		443: {"tcpm-fe-443", "tcpm-be-443-0"},
	}}
	for _, tc := range []struct {
		ports []int32
		want  []string
	}{
		{[]int32{80}, []string{"tcpm-be-ns:a", "tcpm-be-ns:gone", "tcpm-be-ns:new", "tcpm-fe-80"}},
		{[]int32{443}, []string{"tcpm-be-443-0", "tcpm-fe-443"}},
		{[]int32{8080}, nil},
	} {
		if got := sectionsOn(tc.ports, last, now); !slices.Equal(got, tc.want) {
			t.Errorf("ports %v: got %v, want %v", tc.ports, got, tc.want)
		}
	}
}
