package render_test

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/internal/scale"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/render"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// TestScaleSnapshotIsServed keeps the benchmark honest: every mapping of
// the snapshot it measures is accepted and rendered.
func TestScaleSnapshotIsServed(t *testing.T) {
	res := translate.Translate(scale.Snapshot(400))
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
	if got := strings.Count(string(text), "\nbackend ") + strings.Count(string(text), "\nlisten "); got < 400 {
		t.Errorf("%d backends rendered for 400 mappings", got)
	}
}

// BenchmarkTranslateRender is the pure part of every reconcile at 1k and
// 10k mappings; its cost should grow linearly (10k at most 12 times 1k).
func BenchmarkTranslateRender(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		snap := scale.Snapshot(n)
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
		snap := scale.Snapshot(n)
		res := translate.Translate(snap)
		rendered, err := render.Render(res.Config)
		if err != nil {
			b.Fatal(err)
		}
		// An SNI mapping: its port's weights live in a map file.
		m := snap.TCPMappings[1]
		port := m.Spec.Port
		changed := res.SectionsOn[port]
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
