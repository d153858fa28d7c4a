package controller

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
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
		Mappings: []*translate.MappingResult{
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

func accepted(gen int64) translate.MappingResult {
	return translate.MappingResult{
		Namespace: "team-a", Name: "m", Generation: gen, InEffectGeneration: gen,
		Frontend: "tcpm-fe-2222", Backend: "tcpm-be-2222",
		Accepted:     translate.Condition{Status: true, Reason: v1alpha1.ReasonAccepted},
		ResolvedRefs: translate.Condition{Status: true, Reason: v1alpha1.ReasonResolved},
	}
}

func TestMappingStatusKeepsOneEntryPerHAProxy(t *testing.T) {
	obj := &v1alpha1.TCPMapping{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "m", Generation: 1}, Spec: v1alpha1.TCPMappingSpec{Port: 2222, Service: "qotm"}}
	ok := []instance{{Pod: "p", Programmed: true}}
	obj.Status = mappingStatus(obj, "edge/one", accepted(1), ok)
	rejected := accepted(1)
	rejected.InEffectGeneration = 0
	rejected.Accepted = translate.Condition{Reason: v1alpha1.ReasonConflict, Message: "port 2222 is owned by TCPMapping team-b/x"}
	obj.Status = mappingStatus(obj, "edge/two", rejected, ok)

	if len(obj.Status.Parents) != 2 || obj.Status.Parents[0].HAProxy != "edge/one" || obj.Status.Parents[1].HAProxy != "edge/two" {
		t.Fatalf("parents: %+v", obj.Status.Parents)
	}
	agg := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionAccepted)
	if agg.Status != metav1.ConditionFalse || agg.Reason != v1alpha1.ReasonConflict || !strings.Contains(agg.Message, "HAProxy edge/two") {
		t.Errorf("a rejection by one of two HAProxies sums up as %s/%s %q", agg.Status, agg.Reason, agg.Message)
	}
	if obj.Status.LastAccepted == nil || obj.Status.LastAccepted.Generation != 1 || obj.Status.LastAccepted.Spec.Port != 2222 {
		t.Errorf("the accepted generation is not remembered: %+v", obj.Status.LastAccepted)
	}

	obj.Status = mappingStatusWithout(obj, "edge/two")
	agg = meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionProgrammed)
	if agg.Status != metav1.ConditionTrue {
		t.Errorf("with the rejecting HAProxy gone, Programmed = %s/%s", agg.Status, agg.Reason)
	}
	obj.Status = mappingStatusWithout(obj, "edge/one")
	for _, typ := range mappingConditions {
		c := meta.FindStatusCondition(obj.Status.Conditions, typ)
		if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonNotSelected {
			t.Errorf("with no HAProxy left, %s = %s/%s, want False/NotSelected", typ, c.Status, c.Reason)
		}
	}
}

func TestProgrammedNeverCarriesTheInstanceMessage(t *testing.T) {
	secret := "haproxy refused: [ALERT] parsing [haproxy.cfg:40]: proxy 'tcpm-fe-team-b-9000'"
	c := programmedCondition(accepted(2), []instance{{Pod: "p", Message: secret, Reason: v1alpha1.ReasonApplyFailed}})
	if c.Status != metav1.ConditionFalse || strings.Contains(c.Message, "team-b") || strings.Contains(c.Message, "ALERT") {
		t.Errorf("condition %s %q quotes the instance's error", c.Status, c.Message)
	}
}

func TestProgrammedSaysWhichGenerationServes(t *testing.T) {
	m := accepted(3)
	m.InEffectGeneration = 2
	m.Accepted = translate.Condition{Reason: v1alpha1.ReasonPreviousGenerationInEffect, Message: "weights sum to 110"}
	c := programmedCondition(m, []instance{{Pod: "p", Programmed: true}})
	if c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "generation 2") {
		t.Errorf("previous generation in effect: %s %q", c.Status, c.Message)
	}
	m.InEffectGeneration = 0
	m.Accepted = translate.Condition{Reason: v1alpha1.ReasonReloadFailed, Message: "cannot bind 192.0.2.55:3600"}
	c = programmedCondition(m, []instance{{Pod: "p", Programmed: true}})
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonReloadFailed {
		t.Errorf("an object HAProxy refused: %s/%s", c.Status, c.Reason)
	}
}

func TestExpiryCondition(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	tests := map[string]struct {
		notAfter *time.Time
		status   metav1.ConditionStatus
		reason   string
	}{
		"a certificate valid for a year is not expiring": {at(365 * 24 * time.Hour), metav1.ConditionFalse, v1alpha1.ReasonCertificateValid},
		"a certificate expiring in a week warns":         {at(7 * 24 * time.Hour), metav1.ConditionTrue, v1alpha1.ReasonCertificateExpiring},
		"an expired certificate says it expired":         {at(-time.Hour), metav1.ConditionTrue, v1alpha1.ReasonCertificateExpired},
		"exactly at the warning window it already warns": {at(14 * 24 * time.Hour), metav1.ConditionTrue, v1alpha1.ReasonCertificateExpiring},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := expiryCondition(tc.notAfter, 14*24*time.Hour, now, 1)
			if c.Status != tc.status || c.Reason != tc.reason {
				t.Errorf("got %s/%s, want %s/%s", c.Status, c.Reason, tc.status, tc.reason)
			}
		})
	}
	if expiryCondition(nil, time.Hour, now, 1) != nil {
		t.Error("no certificate, yet a verdict")
	}
}

func TestUpstreamTLSVerifiedComesAndGoesWithTheHTTPSUpstream(t *testing.T) {
	obj := &v1alpha1.TCPMapping{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "m", Generation: 1}, Spec: v1alpha1.TCPMappingSpec{Port: 2222, Service: "https://qotm"}}
	ok := []instance{{Pod: "p", Programmed: true}}
	skipping := accepted(1)
	skipping.UpstreamTLSVerified = &translate.Condition{Reason: v1alpha1.ReasonInsecureSkipVerify, Message: "the upstream's certificate is not verified"}
	obj.Status = mappingStatus(obj, "edge/one", skipping, ok)
	for _, conds := range [][]metav1.Condition{obj.Status.Parents[0].Conditions, obj.Status.Conditions} {
		c := meta.FindStatusCondition(conds, v1alpha1.ConditionUpstreamTLSVerified)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonInsecureSkipVerify {
			t.Fatalf("insecureSkipVerify gives UpstreamTLSVerified %+v", c)
		}
	}

	obj.Generation = 2
	obj.Status = mappingStatus(obj, "edge/one", accepted(2), ok)
	if c := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionUpstreamTLSVerified); c != nil {
		t.Errorf("a mapping without an https:// upstream keeps %+v", c)
	}
	if c := meta.FindStatusCondition(obj.Status.Parents[0].Conditions, v1alpha1.ConditionUpstreamTLSVerified); c != nil {
		t.Errorf("its HAProxy entry keeps %+v", c)
	}
}

// TestMappingFleetHoldsWhatMappingStatusesRead: the status memo skips a
// mapping whose instances' fleet is unchanged, so two instance lists with
// the same fleet must give every mapping the same status, and a change
// of configuration hash or instance message must not change the fleet.
func TestMappingFleetHoldsWhatMappingStatusesRead(t *testing.T) {
	results := []translate.MappingResult{
		{Name: "m", Generation: 3, Frontend: "fe", Backend: "be",
			Accepted:     translate.Condition{Status: true, Reason: v1alpha1.ReasonAccepted},
			ResolvedRefs: translate.Condition{Status: true, Reason: v1alpha1.ReasonResolved}},
		{Name: "m", Generation: 4, Frontend: "fe", Backend: "be", InEffectGeneration: 3,
			Accepted:     translate.Condition{Reason: v1alpha1.ReasonConflict},
			ResolvedRefs: translate.Condition{Status: true, Reason: v1alpha1.ReasonResolved}},
		{Name: "m", Generation: 3, Accepted: translate.Condition{Reason: v1alpha1.ReasonConflict}},
	}
	fleets := [][]instance{
		nil,
		{{Pod: "a", Programmed: true, Hash: "h1"}},
		{{Pod: "a", Programmed: true, Hash: "h2", Message: "ran h2"}},
		{{Pod: "a", Programmed: true, Hash: "h1"}, {Pod: "b", Programmed: true, Hash: "h1"}},
		{{Pod: "a", Programmed: true, Hash: "h1"}, {Pod: "b", Hash: "h0", Message: "refused: line 3"}},
		{{Pod: "a", Programmed: true, Hash: "h1"}, {Pod: "b", Hash: "h0", Message: "timeout"}},
		{{Pod: "a", Programmed: true, Hash: "h1"}, {Pod: "b", Reason: v1alpha1.ReasonReloadFailed}},
		{{Pod: "b", Programmed: true, Hash: "h1"}, {Pod: "a", Reason: v1alpha1.ReasonReloadFailed}},
		{{Pod: "c", Programmed: true, Hash: "h1"}},
		{{Pod: "a", URL: "https://a", Programmed: true, Hash: "h1"}},
	}
	obj := &v1alpha1.TCPMapping{}
	obj.Name, obj.Namespace, obj.Generation = "m", "ns", 3
	for _, m := range results {
		for i, a := range fleets {
			for j, b := range fleets {
				if mappingFleet(a) != mappingFleet(b) {
					continue
				}
				sa, sb := withoutTimes(mappingStatus(obj, "ns/edge", m, a)), withoutTimes(mappingStatus(obj, "ns/edge", m, b))
				if !equality.Semantic.DeepEqual(sa, sb) {
					t.Errorf("fleets %d and %d are the same fleet, yet give %+v and %+v", i, j, sa, sb)
				}
			}
		}
	}
	if mappingFleet(fleets[1]) != mappingFleet(fleets[2]) {
		t.Error("a new configuration hash or instance message changes the fleet: every mapping's status is looked at again")
	}
	if mappingFleet(fleets[4]) != mappingFleet(fleets[5]) {
		t.Error("HAProxy's message about an instance changes the fleet")
	}
	for _, pair := range [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, 6}, {6, 7}, {1, 8}} {
		i, j := pair[0], pair[1]
		if mappingFleet(fleets[i]) == mappingFleet(fleets[j]) {
			t.Errorf("fleets %d and %d differ in what a mapping's status says, yet are the same fleet", i, j)
		}
	}
}

// withoutTimes is st without its conditions' transition times, which are
// the clock's.
func withoutTimes(st v1alpha1.TCPMappingStatus) v1alpha1.TCPMappingStatus {
	for i := range st.Conditions {
		st.Conditions[i].LastTransitionTime = metav1.Time{}
	}
	for i := range st.Parents {
		for j := range st.Parents[i].Conditions {
			st.Parents[i].Conditions[j].LastTransitionTime = metav1.Time{}
		}
	}
	return st
}
