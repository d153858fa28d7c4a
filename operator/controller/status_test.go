package controller

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

func TestProgrammedCondition(t *testing.T) {
	accepted := translate.MappingResult{
		Name: "m", Generation: 3, Frontend: "tcpm-fe-2222", Backend: "tcpm-be-2222",
		Accepted:     translate.Condition{Status: true, Reason: v1alpha1.ReasonAccepted},
		ResolvedRefs: translate.Condition{Status: true, Reason: v1alpha1.ReasonResolved},
	}
	rejected := accepted
	rejected.Accepted = translate.Condition{Reason: v1alpha1.ReasonConflict}
	ok := instance{Pod: "a", Programmed: true, Hash: "h"}
	failed := instance{Pod: "b", Message: "apply failed: refused"}
	tests := map[string]struct {
		mapping   translate.MappingResult
		instances []instance
		status    metav1.ConditionStatus
		reason    string
	}{
		"an accepted mapping on every ready instance is programmed": {accepted, []instance{ok, ok}, metav1.ConditionTrue, v1alpha1.ReasonProgrammed},
		"one instance that failed keeps it unprogrammed":            {accepted, []instance{ok, failed}, metav1.ConditionFalse, v1alpha1.ReasonApplyFailed},
		"no ready instance means pending":                           {accepted, nil, metav1.ConditionFalse, v1alpha1.ReasonPending},
		"a rejected mapping is never programmed":                    {rejected, []instance{ok}, metav1.ConditionFalse, v1alpha1.ReasonPending},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := programmedCondition(tc.mapping, tc.instances)
			if c.Status != tc.status || c.Reason != tc.reason || c.ObservedGeneration != 3 {
				t.Errorf("got %s/%s (generation %d), want %s/%s", c.Status, c.Reason, c.ObservedGeneration, tc.status, tc.reason)
			}
		})
	}
}

func TestHAProxyStatusCountsInstances(t *testing.T) {
	hap := &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Generation: 2}, Spec: v1alpha1.HAProxySpec{Replicas: ptr.To(int32(2))}}
	res := translate.Result{
		HAProxy: translate.Condition{Status: true},
		Mappings: []translate.MappingResult{
			{Accepted: translate.Condition{Status: true}, ResolvedRefs: translate.Condition{Status: true}},
			{Accepted: translate.Condition{Reason: v1alpha1.ReasonConflict}, ResolvedRefs: translate.Condition{Status: true}},
		},
	}
	st := haproxyStatus(v1alpha1.HAProxyStatus{}, hap, res, "h1", 2, 2, []instance{
		{Pod: "a", Programmed: true, Hash: "h1"},
		{Pod: "b", Message: "apply failed"},
	})
	if st.ProgrammedReplicas != 1 || st.ReadyReplicas != 2 || st.AcceptedMappings != 1 || st.RejectedMappings != 1 {
		t.Errorf("counts: %+v", st)
	}
	for _, c := range st.Conditions {
		switch c.Type {
		case v1alpha1.ConditionReady:
			if c.Status != metav1.ConditionTrue {
				t.Errorf("Ready = %s, want True with 2 of 2 ready", c.Status)
			}
		case v1alpha1.ConditionProgrammed:
			if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonApplyFailed {
				t.Errorf("Programmed = %s/%s, want False/ApplyFailed with one instance behind", c.Status, c.Reason)
			}
		}
	}
	again := haproxyStatus(st, hap, res, "h1", 2, 2, []instance{{Pod: "a", Programmed: true, Hash: "h1"}, {Pod: "b", Message: "apply failed"}})
	if again.Conditions[0].LastTransitionTime != st.Conditions[0].LastTransitionTime {
		t.Error("an unchanged status moved its transition time, so it would be written again")
	}
}
