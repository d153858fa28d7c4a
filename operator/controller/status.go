package controller

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// instance is what one ready HAProxy pod runs after an apply.
type instance struct {
	Pod        string
	Programmed bool
	Hash       string
	Message    string
}

// programmedCondition says whether every ready instance runs a
// configuration containing the mapping. It makes no client call.
func programmedCondition(m translate.MappingResult, instances []instance) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionProgrammed, ObservedGeneration: m.Generation}
	switch {
	case !m.Programmable():
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.ReasonPending, "the mapping is not accepted or its references are not resolved"
	case len(instances) == 0:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.ReasonPending, "no HAProxy instance is ready"
	default:
		for _, in := range instances {
			if !in.Programmed {
				c.Status, c.Reason = metav1.ConditionFalse, v1alpha1.ReasonApplyFailed
				c.Message = fmt.Sprintf("instance %s: %s", in.Pod, in.Message)
				return c
			}
		}
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonProgrammed
		c.Message = fmt.Sprintf("running on %d instance(s) in frontend %s, backend %s", len(instances), m.Frontend, m.Backend)
	}
	return c
}

func condition(t string, c translate.Condition, generation int64) metav1.Condition {
	status := metav1.ConditionFalse
	if c.Status {
		status = metav1.ConditionTrue
	}
	msg := c.Message
	if msg == "" {
		msg = c.Reason
	}
	return metav1.Condition{Type: t, Status: status, Reason: c.Reason, Message: msg, ObservedGeneration: generation}
}

// mappingStatus is the status a TCPMapping should have.
func mappingStatus(current v1alpha1.TCPMappingStatus, m translate.MappingResult, instances []instance) v1alpha1.TCPMappingStatus {
	st := *current.DeepCopy()
	meta.SetStatusCondition(&st.Conditions, condition(v1alpha1.ConditionAccepted, m.Accepted, m.Generation))
	meta.SetStatusCondition(&st.Conditions, condition(v1alpha1.ConditionResolvedRefs, m.ResolvedRefs, m.Generation))
	meta.SetStatusCondition(&st.Conditions, programmedCondition(m, instances))
	st.Frontend, st.Backend = m.Frontend, m.Backend
	return st
}

// contextStatus is the status a TLSContext should have.
func contextStatus(current v1alpha1.TLSContextStatus, c translate.TLSContextResult) v1alpha1.TLSContextStatus {
	st := *current.DeepCopy()
	meta.SetStatusCondition(&st.Conditions, condition(v1alpha1.ConditionAccepted, c.Accepted, c.Generation))
	meta.SetStatusCondition(&st.Conditions, condition(v1alpha1.ConditionResolvedRefs, c.ResolvedRefs, c.Generation))
	st.NotAfter = nil
	if c.NotAfter != nil {
		t := metav1.NewTime(*c.NotAfter)
		st.NotAfter = &t
	}
	st.DNSNames = c.DNSNames
	return st
}

// haproxyStatus is the status an HAProxy should have.
func haproxyStatus(current v1alpha1.HAProxyStatus, hap *v1alpha1.HAProxy, res translate.Result, hash string, pods, ready int32, instances []instance) v1alpha1.HAProxyStatus {
	st := *current.DeepCopy()
	st.ObservedGeneration = hap.Generation
	st.Replicas, st.ReadyReplicas = pods, ready
	st.ConfigHash = hash
	st.Instances = nil
	st.ProgrammedReplicas = 0
	for _, in := range instances {
		st.Instances = append(st.Instances, v1alpha1.InstanceStatus{Pod: in.Pod, ConfigHash: in.Hash, Programmed: in.Programmed, Message: in.Message})
		if in.Programmed {
			st.ProgrammedReplicas++
		}
	}
	st.AcceptedMappings, st.RejectedMappings = 0, 0
	for _, m := range res.Mappings {
		if m.Programmable() {
			st.AcceptedMappings++
		} else {
			st.RejectedMappings++
		}
	}
	want := int32(1)
	if hap.Spec.Replicas != nil {
		want = *hap.Spec.Replicas
	}
	readyCond := metav1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: hap.Generation}
	if ready >= want && want > 0 {
		readyCond.Status, readyCond.Reason, readyCond.Message = metav1.ConditionTrue, "InstancesReady", fmt.Sprintf("%d of %d instances ready", ready, want)
	} else {
		readyCond.Status, readyCond.Reason, readyCond.Message = metav1.ConditionFalse, "InstancesNotReady", fmt.Sprintf("%d of %d instances ready", ready, want)
	}
	meta.SetStatusCondition(&st.Conditions, readyCond)
	prog := metav1.Condition{Type: v1alpha1.ConditionProgrammed, ObservedGeneration: hap.Generation}
	switch {
	case !res.HAProxy.Status:
		prog.Status, prog.Reason, prog.Message = metav1.ConditionFalse, res.HAProxy.Reason, res.HAProxy.Message
	case ready == 0:
		prog.Status, prog.Reason, prog.Message = metav1.ConditionFalse, v1alpha1.ReasonPending, "no instance is ready"
	case st.ProgrammedReplicas < ready:
		prog.Status, prog.Reason = metav1.ConditionFalse, v1alpha1.ReasonApplyFailed
		prog.Message = fmt.Sprintf("%d of %d ready instances run configuration %s", st.ProgrammedReplicas, ready, hash)
	default:
		prog.Status, prog.Reason = metav1.ConditionTrue, v1alpha1.ReasonProgrammed
		prog.Message = fmt.Sprintf("every ready instance runs configuration %s", hash)
	}
	meta.SetStatusCondition(&st.Conditions, prog)
	return st
}
