package apply

import (
	"fmt"
	"maps"
	"testing"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/internal/scale"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// BenchmarkWeightChangeDigest is what the applier works out of a model
// after one weight changed, from the digest of the revision before: the
// structure and runtime view, the runtime actions and the map entry
// actions against what runs. It should cost what the change costs,
// whatever the scale.
func BenchmarkWeightChangeDigest(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		snap := scale.Snapshot(n)
		first := translate.Translate(snap)
		// Two models that differ in one SNI mapping's weight.
		m := snap.TCPMappings[1]
		port := m.Spec.Port
		edited := *m
		w := int32(40)
		edited.Spec.Weight = &w
		snap.TCPMappings[1] = &edited
		second, ok := translate.Update(first, snap, []int32{port})
		if !ok {
			b.Fatal("Update declined")
		}
		results := [2]translate.Result{first, second}
		changed := onPortsOf(port, first, second)
		base := &modelDigest{model: &results[0].Config, revision: 1}
		base.digested()
		// What the instance runs: its own copy of the view.
		running := maps.Clone(base.view)
		runMaps := map[string]mapEntries{}
		for _, m := range first.Config.Maps {
			runMaps[m.Name] = entriesOf(m)
		}
		b.Run(fmt.Sprintf("mappings=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				next := &results[(base.revision)%2]
				d := &modelDigest{model: &next.Config, revision: base.revision + 1, base: base, changed: changed}
				d.digested()
				if d.structure != base.structure {
					b.Fatal("the structure changed")
				}
				rp, ok := runtimeActionsIn(running, d.view, d.changedBackends)
				if !ok {
					b.Fatal("no runtime plan")
				}
				running = rp.applyTo(running)
				var changedMaps []model.Map
				for _, i := range d.changedMaps {
					changedMaps = append(changedMaps, next.Config.Maps[i])
				}
				for _, a := range mapActions(runMaps, changedMaps) {
					if a.op == mapDelete {
						delete(runMaps[a.name], a.key)
					} else {
						runMaps[a.name][a.key] = a.value
					}
				}
				base = d
			}
		})
	}
}
