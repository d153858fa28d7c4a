package controller

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// instance is what one ready HAProxy pod runs after an apply.
type instance struct {
	// Pod is the Pod's name, or the external instance's.
	Pod string
	// URL is set for external instances.
	URL        string
	Programmed bool
	Hash       string
	// Reloaded: the apply reloaded HAProxy. Held: it needed a reload,
	// which was held back (see reloadPacer), and sent nothing.
	Reloaded, Held bool
	// Message says why the instance is not programmed; it may carry
	// HAProxy's messages, so it goes only to the HAProxy's own status,
	// never to a tenant's object.
	Message string
	// Reason is the machine reason when not programmed.
	Reason string
}

// excludedReasons are the reasons translate reports for objects HAProxy
// refused; they explain Programmed=False as well.
var excludedReasons = map[string]bool{
	v1alpha1.ReasonReloadFailed:       true,
	v1alpha1.ReasonInvalidTLSSettings: true,
	v1alpha1.ReasonRefusedByHAProxy:   true,
}

// mappingFleet is what a mapping's status reads of the instances (see
// programmedCondition): their names, whether each is programmed and why
// not. The configuration hash and HAProxy's messages, which change with
// every change of the text, go only to the HAProxy's status: a new
// endpoint must not make 10,000 mappings' statuses be looked at again.
func mappingFleet(instances []instance) string {
	var b strings.Builder
	for _, in := range instances {
		fmt.Fprintf(&b, "%q %v %q;", in.Pod, in.Programmed, in.Reason)
	}
	return b.String()
}

// programmedCondition says whether every ready instance runs a
// configuration containing the mapping. It makes no client call.
func programmedCondition(m translate.MappingResult, instances []instance) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionProgrammed, ObservedGeneration: m.Generation}
	inEffect := m.Programmable() || m.InEffectGeneration != 0
	switch {
	case !inEffect && excludedReasons[m.Accepted.Reason]:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, m.Accepted.Reason, "HAProxy refused this mapping's configuration; see the Accepted condition"
	case !inEffect:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.ReasonPending, "the mapping is not accepted or its references are not resolved"
	case len(instances) == 0:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.ReasonPending, "no HAProxy instance is ready"
	default:
		for _, in := range instances {
			if !in.Programmed {
				c.Status, c.Reason = metav1.ConditionFalse, in.Reason
				if c.Reason == "" {
					c.Reason = v1alpha1.ReasonApplyFailed
				}
				// The instance's own message may quote other tenants'
				// configuration: the HAProxy's status carries it.
				c.Message = fmt.Sprintf("instance %s does not run the configuration yet; the HAProxy's status says why", in.Pod)
				return c
			}
		}
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonProgrammed
		c.Message = fmt.Sprintf("running on %d instance(s) in frontend %s, backend %s", len(instances), m.Frontend, m.Backend)
		if m.InEffectGeneration != 0 && m.InEffectGeneration != m.Generation {
			c.Message = fmt.Sprintf("generation %d is running on %d instance(s) in frontend %s, backend %s; the newest generation is rejected",
				m.InEffectGeneration, len(instances), m.Frontend, m.Backend)
		}
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

// setParent puts entry in parents (keeping the transition times of
// conditions that did not change) and keeps the list sorted.
func setParent(parents []v1alpha1.ParentStatus, entry v1alpha1.ParentStatus, conds ...metav1.Condition) []v1alpha1.ParentStatus {
	out := make([]v1alpha1.ParentStatus, 0, len(parents)+1)
	found := false
	for _, p := range parents {
		if p.HAProxy == entry.HAProxy {
			entry.Conditions = p.Conditions
			found = true
			continue
		}
		out = append(out, p)
	}
	_ = found
	entry.Conditions = append([]metav1.Condition(nil), entry.Conditions...)
	for _, c := range conds {
		meta.SetStatusCondition(&entry.Conditions, c)
	}
	out = append(out, entry)
	sort.Slice(out, func(i, j int) bool { return out[i].HAProxy < out[j].HAProxy })
	return out
}

// withoutParent drops hap's entry.
func withoutParent(parents []v1alpha1.ParentStatus, hap string) []v1alpha1.ParentStatus {
	var out []v1alpha1.ParentStatus
	for _, p := range parents {
		if p.HAProxy != hap {
			out = append(out, p)
		}
	}
	return out
}

func hasParent(parents []v1alpha1.ParentStatus, hap string) bool {
	for _, p := range parents {
		if p.HAProxy == hap {
			return true
		}
	}
	return false
}

// aggregate sums the parents' conditions of the given types up into conds:
// True when every parent says True; otherwise the first parent's False (or
// Unknown) condition, prefixed with the HAProxy it comes from. With no
// parent, the object is not served at all.
func aggregate(conds *[]metav1.Condition, parents []v1alpha1.ParentStatus, generation int64, types ...string) {
	for _, t := range types {
		c := metav1.Condition{Type: t, ObservedGeneration: generation}
		if len(parents) == 0 {
			c.Status, c.Reason = metav1.ConditionFalse, v1alpha1.ReasonNotSelected
			c.Message = "no HAProxy selects this object; check the HAProxy resources' namespaceSelector and mappingSelector"
			meta.SetStatusCondition(conds, c)
			continue
		}
		c.Status = metav1.ConditionTrue
		var trueMsgs []string
		for _, p := range parents {
			pc := meta.FindStatusCondition(p.Conditions, t)
			if pc == nil {
				c.Status, c.Reason, c.Message = metav1.ConditionUnknown, v1alpha1.ReasonPending, fmt.Sprintf("HAProxy %s has not reported yet", p.HAProxy)
				break
			}
			if pc.Status != metav1.ConditionTrue {
				c.Status, c.Reason = pc.Status, pc.Reason
				c.Message = pc.Message
				if len(parents) > 1 {
					c.Message = fmt.Sprintf("HAProxy %s: %s", p.HAProxy, pc.Message)
				}
				break
			}
			c.Reason = pc.Reason
			trueMsgs = append(trueMsgs, pc.Message)
		}
		if c.Status == metav1.ConditionTrue {
			c.Message = trueMsgs[0]
			if len(parents) > 1 {
				c.Message = fmt.Sprintf("true in all %d HAProxies that serve it", len(parents))
			}
		}
		meta.SetStatusCondition(conds, c)
	}
}

var mappingConditions = []string{v1alpha1.ConditionAccepted, v1alpha1.ConditionResolvedRefs, v1alpha1.ConditionProgrammed}

// mappingStatus is the status a TCPMapping should have after HAProxy hap
// translated and applied it.
func mappingStatus(obj *v1alpha1.TCPMapping, hap string, m translate.MappingResult, instances []instance) v1alpha1.TCPMappingStatus {
	st := *obj.Status.DeepCopy()
	st.Parents = setParent(st.Parents, v1alpha1.ParentStatus{HAProxy: hap, Frontend: m.Frontend, Backend: m.Backend},
		condition(v1alpha1.ConditionAccepted, m.Accepted, m.Generation),
		condition(v1alpha1.ConditionResolvedRefs, m.ResolvedRefs, m.Generation),
		programmedCondition(m, instances))
	// Only an https:// service has an upstream to verify; a mapping that
	// no longer has one loses the condition.
	for i := range st.Parents {
		if st.Parents[i].HAProxy != hap {
			continue
		}
		if m.UpstreamTLSVerified != nil {
			meta.SetStatusCondition(&st.Parents[i].Conditions, condition(v1alpha1.ConditionUpstreamTLSVerified, *m.UpstreamTLSVerified, m.Generation))
		} else {
			meta.RemoveStatusCondition(&st.Parents[i].Conditions, v1alpha1.ConditionUpstreamTLSVerified)
		}
	}
	finishMappingStatus(&st, obj.Generation)
	if m.RecordsSpecAsAccepted(obj.Generation) {
		st.LastAccepted = &v1alpha1.AcceptedTCPMapping{Generation: obj.Generation, Spec: *obj.Spec.DeepCopy()}
	}
	return st
}

// mappingStatusWithout is the status a TCPMapping should have once hap no
// longer serves it.
func mappingStatusWithout(obj *v1alpha1.TCPMapping, hap string) v1alpha1.TCPMappingStatus {
	st := *obj.Status.DeepCopy()
	st.Parents = withoutParent(st.Parents, hap)
	finishMappingStatus(&st, obj.Generation)
	return st
}

func finishMappingStatus(st *v1alpha1.TCPMappingStatus, generation int64) {
	aggregate(&st.Conditions, st.Parents, generation, mappingConditions...)
	verified := false
	for _, p := range st.Parents {
		verified = verified || meta.FindStatusCondition(p.Conditions, v1alpha1.ConditionUpstreamTLSVerified) != nil
	}
	if verified {
		aggregate(&st.Conditions, st.Parents, generation, v1alpha1.ConditionUpstreamTLSVerified)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionUpstreamTLSVerified)
	}
	st.Frontend, st.Backend = "", ""
	if len(st.Parents) > 0 {
		st.Frontend, st.Backend = st.Parents[0].Frontend, st.Parents[0].Backend
	}
}

var contextConditions = []string{v1alpha1.ConditionAccepted, v1alpha1.ConditionResolvedRefs}

// contextStatus is the status a TLSContext should have after HAProxy hap
// translated it; warnBefore is how long before expiry a certificate is
// reported as expiring.
func contextStatus(obj *v1alpha1.TLSContext, hap string, c translate.TLSContextResult, warnBefore time.Duration, now time.Time) v1alpha1.TLSContextStatus {
	st := *obj.Status.DeepCopy()
	st.Parents = setParent(st.Parents, v1alpha1.ParentStatus{HAProxy: hap},
		condition(v1alpha1.ConditionAccepted, c.Accepted, c.Generation),
		condition(v1alpha1.ConditionResolvedRefs, c.ResolvedRefs, c.Generation))
	aggregate(&st.Conditions, st.Parents, obj.Generation, contextConditions...)
	st.NotAfter = nil
	if c.NotAfter != nil {
		t := metav1.NewTime(*c.NotAfter)
		st.NotAfter = &t
	}
	st.DNSNames = c.DNSNames
	if exp := expiryCondition(c.NotAfter, warnBefore, now, obj.Generation); exp != nil {
		meta.SetStatusCondition(&st.Conditions, *exp)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionCertificateExpiring)
	}
	if c.Accepted.Status && c.ResolvedRefs.Status && c.InEffectGeneration == obj.Generation && obj.Generation != 0 {
		st.LastAccepted = &v1alpha1.AcceptedTLSContext{Generation: obj.Generation, Spec: *obj.Spec.DeepCopy()}
	}
	return st
}

// contextStatusWithout is the status a TLSContext should have once hap
// no longer serves it.
func contextStatusWithout(obj *v1alpha1.TLSContext, hap string) v1alpha1.TLSContextStatus {
	st := *obj.Status.DeepCopy()
	st.Parents = withoutParent(st.Parents, hap)
	aggregate(&st.Conditions, st.Parents, obj.Generation, contextConditions...)
	return st
}

// expiryCondition says whether a certificate expires within warnBefore;
// nil when there is no certificate to judge.
func expiryCondition(notAfter *time.Time, warnBefore time.Duration, now time.Time, generation int64) *metav1.Condition {
	if notAfter == nil {
		return nil
	}
	c := &metav1.Condition{Type: v1alpha1.ConditionCertificateExpiring, ObservedGeneration: generation}
	day := notAfter.UTC().Format(time.RFC3339)
	switch left := notAfter.Sub(now); {
	case left <= 0:
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonCertificateExpired
		c.Message = fmt.Sprintf("the certificate expired at %s; clients refuse it", day)
	case left <= warnBefore:
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonCertificateExpiring
		c.Message = fmt.Sprintf("the certificate expires at %s, in %s; renew its Secret", day, left.Round(time.Hour))
	default:
		c.Status, c.Reason = metav1.ConditionFalse, v1alpha1.ReasonCertificateValid
		c.Message = fmt.Sprintf("the certificate is valid until %s", day)
	}
	return c
}

// haproxyStatus is the status an HAProxy should have.
func haproxyStatus(current v1alpha1.HAProxyStatus, hap *v1alpha1.HAProxy, res translate.Result, hash string, pods, ready int32, instances []instance) v1alpha1.HAProxyStatus {
	st := *current.DeepCopy()
	st.ObservedGeneration = hap.Generation
	st.Replicas, st.ReadyReplicas, st.Selector = pods, ready, ScaleSelector(hap)
	st.ConfigHash = hash
	st.Instances = nil
	st.ProgrammedReplicas = 0
	for _, in := range instances {
		st.Instances = append(st.Instances, v1alpha1.InstanceStatus{Pod: in.Pod, URL: in.URL, ConfigHash: in.Hash, Programmed: in.Programmed, Message: in.Message})
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
	if external(hap) {
		want = int32(len(hap.Spec.ExternalInstances))
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
		for _, in := range instances {
			if !in.Programmed {
				if in.Reason != "" {
					prog.Reason = in.Reason
				}
				prog.Message += fmt.Sprintf("; %s: %s", in.Pod, in.Message)
				break
			}
		}
	default:
		prog.Status, prog.Reason = metav1.ConditionTrue, v1alpha1.ReasonProgrammed
		prog.Message = fmt.Sprintf("every ready instance runs configuration %s", hash)
	}
	meta.SetStatusCondition(&st.Conditions, prog)
	meta.SetStatusCondition(&st.Conditions, condition(v1alpha1.ConditionReferenceGrants, res.ReferenceGrants, hap.Generation))
	return st
}
