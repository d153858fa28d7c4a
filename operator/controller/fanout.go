package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/apply"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/metrics"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/render"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// instanceTimeout bounds one apply to one instance, a reload included, so
// a frozen instance holds its HAProxy's reconcile for this long at most.
const instanceTimeout = 90 * time.Second

// maxExclusionRounds bounds how many times one reconcile leaves out
// refused objects and applies again.
const maxExclusionRounds = 4

func (r *HAProxyReconciler) applierFor(hap *v1alpha1.HAProxy) *apply.Applier {
	key := types.NamespacedName{Namespace: hap.Namespace, Name: hap.Name}
	a, _ := r.appliers.LoadOrStore(key, apply.NewApplier())
	return a.(*apply.Applier)
}

// applyAll applies the configuration to every instance at once. It
// returns each instance's state and, when HAProxy refused the
// configuration, the first refusal and the instance that said it.
func (r *HAProxyReconciler) applyAll(ctx context.Context, hap *v1alpha1.HAProxy, targets []target, desired apply.Desired, hash string) ([]instance, *apply.RefusedError, *target) {
	out := make([]instance, len(targets))
	refusals := make([]*apply.RefusedError, len(targets))
	applier := r.applierFor(hap)
	var wg sync.WaitGroup
	for i := range targets {
		tg := &targets[i]
		if tg.unusable != "" {
			out[i] = instance{Pod: tg.name, URL: tg.url, Reason: v1alpha1.ReasonInstanceUnreachable, Message: tg.unusable}
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			logger := log.FromContext(ctx).WithValues("instance", tg.name, "endpoint", tg.endpoint)
			// Events go to the Pod when there is one, else to the HAProxy.
			var related runtime.Object = hap
			if tg.pod != nil {
				related = tg.pod
			}
			ictx, cancel := context.WithTimeout(ctx, instanceTimeout)
			defer cancel()
			start := time.Now()
			outcome, err := applier.Apply(ictx, tg.endpoint, tg.client, desired)
			metrics.ApplyDuration.WithLabelValues(klogRef(hap)).Observe(time.Since(start).Seconds())
			metrics.Applies.WithLabelValues(klogRef(hap), outcomeLabel(outcome, err)).Inc()
			if err != nil {
				in := instance{Pod: tg.name, URL: tg.url, Reason: v1alpha1.ReasonApplyFailed, Message: fmt.Sprintf("apply failed: %v", err)}
				var refused *apply.RefusedError
				switch {
				case errors.As(err, &refused):
					refusals[i] = refused
					if refused.Stage == apply.StageReload {
						in.Reason = v1alpha1.ReasonReloadFailed
					}
				case errors.Is(err, context.DeadlineExceeded):
					in.Reason = v1alpha1.ReasonInstanceUnreachable
					in.Message = fmt.Sprintf("the instance did not answer within %s: %v", instanceTimeout, err)
				}
				logger.Error(err, "Apply failed")
				r.Recorder.Eventf(hap, related, corev1.EventTypeWarning, in.Reason, "Apply", "Applying configuration %s to %s failed: %v", hash, tg.name, err)
				out[i] = in
				return
			}
			if outcome.Changed {
				how := "at runtime, without reload"
				if outcome.Reloaded {
					how = "with a reload"
				}
				logger.Info("Applied configuration", "hash", hash, "reloaded", outcome.Reloaded, "actions", len(outcome.Actions), "certificates", len(outcome.Certificates))
				r.Recorder.Eventf(hap, related, corev1.EventTypeNormal, "Applied", "Apply", "Configuration %s applied to %s %s", hash, tg.name, how)
			}
			if outcome.Held {
				out[i] = instance{Pod: tg.name, URL: tg.url, Reason: v1alpha1.ReasonPending, Held: true}
				return
			}
			out[i] = instance{Pod: tg.name, URL: tg.url, Programmed: true, Hash: hash, Reloaded: outcome.Reloaded}
		}(i)
	}
	wg.Wait()
	for i, rf := range refusals {
		if rf != nil {
			return out, rf, &targets[i]
		}
	}
	return out, nil, nil
}

// blame finds the objects a refusal is about: by the proxies and files
// HAProxy's lines name, or, when the lines name none and the refusal came
// from the configuration check, by bisecting over the objects with
// validation-only requests to the instance that refused.
func (r *HAProxyReconciler) blame(ctx context.Context, refusedBy *target, snap *snapshot.Snapshot, res translate.Result, refused *apply.RefusedError) []snapshot.Exclusion {
	var out []snapshot.Exclusion
	for ref := range blameLines(refused.Lines, res.Config) {
		out = append(out, exclusionFor(ref, generationInEffect(ref, snap, res), refused, res.Config))
	}
	if len(out) > 0 || refused.Stage != apply.StageValidate || refusedBy == nil {
		return out
	}
	vctx, cancel := context.WithTimeout(ctx, instanceTimeout)
	defer cancel()
	// Each candidate is written for the instance as an apply would be.
	applier, inst := r.applierFor(&snap.HAProxy), refusedBy.client
	ref, found := bisect(vctx, snap, res, func(ctx context.Context, cfg []byte) error {
		return applier.Validate(ctx, refusedBy.endpoint, inst, cfg)
	})
	if !found {
		return nil
	}
	return []snapshot.Exclusion{exclusionFor(ref, generationInEffect(ref, snap, res), refused, res.Config)}
}

// bisect finds one object without which HAProxy accepts the configuration,
// keeping the invariant that the objects left out so far (base) are not
// enough and base plus the remaining candidates are.
func bisect(ctx context.Context, snap *snapshot.Snapshot, res translate.Result, validate func(context.Context, []byte) error) (string, bool) {
	candidates := allSources(res.Config)
	acceptedWithout := func(refs []string) (bool, error) {
		s := *snap
		s.Exclusions = append([]snapshot.Exclusion(nil), snap.Exclusions...)
		for _, ref := range refs {
			s.Exclusions = append(s.Exclusions, snapshot.Exclusion{Ref: ref, Generation: generationInEffect(ref, snap, res), Reason: v1alpha1.ReasonRefusedByHAProxy})
		}
		cfg, err := render.Config(translate.Translate(s).Config)
		if err != nil {
			return false, err
		}
		err = validate(ctx, cfg)
		var refused *apply.RefusedError
		if errors.As(err, &refused) {
			return false, nil
		}
		return err == nil, err
	}
	if ok, err := acceptedWithout(candidates); !ok || err != nil {
		return "", false // not the objects' fault
	}
	var base []string
	rest := candidates
	for len(rest) > 1 {
		half, other := rest[:len(rest)/2], rest[len(rest)/2:]
		ok, err := acceptedWithout(append(append([]string(nil), base...), half...))
		if err != nil {
			return "", false
		}
		if ok {
			rest = half
		} else {
			base = append(base, half...)
			rest = other
		}
	}
	return rest[0], len(rest) == 1
}
