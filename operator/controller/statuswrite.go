package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/metrics"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// statusWorkers bounds the status writes in flight for one reconcile.
const statusWorkers = 8

// defaultExpiryWarning is used when the HAProxy leaves
// certificateExpiryWarning unset.
const defaultExpiryWarning = 14 * 24 * time.Hour

// parallel runs the jobs with at most statusWorkers at once and joins
// their errors.
func parallel(jobs []func() error) error {
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
			if err := job(); err != nil {
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
// (the cache may lag behind the operator's own writes). It reports
// whether it wrote.
func updateStatus[T client.Object](ctx context.Context, r *HAProxyReconciler, obj T, fresh func() T, want func(T) bool) (bool, error) {
	wrote := false
	first := true
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			obj = fresh()
			if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				return client.IgnoreNotFound(err)
			}
		}
		first = false
		if !want(obj) {
			return nil
		}
		if err := r.Client.Status().Update(ctx, obj); err != nil {
			return err
		}
		wrote = true
		return nil
	})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return wrote, err
}

// writeStatuses writes, concurrently and only where something changed, the
// status of every object this HAProxy serves, drops its entry from objects
// it no longer serves, and writes the HAProxy's own status.
func (r *HAProxyReconciler) writeStatuses(ctx context.Context, hap *v1alpha1.HAProxy, snap *snapshot.Snapshot, res translate.Result, hash string, pods, ready int32, instances []instance) error {
	hapKey := klogRef(hap)
	now := r.now()
	warn := defaultExpiryWarning
	if hap.Spec.CertificateExpiryWarning != nil {
		warn = hap.Spec.CertificateExpiryWarning.Duration
	}
	mappings := map[string]*v1alpha1.TCPMapping{}
	for i := range snap.TCPMappings {
		m := &snap.TCPMappings[i]
		mappings[m.Namespace+"/"+m.Name] = m
	}
	contexts := map[string]*v1alpha1.TLSContext{}
	for i := range snap.TLSContexts {
		c := &snap.TLSContexts[i]
		contexts[c.Namespace+"/"+c.Name] = c
	}

	var jobs []func() error
	served := map[string]bool{}
	for _, m := range res.Mappings {
		key := m.Namespace + "/" + m.Name
		served[key] = true
		obj := mappings[key]
		if obj == nil {
			continue
		}
		jobs = append(jobs, func() error {
			var before *metav1.Condition
			_, err := updateStatus(ctx, r, obj.DeepCopy(), func() *v1alpha1.TCPMapping {
				return &v1alpha1.TCPMapping{ObjectMeta: metav1.ObjectMeta{Namespace: m.Namespace, Name: m.Name}}
			},
				func(o *v1alpha1.TCPMapping) bool {
					before = rejection(o.Status.Parents, hapKey)
					want := mappingStatus(o, hapKey, m, instances)
					if equality.Semantic.DeepEqual(o.Status, want) {
						return false
					}
					o.Status = want
					return true
				})
			if err != nil {
				return fmt.Errorf("status of TCPMapping %s: %w", key, err)
			}
			if after := rejectionOf(m); after != nil && (before == nil || before.Reason != after.Reason || before.Message != after.Message) {
				r.Recorder.Eventf(obj, hap, corev1.EventTypeWarning, after.Reason, "Translate", "%s", after.Message)
			}
			return nil
		})
	}
	for key, obj := range mappings {
		if served[key] || !hasParent(obj.Status.Parents, hapKey) {
			continue
		}
		jobs = append(jobs, func() error {
			_, err := updateStatus(ctx, r, obj.DeepCopy(), func() *v1alpha1.TCPMapping { return &v1alpha1.TCPMapping{ObjectMeta: obj.ObjectMeta} },
				func(o *v1alpha1.TCPMapping) bool {
					want := mappingStatusWithout(o, hapKey)
					if equality.Semantic.DeepEqual(o.Status, want) {
						return false
					}
					o.Status = want
					return true
				})
			if err != nil {
				return fmt.Errorf("status of TCPMapping %s: %w", key, err)
			}
			return nil
		})
	}

	servedContexts := map[string]bool{}
	for _, c := range res.TLSContexts {
		key := c.Namespace + "/" + c.Name
		servedContexts[key] = true
		obj := contexts[key]
		if obj == nil {
			continue
		}
		if c.NotAfter != nil {
			metrics.CertificateExpiry.WithLabelValues(hapKey, c.Namespace, c.Name).Set(float64(c.NotAfter.Unix()))
		}
		jobs = append(jobs, func() error {
			var before *metav1.Condition
			_, err := updateStatus(ctx, r, obj.DeepCopy(), func() *v1alpha1.TLSContext {
				return &v1alpha1.TLSContext{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: c.Name}}
			},
				func(o *v1alpha1.TLSContext) bool {
					before = meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionCertificateExpiring)
					want := contextStatus(o, hapKey, c, warn, now)
					if equality.Semantic.DeepEqual(o.Status, want) {
						return false
					}
					o.Status = want
					return true
				})
			if err != nil {
				return fmt.Errorf("status of TLSContext %s: %w", key, err)
			}
			after := expiryCondition(c.NotAfter, warn, now, obj.Generation)
			if after != nil && after.Status == metav1.ConditionTrue && (before == nil || before.Reason != after.Reason) {
				r.Recorder.Eventf(obj, hap, corev1.EventTypeWarning, after.Reason, "Translate", "%s", after.Message)
			}
			return nil
		})
	}
	for key, obj := range contexts {
		if servedContexts[key] || !hasParent(obj.Status.Parents, hapKey) {
			continue
		}
		metrics.CertificateExpiry.DeleteLabelValues(hapKey, obj.Namespace, obj.Name)
		jobs = append(jobs, func() error {
			_, err := updateStatus(ctx, r, obj.DeepCopy(), func() *v1alpha1.TLSContext { return &v1alpha1.TLSContext{ObjectMeta: obj.ObjectMeta} },
				func(o *v1alpha1.TLSContext) bool {
					want := contextStatusWithout(o, hapKey)
					if equality.Semantic.DeepEqual(o.Status, want) {
						return false
					}
					o.Status = want
					return true
				})
			if err != nil {
				return fmt.Errorf("status of TLSContext %s: %w", key, err)
			}
			return nil
		})
	}

	jobs = append(jobs, func() error {
		_, err := updateStatus(ctx, r, hap.DeepCopy(), func() *v1alpha1.HAProxy { return &v1alpha1.HAProxy{ObjectMeta: hap.ObjectMeta} },
			func(o *v1alpha1.HAProxy) bool {
				want := haproxyStatus(o.Status, o, res, hash, pods, ready, instances)
				if equality.Semantic.DeepEqual(o.Status, want) {
					return false
				}
				o.Status = want
				return true
			})
		if err != nil {
			return fmt.Errorf("status of HAProxy %s: %w", hapKey, err)
		}
		return nil
	})
	return parallel(jobs)
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
	var jobs []func() error
	for i := range mappings.Items {
		obj := &mappings.Items[i]
		if !hasParent(obj.Status.Parents, hapKey) {
			continue
		}
		jobs = append(jobs, func() error {
			_, err := updateStatus(ctx, r, obj, func() *v1alpha1.TCPMapping { return &v1alpha1.TCPMapping{ObjectMeta: obj.ObjectMeta} },
				func(o *v1alpha1.TCPMapping) bool {
					want := mappingStatusWithout(o, hapKey)
					changed := !equality.Semantic.DeepEqual(o.Status, want)
					o.Status = want
					return changed
				})
			return err
		})
	}
	for i := range contexts.Items {
		obj := &contexts.Items[i]
		metrics.CertificateExpiry.DeleteLabelValues(hapKey, obj.Namespace, obj.Name)
		if !hasParent(obj.Status.Parents, hapKey) {
			continue
		}
		jobs = append(jobs, func() error {
			_, err := updateStatus(ctx, r, obj, func() *v1alpha1.TLSContext { return &v1alpha1.TLSContext{ObjectMeta: obj.ObjectMeta} },
				func(o *v1alpha1.TLSContext) bool {
					want := contextStatusWithout(o, hapKey)
					changed := !equality.Semantic.DeepEqual(o.Status, want)
					o.Status = want
					return changed
				})
			return err
		})
	}
	return parallel(jobs)
}
