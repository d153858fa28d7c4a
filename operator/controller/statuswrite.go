package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/metrics"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// statusWorkers bounds the status writes in flight for one reconcile.
const statusWorkers = 32

// defaultExpiryWarning is used when the HAProxy leaves
// certificateExpiryWarning unset.
const defaultExpiryWarning = 14 * 24 * time.Hour

// parallel runs the jobs with at most statusWorkers at once and joins
// their errors.
func parallel(ctx context.Context, jobs []func(context.Context) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, statusWorkers)
	for _, job := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := job(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// updateStatus writes the status want computes from the object, only when
// it changed; on a conflict it reads the object again from the API server
// (the cache may lag behind the operator's own writes).
func updateStatus[T client.Object](ctx context.Context, r *HAProxyReconciler, obj T, want func(T) bool) error {
	first := true
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				return err
			}
		}
		first = false
		if !want(obj) {
			return nil
		}
		return r.Client.Status().Update(ctx, obj)
	})
	return client.IgnoreNotFound(err)
}

// writeStatus sets the status compute gives obj, when it differs from the
// one it has, and returns the object's resourceVersion after.
func writeStatus[T client.Object, S any](ctx context.Context, r *HAProxyReconciler, kind string, obj T, status func(T) *S, compute func(T) S) (string, error) {
	// Most statuses are already right: check on obj, which may be shared
	// with the cache, and copy it only to change it.
	if equality.Semantic.DeepEqual(*status(obj), compute(obj)) {
		return obj.GetResourceVersion(), nil
	}
	obj = obj.DeepCopyObject().(T)
	err := updateStatus(ctx, r, obj, func(o T) bool {
		want, cur := compute(o), status(o)
		changed := !equality.Semantic.DeepEqual(*cur, want)
		*cur = want
		return changed
	})
	if err != nil {
		return "", fmt.Errorf("status of %s %s: %w", kind, klogRef(obj), err)
	}
	return obj.GetResourceVersion(), nil
}

// writeMapping sets the status compute gives a TCPMapping.
func (r *HAProxyReconciler) writeMapping(ctx context.Context, obj *v1alpha1.TCPMapping, compute func(*v1alpha1.TCPMapping) v1alpha1.TCPMappingStatus) (string, error) {
	return writeStatus(ctx, r, "TCPMapping", obj, func(o *v1alpha1.TCPMapping) *v1alpha1.TCPMappingStatus { return &o.Status }, compute)
}

// writeContext sets the status compute gives a TLSContext.
func (r *HAProxyReconciler) writeContext(ctx context.Context, obj *v1alpha1.TLSContext, compute func(*v1alpha1.TLSContext) v1alpha1.TLSContextStatus) error {
	_, err := writeStatus(ctx, r, "TLSContext", obj, func(o *v1alpha1.TLSContext) *v1alpha1.TLSContextStatus { return &o.Status }, compute)
	return err
}

// statusChange is what changed since the last reconcile: when its
// translation derives from the last one (since is that revision), the
// ports translated again; and the mappings whose objects changed (status
// writes included), whether or not that changed the translation.
type statusChange struct {
	since    uint64
	ports    []int32
	mappings []types.NamespacedName
	// objects are the cached objects of mappings and of the mappings
	// whose verdicts are on ports, read where the reconcile kept their
	// versions: the batch then looks at these alone, rather than
	// hashing the names of all 10,000 mappings to find them.
	objects map[types.NamespacedName]*v1alpha1.TCPMapping
	// serial names the input versions of this batch's reconcile; against
	// those of the last one, which mappings are counted against (0: none).
	serial, against uint64
}

// statusJobs are the writes that bring the status of every object this
// HAProxy serves up to date, drop its entry from objects it no longer
// serves, and write the HAProxy's own status; each writes only where
// something changed. When every mapping's status was found right at the
// last reconcile, with the same instances, only the mappings change
// names, and those whose verdicts are on its ports, are looked at.
func (r *HAProxyReconciler) statusJobs(hap *v1alpha1.HAProxy, snap *snapshot.Snapshot, res translate.Result, hash string, pods, ready int32, instances []instance, change statusChange) []func(context.Context) error {
	hapKey := klogRef(hap)
	now := r.now()
	warn := defaultExpiryWarning
	if hap.Spec.CertificateExpiryWarning != nil {
		warn = hap.Spec.CertificateExpiryWarning.Duration
	}
	var jobs []func(context.Context) error

	memo := r.statusMemoFor(hapKey)
	fleet := mappingFleet(instances)
	// Keyed without building strings, pointing into res: at 10,000
	// mappings, each batch built megabytes of keys and copies before.
	var served map[types.NamespacedName]*translate.MappingResult
	var only map[types.NamespacedName]bool
	switch base, baseFleet := memo.baseline(); {
	case base != 0 && base == change.against && baseFleet == fleet:
		// Every status was right at base: only the mappings whose objects
		// changed since, and those whose verdicts were reached again (on
		// the ports translated again), may need a write.
		only = make(map[types.NamespacedName]bool, len(change.mappings))
		for _, k := range change.mappings {
			only[k] = true
		}
		var ports map[int32]bool
		if change.since != 0 {
			ports = make(map[int32]bool, len(change.ports))
			for _, p := range change.ports {
				ports[p] = true
			}
		}
		served = map[types.NamespacedName]*translate.MappingResult{}
		for _, m := range res.Mappings {
			switch {
			case ports != nil && m.OnPorts(ports):
				k := types.NamespacedName{Namespace: m.Namespace, Name: m.Name}
				only[k], served[k] = true, m
			case len(change.mappings) > 0:
				if k := (types.NamespacedName{Namespace: m.Namespace, Name: m.Name}); only[k] {
					served[k] = m
				}
			}
		}
	default:
		served = make(map[types.NamespacedName]*translate.MappingResult, len(res.Mappings))
		for _, m := range res.Mappings {
			served[types.NamespacedName{Namespace: m.Namespace, Name: m.Name}] = m
		}
		memo.sweep(served)
	}
	visit := func(key types.NamespacedName, obj *v1alpha1.TCPMapping) {
		verdict, isServed := served[key]
		switch {
		case isServed:
			m := *verdict
			if memo.current(key, obj.ResourceVersion, m, fleet) {
				return
			}
			jobs = append(jobs, func(ctx context.Context) error {
				before := rejection(obj.Status.Parents, hapKey)
				rv, err := r.writeMapping(ctx, obj, func(o *v1alpha1.TCPMapping) v1alpha1.TCPMappingStatus {
					before = rejection(o.Status.Parents, hapKey)
					return mappingStatus(o, hapKey, m, instances)
				})
				if err != nil {
					return err
				}
				memo.record(key, rv, obj.ResourceVersion, m, fleet)
				if after := rejectionOf(m); after != nil && (before == nil || before.Reason != after.Reason || before.Message != after.Message) {
					r.Recorder.Eventf(obj, hap, corev1.EventTypeWarning, after.Reason, "Translate", "%s", after.Message)
				}
				return nil
			})
		case hasParent(obj.Status.Parents, hapKey):
			jobs = append(jobs, func(ctx context.Context) error {
				_, err := r.writeMapping(ctx, obj, func(o *v1alpha1.TCPMapping) v1alpha1.TCPMappingStatus { return mappingStatusWithout(o, hapKey) })
				return err
			})
		}
	}
	if only != nil {
		// A batch that looks at some mappings alone comes from a reconcile
		// that handed it their objects (changedObjects).
		keys := slices.SortedFunc(maps.Keys(only), func(a, b types.NamespacedName) int {
			return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
		})
		for _, key := range keys {
			// A mapping gone since has no object, and no status to write.
			if obj := change.objects[key]; obj != nil {
				visit(key, obj)
			}
		}
	} else {
		for _, obj := range snap.TCPMappings {
			visit(types.NamespacedName{Namespace: obj.Namespace, Name: obj.Name}, obj)
		}
	}
	jobs = memo.advanceWhenWritten(jobs, change.serial, fleet)

	servedContexts := map[string]translate.TLSContextResult{}
	for _, c := range res.TLSContexts {
		servedContexts[c.Namespace+"/"+c.Name] = c
	}
	for i := range snap.TLSContexts {
		obj := &snap.TLSContexts[i]
		c, isServed := servedContexts[obj.Namespace+"/"+obj.Name]
		switch {
		case isServed:
			if c.NotAfter != nil {
				metrics.CertificateExpiry.WithLabelValues(hapKey, c.Namespace, c.Name).Set(float64(c.NotAfter.Unix()))
			}
			jobs = append(jobs, func(ctx context.Context) error {
				before := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionCertificateExpiring)
				if err := r.writeContext(ctx, obj, func(o *v1alpha1.TLSContext) v1alpha1.TLSContextStatus {
					before = meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionCertificateExpiring)
					return contextStatus(o, hapKey, c, warn, now)
				}); err != nil {
					return err
				}
				after := expiryCondition(c.NotAfter, warn, now, obj.Generation)
				if after != nil && after.Status == metav1.ConditionTrue && (before == nil || before.Reason != after.Reason) {
					r.Recorder.Eventf(obj, hap, corev1.EventTypeWarning, after.Reason, "Translate", "%s", after.Message)
				}
				return nil
			})
		case hasParent(obj.Status.Parents, hapKey):
			metrics.CertificateExpiry.DeleteLabelValues(hapKey, obj.Namespace, obj.Name)
			jobs = append(jobs, func(ctx context.Context) error {
				return r.writeContext(ctx, obj, func(o *v1alpha1.TLSContext) v1alpha1.TLSContextStatus { return contextStatusWithout(o, hapKey) })
			})
		}
	}

	jobs = append(jobs, func(ctx context.Context) error {
		_, err := writeStatus(ctx, r, "HAProxy", hap, func(o *v1alpha1.HAProxy) *v1alpha1.HAProxyStatus { return &o.Status },
			func(o *v1alpha1.HAProxy) v1alpha1.HAProxyStatus {
				return haproxyStatus(o.Status, o, res, hash, pods, ready, instances)
			})
		return err
	})
	return jobs
}

// rejection is the first False Accepted or ResolvedRefs condition hap
// reported on an object.
func rejection(parents []v1alpha1.ParentStatus, hap string) *metav1.Condition {
	for _, p := range parents {
		if p.HAProxy == hap {
			return findCondition(p.Conditions, v1alpha1.ConditionAccepted, v1alpha1.ConditionResolvedRefs)
		}
	}
	return nil
}

func rejectionOf(m translate.MappingResult) *metav1.Condition {
	for _, c := range []metav1.Condition{
		condition(v1alpha1.ConditionAccepted, m.Accepted, m.Generation),
		condition(v1alpha1.ConditionResolvedRefs, m.ResolvedRefs, m.Generation),
	} {
		if c.Status == metav1.ConditionFalse {
			return &c
		}
	}
	return nil
}

// findCondition returns the first of the given types that is False.
func findCondition(conds []metav1.Condition, types ...string) *metav1.Condition {
	for _, t := range types {
		for i := range conds {
			if conds[i].Type == t && conds[i].Status == metav1.ConditionFalse {
				return &conds[i]
			}
		}
	}
	return nil
}

// releaseObjects drops hap's entry from every object that lists it, when
// the HAProxy goes away.
func (r *HAProxyReconciler) releaseObjects(ctx context.Context, hap *v1alpha1.HAProxy) error {
	hapKey := klogRef(hap)
	var mappings v1alpha1.TCPMappingList
	if err := r.Client.List(ctx, &mappings); err != nil {
		return fmt.Errorf("list TCPMappings: %w", err)
	}
	var contexts v1alpha1.TLSContextList
	if err := r.Client.List(ctx, &contexts); err != nil {
		return fmt.Errorf("list TLSContexts: %w", err)
	}
	var jobs []func(context.Context) error
	for i := range mappings.Items {
		if obj := &mappings.Items[i]; hasParent(obj.Status.Parents, hapKey) {
			jobs = append(jobs, func(ctx context.Context) error {
				_, err := r.writeMapping(ctx, obj, func(o *v1alpha1.TCPMapping) v1alpha1.TCPMappingStatus { return mappingStatusWithout(o, hapKey) })
				return err
			})
		}
	}
	for i := range contexts.Items {
		obj := &contexts.Items[i]
		metrics.CertificateExpiry.DeleteLabelValues(hapKey, obj.Namespace, obj.Name)
		if hasParent(obj.Status.Parents, hapKey) {
			jobs = append(jobs, func(ctx context.Context) error {
				return r.writeContext(ctx, obj, func(o *v1alpha1.TLSContext) v1alpha1.TLSContextStatus { return contextStatusWithout(o, hapKey) })
			})
		}
	}
	return parallel(ctx, jobs)
}

// changedObjects are the cached objects of the mappings a status batch
// may look at alone (statusChange.objects): those whose objects changed
// since versions were read against, and those whose verdicts in res are
// on the ports translated again. versions are kept (their overlay
// written), so each is found by its name among those kept.
func changedObjects(versions *inputVersions, res translate.Result, change statusChange) map[types.NamespacedName]*v1alpha1.TCPMapping {
	out := make(map[types.NamespacedName]*v1alpha1.TCPMapping, len(change.mappings))
	add := func(k types.NamespacedName) {
		if mv, ok := versions.mapping(k); ok {
			out[k] = mv.obj
		}
	}
	for _, k := range change.mappings {
		add(k)
	}
	if change.since != 0 && len(change.ports) > 0 {
		ports := make(map[int32]bool, len(change.ports))
		for _, p := range change.ports {
			ports[p] = true
		}
		for _, m := range res.Mappings {
			if m.OnPorts(ports) {
				add(types.NamespacedName{Namespace: m.Namespace, Name: m.Name})
			}
		}
	}
	return out
}
