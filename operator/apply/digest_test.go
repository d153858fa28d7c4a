package apply

import (
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/internal/scale"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// onPortsOf names the sections on port in either result, as the
// operator names the sections a change may reach.
func onPortsOf(port int32, results ...translate.Result) []string {
	var names []string
	for _, r := range results {
		for name, p := range r.PortOf {
			if p == port {
				names = append(names, name)
			}
		}
	}
	return names
}

// TestDerivedDigestEqualsAFullOne: a digest derived from the last
// revision, reading only the changed sections, says what a digest read
// from the whole model says, after each of a series of changes; and the
// runtime actions worked out for the changed backends alone are those
// worked out for all.
func TestDerivedDigestEqualsAFullOne(t *testing.T) {
	snap := scale.Snapshot(400)
	res := translate.Translate(snap)
	sni, plain := snap.TCPMappings[1].Spec.Port, snap.TCPMappings[0].Spec.Port
	changes := []struct {
		name string
		port int32
		edit func(s *snapshot.Snapshot)
	}{
		{"a weight", sni, func(s *snapshot.Snapshot) { s.TCPMappings[1].Spec.Weight = ptr(int32(30)) }},
		{"another weight", sni, func(s *snapshot.Snapshot) { s.TCPMappings[3].Spec.Weight = ptr(int32(10)) }},
		{"an endpoint", sni, func(s *snapshot.Snapshot) {
			svc := s.TCPMappings[1].Name
			for i := range s.EndpointSlices {
				if s.EndpointSlices[i].Labels["kubernetes.io/service-name"] == svc {
					es := s.EndpointSlices[i].DeepCopy()
					es.Endpoints = es.Endpoints[:1]
					s.EndpointSlices[i] = *es
				}
			}
		}},
		{"a new host", sni, func(s *snapshot.Snapshot) {
			m := s.TCPMappings[1].DeepCopy()
			m.Name, m.Spec.Host = "new-host", "new.example.com"
			s.TCPMappings = append(s.TCPMappings, m)
		}},
		{"a removed host", sni, func(s *snapshot.Snapshot) { s.TCPMappings = append(s.TCPMappings[:3:3], s.TCPMappings[4:]...) }},
		{"a cleartext mapping's service", plain, func(s *snapshot.Snapshot) {
			s.TCPMappings[0].Spec.Service = "10.1.2.3:80"
		}},
		{"a removed cleartext mapping", plain, func(s *snapshot.Snapshot) { s.TCPMappings = s.TCPMappings[1:] }},
	}
	prev := res
	base := &modelDigest{model: &prev.Config, revision: 1}
	base.digested()
	for i, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			// The snapshot's objects are shared with the last one:
			// copies are edited.
			s := snap
			s.TCPMappings = make([]*v1alpha1.TCPMapping, len(snap.TCPMappings))
			for k, m := range snap.TCPMappings {
				s.TCPMappings[k] = m.DeepCopy()
			}
			s.EndpointSlices = append(s.EndpointSlices[:0:0], snap.EndpointSlices...)
			c.edit(&s)
			next, ok := translate.Update(prev, s, []int32{c.port})
			if !ok {
				t.Fatal("Update declined")
			}
			// What the instance runs: its own copy of the base's view,
			// which the derived digest takes over.
			running := maps.Clone(base.view)
			derived := &modelDigest{model: &next.Config, revision: uint64(i + 2), base: base, changed: onPortsOf(c.port, prev, next)}
			derived.digested()
			full := &modelDigest{model: &next.Config}
			full.digested()
			if derived.since != base.revision {
				t.Fatalf("derived since %d, want %d", derived.since, base.revision)
			}
			for what, pair := range map[string][2]any{
				"structure":   {derived.structure, full.structure},
				"frontends":   {derived.frontends, full.frontends},
				"backends":    {derived.backends, full.backends},
				"view":        {derived.view, full.view},
				"dynamic":     {derived.dynamic, full.dynamic},
				"map digests": {derived.mapContent, full.mapContent},
			} {
				if !reflect.DeepEqual(pair[0], pair[1]) {
					t.Errorf("derived %s differs from the full one", what)
				}
			}
			if c.name != "a weight" && c.name != "another weight" && derived.structure == base.structure && reflect.DeepEqual(derived.view, running) {
				t.Logf("%s changed neither structure nor view", c.name)
			}
			fromAll, okAll := runtimeActions(running, full.view)
			fromChanged, okChanged := runtimeActionsIn(running, derived.view, derived.changedBackends)
			added := func(p runtimePlan) []string {
				var out []string
				for _, s := range p.add {
					out = append(out, s.Backend+"/"+s.Name)
				}
				return out
			}
			if okAll != okChanged {
				t.Fatalf("runtime plans possible: for all %v, for the changed backends %v", okAll, okChanged)
			}
			if !okAll {
				// A structural change: the instance reloads.
				prev, base, snap = next, derived, s
				return
			}
			if !reflect.DeepEqual(fromAll.actions, fromChanged.actions) || !reflect.DeepEqual(added(fromAll), added(fromChanged)) || !reflect.DeepEqual(fromAll.applyTo(maps.Clone(running)), fromChanged.applyTo(maps.Clone(running))) {
				t.Errorf("runtime plan for the changed backends %v, add %v differs from the one for all: %v, add %v", fromChanged.actions, added(fromChanged), fromAll.actions, added(fromAll))
			}
			prev, base, snap = next, derived, s
		})
	}
}

// TestASecondDerivationFromOneRevisionIsFull: a derived digest takes
// its base's maps to change in place; a second one derived from the same
// base cannot, and is worked out in full, equal to a full digest.
func TestASecondDerivationFromOneRevisionIsFull(t *testing.T) {
	snap := scale.Snapshot(40)
	first := translate.Translate(snap)
	port := snap.TCPMappings[1].Spec.Port
	edited := snap
	edited.TCPMappings = slices.Clone(snap.TCPMappings)
	m := snap.TCPMappings[1].DeepCopy()
	m.Spec.Weight = ptr(int32(30))
	edited.TCPMappings[1] = m
	next, ok := translate.Update(first, edited, []int32{port})
	if !ok {
		t.Fatal("Update declined")
	}
	base := &modelDigest{model: &first.Config, revision: 1}
	base.digested()
	changed := onPortsOf(port, first, next)
	one := &modelDigest{model: &next.Config, revision: 2, base: base, changed: changed}
	one.digested()
	two := &modelDigest{model: &next.Config, revision: 3, base: base, changed: changed}
	two.digested()
	full := &modelDigest{model: &next.Config}
	full.digested()
	if one.since != 1 || two.since != 0 {
		t.Errorf("derived since %d and %d, want 1 and 0 (worked out in full)", one.since, two.since)
	}
	for _, d := range []*modelDigest{one, two} {
		if d.structure != full.structure || !reflect.DeepEqual(d.backends, full.backends) || !reflect.DeepEqual(d.view, full.view) ||
			!reflect.DeepEqual(d.dynamic, full.dynamic) || !reflect.DeepEqual(d.mapContent, full.mapContent) {
			t.Errorf("the digest of revision %d differs from a full one", d.revision)
		}
	}
}

// TestApplierDerivesOnlyFromTheRevisionItKnows: a model that names a
// revision the applier did not see last is read in full.
func TestApplierDerivesOnlyFromTheRevisionItKnows(t *testing.T) {
	res := translate.Translate(scale.Snapshot(20))
	a := NewApplier()
	first := a.digestOf(Desired{Model: res.Config, Revision: 7})
	if again := a.digestOf(Desired{Model: res.Config, Revision: 7}); again != first {
		t.Error("one revision got two digests")
	}
	var changed []string
	for _, f := range res.Config.Frontends {
		changed = append(changed, f.Name)
	}
	if d := a.digestOf(Desired{Model: res.Config, Revision: 8, Since: 7, Changed: changed}); d.base != first {
		t.Error("a model derived from the last revision is not derived")
	}
	if d := a.digestOf(Desired{Model: res.Config, Revision: 9, Since: 7, Changed: changed}); d.base != nil {
		t.Error("a model derived from a revision no longer the last one is derived")
	}
	// Since with nothing named: the same sections as revision 9.
	ninth := a.last
	// Read before revision 10 takes the ninth's maps over.
	ninthStructure, ninthView := ninth.digested().structure, maps.Clone(ninth.digested().view)
	if d := a.digestOf(Desired{Model: res.Config, Revision: 10, Since: 9}); d.base != ninth {
		t.Error("a model derived from the last revision with no section changed is not derived")
	} else if d.digested(); d.structure != ninthStructure || !reflect.DeepEqual(d.view, ninthView) {
		t.Error("a model with no section changed digests differently from its base")
	}
}

// TestDigestOfAModelOutOfNameOrderIsReadInFull: derive finds the changed
// sections by binary search, which needs the lists in name order; a model
// in another order is read in full, and digests as the same model sorted.
func TestDigestOfAModelOutOfNameOrderIsReadInFull(t *testing.T) {
	res := translate.Translate(scale.Snapshot(20))
	a := NewApplier()
	a.digestOf(Desired{Model: res.Config, Revision: 1}).digested()
	shuffled := res.Config
	shuffled.Backends = slices.Clone(res.Config.Backends)
	slices.Reverse(shuffled.Backends)
	d := a.digestOf(Desired{Model: shuffled, Revision: 2, Since: 1, Changed: []string{res.Config.Backends[0].Name}})
	if d.base == nil {
		t.Fatal("the model was not offered for derivation")
	}
	d.digested()
	if d.since != 0 {
		t.Errorf("a model out of name order was derived from revision %d", d.since)
	}
	full := &modelDigest{model: &res.Config}
	full.digested()
	if d.structure != full.structure || !reflect.DeepEqual(d.backends, full.backends) {
		t.Error("the model out of name order digests differently from the same model in order")
	}
}
