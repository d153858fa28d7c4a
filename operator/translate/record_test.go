package translate_test

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/internal/golden"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/internal/scale"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// TestRecordingTheVerdictsChangesNoTranslation: once the operator writes
// a translation's verdicts into the mappings' statuses (the Accepted
// condition, and the spec as last accepted when it is in effect), the
// same inputs translate to the same configuration and verdicts, whether
// all of the statuses were written or only some so far: nothing but the
// winner of a conflict may depend on whether a mapping was accepted
// before. The controller relies on it: a port whose mappings changed
// only by recording the last translation's verdicts is not translated
// again (after a burst of 10,000 mappings, that was every port, once
// their statuses were written).
func TestRecordingTheVerdictsChangesNoTranslation(t *testing.T) {
	// Beside the golden cases, the benchmark's mix created within one
	// second: mappings ordered by acceptance there, SNI hosts in pools.
	burst := scale.Snapshot(1000)
	for _, m := range burst.TCPMappings {
		m.CreationTimestamp = burst.TCPMappings[0].CreationTimestamp
	}
	cases := append(golden.Cases(t, "testdata"), golden.Case{Name: "1,000 mappings created in one second", Snapshot: burst})
	for _, tc := range cases {
		s := deepCopy(tc.Snapshot)
		for _, m := range s.TCPMappings {
			// Objects read from files have no generation, and nothing of
			// them would be recorded as accepted.
			if m.Generation == 0 {
				m.Generation = 1
				if la := m.Status.LastAccepted; la != nil {
					m.Generation = la.Generation + 1
				}
			}
		}
		want := translate.Translate(s)
		wantText := comparable(t, want)
		for _, every := range []int{1, 2, 3} {
			for offset := range every {
				t.Run(fmt.Sprintf("%s/every %d from %d", tc.Name, every, offset), func(t *testing.T) {
					recorded := deepCopy(s)
					for i, m := range recorded.TCPMappings {
						if i%every == offset {
							recordVerdict(m, want)
						}
					}
					if got := comparable(t, translate.Translate(recorded)); got != wantText {
						t.Errorf("translating with the verdicts recorded differs:\n%s", golden.Diff(wantText, got))
					}
				})
			}
		}
		// Recorded once more, from the translation with the verdicts in
		// place: nothing moves either.
		recorded := deepCopy(s)
		for _, m := range recorded.TCPMappings {
			recordVerdict(m, want)
		}
		again := translate.Translate(recorded)
		for _, m := range recorded.TCPMappings {
			recordVerdict(m, again)
		}
		if got := comparable(t, translate.Translate(recorded)); got != wantText {
			t.Errorf("%s: recording twice differs:\n%s", tc.Name, golden.Diff(wantText, got))
		}
	}
}

// recordVerdict writes res's verdict on m into m's status, as the
// operator's status write does for one HAProxy.
func recordVerdict(m *v1alpha1.TCPMapping, res translate.Result) {
	v := res.Verdict(m.Namespace, m.Name)
	if v == nil {
		return
	}
	status := metav1.ConditionFalse
	if v.Accepted.Status {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&m.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionAccepted, Status: status, Reason: v.Accepted.Reason, Message: v.Accepted.Message, ObservedGeneration: m.Generation,
	})
	if v.RecordsSpecAsAccepted(m.Generation) {
		m.Status.LastAccepted = &v1alpha1.AcceptedTCPMapping{Generation: m.Generation, Spec: *m.Spec.DeepCopy()}
	}
}

// TestVerdictFindsEachMapping: Verdict finds every mapping's verdict by
// its namespace and name, and none for a mapping without one, however
// names share prefixes.
func TestVerdictFindsEachMapping(t *testing.T) {
	for _, tc := range golden.Cases(t, "testdata") {
		res := translate.Translate(tc.Snapshot)
		for _, want := range res.Mappings {
			if got := res.Verdict(want.Namespace, want.Name); got != want {
				t.Errorf("%s: Verdict(%s, %s) = %v, want its verdict", tc.Name, want.Namespace, want.Name, got)
			}
			for _, other := range [][2]string{{want.Namespace, want.Name + "-x"}, {want.Namespace + "-x", want.Name}, {want.Namespace, want.Name[:len(want.Name)-1]}} {
				if got := res.Verdict(other[0], other[1]); got != nil && (got.Namespace != other[0] || got.Name != other[1]) {
					t.Errorf("%s: Verdict(%s, %s) is the verdict on %s/%s", tc.Name, other[0], other[1], got.Namespace, got.Name)
				}
			}
		}
		if got := res.Verdict("no-such-namespace", "none"); got != nil {
			t.Errorf("%s: a verdict on a mapping the case does not have: %v", tc.Name, got)
		}
	}
}
