// Package controller reconciles HAProxy resources: for each one it keeps
// the Deployment, Service, PodDisruptionBudget and credentials it owns,
// gathers a snapshot, translates and renders it, applies the result to
// every ready instance and writes the status of the HAProxy and of the
// TCPMappings and TLSContexts it serves. It is the only package that
// writes to the API server.
package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/apply"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/metrics"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/render"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// Finalizer lets the operator remove what an HAProxy owned even where no
// garbage collector runs.
const Finalizer = "haproxy-operator.io/cleanup"

// HAProxyReconciler reconciles one HAProxy resource at a time; bursts of
// changes collapse into one reconcile per HAProxy in the work queue.
type HAProxyReconciler struct {
	Client    client.Client
	APIReader client.Reader
	Recorder  events.EventRecorder
	// InstanceImage is the default HAProxy instance image.
	InstanceImage string
	// HTTP is the client for the instances' Data Plane API.
	HTTP *http.Client
	// MaxConcurrentReconciles is how many HAProxies are reconciled at once,
	// so one frozen instance never delays another HAProxy.
	MaxConcurrentReconciles int
	// Now is the clock (certificate expiry); time.Now when nil.
	Now func() time.Time
	// ReloadInterval is the least time between reloads while changes
	// that need one keep coming (see reloadPacer); 0: each reload's own
	// duration.
	ReloadInterval time.Duration

	// appliers remember, per HAProxy, what each instance runs.
	appliers sync.Map // types.NamespacedName -> *apply.Applier
	// caClients are HTTP clients trusting one CA each, for external
	// instances.
	caClients sync.Map // [sha256.Size]byte -> *http.Client
	excluded  exclusions
	// grantsServed: the API server serves ReferenceGrants (found once, at
	// setup).
	grantsServed bool
	// secrets reads referenced Secrets, again only when they changed.
	secrets *referencedSecrets
	// translations are each HAProxy's last translation and rendering,
	// which the next reconcile starts from.
	translations sync.Map // types.NamespacedName -> *lastTranslation
	// channelChecks are the control channel Secrets found good, and when.
	channelChecks sync.Map // channelCheck -> time.Time
	// serviceWrites are the versions the operator's writes left on its
	// owned Services.
	serviceWrites ownWrites
	// ownedSeen are, per HAProxy, the owned objects last made right.
	ownedSeen sync.Map // types.NamespacedName -> ownedState
	// statusMemos remember which mapping statuses are right.
	statusMemos sync.Map // namespace/name of the HAProxy -> *statusMemo
	// statusQueues write each HAProxy's statuses in the background.
	statusQueues sync.Map // types.NamespacedName -> *statusQueue
	// pacers space out each HAProxy's reloads during bursts.
	pacers sync.Map // types.NamespacedName -> *reloadPacer
	// background ends with the manager: the status writes run under it.
	background context.Context
	// mappings are the cached TCPMappings, read without a copy; nil when
	// the cache keeps none in one store.
	mappings snapshot.MappingStore
	// owned reads the versions of the owned objects the cache holds;
	// kinds it has no store for are read through Client.
	owned cachedVersions
	// revisions numbers the translations, for the appliers.
	revisions atomic.Uint64
}

// SetupWithManager registers the controller and what it watches.
func (r *HAProxyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.HTTP == nil {
		r.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if r.MaxConcurrentReconciles == 0 {
		r.MaxConcurrentReconciles = 4
	}
	if err := setupIndexes(context.Background(), mgr); err != nil {
		return err
	}
	r.secrets = newReferencedSecrets(r.APIReader, mgr.GetClient(), r.now)
	store, err := mappingStoreOf(context.Background(), mgr.GetCache())
	if err != nil {
		return fmt.Errorf("get the TCPMapping informer: %w", err)
	}
	r.mappings = store
	if r.owned, err = cachedVersionsOf(context.Background(), mgr.GetCache(), &appsv1.Deployment{}, &corev1.Service{}, &policyv1.PodDisruptionBudget{}); err != nil {
		return fmt.Errorf("get the informers of owned objects: %w", err)
	}
	background, stop := context.WithCancel(context.Background())
	r.background = background
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		stop()
		return nil
	})); err != nil {
		stop()
		return fmt.Errorf("add the status writers' lifetime: %w", err)
	}
	// The operator's own status writes change no generation: reacting to
	// them would reconcile again for nothing.
	specOrLabels := builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))
	ownedSpec := builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))
	b := ctrl.NewControllerManagedBy(mgr).
		Named("haproxy").
		WithOptions(ctrlcontroller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		For(&v1alpha1.HAProxy{}, specOrLabels).
		// Their status is not an input (readiness comes from the Pods):
		// only a change to what the operator wrote, or a deletion, is.
		Owns(&appsv1.Deployment{}, ownedSpec).
		Owns(&policyv1.PodDisruptionBudget{}, ownedSpec).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.changes(r.forPod))).
		Watches(&v1alpha1.TCPMapping{}, handler.EnqueueRequestsFromMapFunc(r.changes(r.forSelected)), specOrLabels).
		Watches(&v1alpha1.TLSContext{}, handler.EnqueueRequestsFromMapFunc(r.changes(r.forTLSContext)), specOrLabels).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.changes(r.forService)), builder.WithPredicates(r.serviceWrites.notEchoes())).
		Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(r.changes(r.forEndpointSlice))).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.changes(r.forAll))).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.changes(r.forSecret)))
	if err := r.watchReferenceGrants(mgr, b); err != nil {
		return err
	}
	return b.Complete(r)
}

// What the operator may do, and nothing more; deploy/rbac is generated from
// these markers and the README explains each.
//
// +kubebuilder:rbac:groups=haproxy-operator.io,resources=haproxies,verbs=get;list;watch;update
// +kubebuilder:rbac:groups=haproxy-operator.io,resources=haproxies/finalizers,verbs=update
// +kubebuilder:rbac:groups=haproxy-operator.io,resources=haproxies/status;tcpmappings/status;tlscontexts/status,verbs=get;update
// +kubebuilder:rbac:groups=haproxy-operator.io,resources=tcpmappings;tlscontexts,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces;pods;services,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services,verbs=create;update;delete
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=referencegrants,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// Reconcile brings one HAProxy's instances and statuses up to date.
func (r *HAProxyReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	logger := log.FromContext(ctx)
	took := newPhaseTimer()
	defer func() { logger.V(1).Info("Reconciled", took.fields()...) }()
	var hap v1alpha1.HAProxy
	if err := r.Client.Get(ctx, req.NamespacedName, &hap); err != nil {
		if apierrors.IsNotFound(err) {
			r.closeStatusQueue(req.NamespacedName)
			r.statusMemos.Delete(req.String())
			r.translations.Delete(req.NamespacedName)
			r.ownedSeen.Delete(req.NamespacedName)
			r.appliers.Delete(req.NamespacedName)
			r.pacers.Delete(req.NamespacedName)
			r.excluded.forget(req.NamespacedName)
			metrics.Forget(req.String())
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("get HAProxy %s: %w", req, err)
	}
	if !hap.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, r.cleanup(ctx, &hap)
	}
	if controllerutil.AddFinalizer(&hap, Finalizer) {
		if err := r.Client.Update(ctx, &hap); err != nil {
			return reconcile.Result{}, fmt.Errorf("add finalizer to %s: %w", req, err)
		}
	}
	pacer := r.pacerFor(req.NamespacedName)
	wait, released := pacer.wait(time.Now())
	if wait > 0 {
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	if released != nil {
		logger.Info("Releasing a held reload", released.logFields()...)
		metrics.ReloadHeld.WithLabelValues(req.String()).Set(0)
	}
	// Asked before the reconcile's own work, which at 10,000 mappings
	// takes longer than the back-to-back window.
	holdReload := pacer.mayHold(time.Now())

	var creds [2]string
	if !external(&hap) {
		c, err := r.ensureCredentials(ctx, &hap)
		if conflict := (*nameConflictError)(nil); errors.As(err, &conflict) {
			return reconcile.Result{RequeueAfter: time.Minute}, r.reportNameConflict(ctx, &hap, conflict)
		}
		if err != nil {
			return reconcile.Result{}, err
		}
		creds = c
	}
	statsSecret, err := r.ensureStatsSecret(ctx, &hap)
	if conflict := (*nameConflictError)(nil); errors.As(err, &conflict) {
		return reconcile.Result{RequeueAfter: time.Minute}, r.reportNameConflict(ctx, &hap, conflict)
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	took.mark("prepare")
	snap, err := snapshot.Gather(ctx, r.Client, r.mappings, &hap)
	if err != nil {
		return reconcile.Result{}, err
	}
	if err := snapshot.AddReferenceGrants(ctx, r.Client, &snap, r.grantsServed); err != nil {
		return reconcile.Result{}, err
	}
	if statsSecret != "" {
		// The stats page asks for the generated credentials as if the
		// user had named their Secret.
		snap.HAProxy.Spec.Stats.AuthSecret = statsSecret
	}
	if err := snapshot.AddSecrets(ctx, r.secretReader(), &snap, translate.SecretNames(snap)); err != nil {
		return reconcile.Result{}, err
	}
	now := r.now()
	snap.Exclusions = r.excluded.current(req.NamespacedName, &snap, now)
	var (
		lastVersions *inputVersions
		lastRevision uint64
	)
	if v, ok := r.translations.Load(req.NamespacedName); ok {
		lastVersions, lastRevision = &v.(*lastTranslation).versions, v.(*lastTranslation).revision
	}
	versions := versionsOf(&snap, lastVersions)
	took.mark("snapshot")
	tr := r.translateSince(ctx, req.NamespacedName, &snap, versions)
	res, rendered, hash := tr.res, tr.rendered, tr.hash
	took.mark("translate")
	ensureOwned := func(res translate.Result) (reconcile.Result, error) {
		err := r.ensureOwned(ctx, &hap, res)
		if conflict := (*nameConflictError)(nil); errors.As(err, &conflict) {
			return reconcile.Result{RequeueAfter: time.Minute}, r.reportNameConflict(ctx, &hap, conflict)
		}
		return reconcile.Result{}, err
	}

	var (
		targets           []target
		replicas, running int32
	)
	if external(&hap) {
		targets = r.externalTargets(ctx, &hap)
		replicas = int32(len(targets))
		for _, t := range targets {
			if t.unusable == "" {
				running++
			}
		}
	} else {
		pods, err := r.instancePods(ctx, &hap)
		if err != nil {
			return reconcile.Result{}, err
		}
		var ready []corev1.Pod
		for _, p := range pods {
			if podReady(&p) {
				ready = append(ready, p)
			}
		}
		targets = r.podTargets(ctx, &hap, ready, creds)
		replicas, running = int32(len(pods)), int32(len(ready))
	}

	// Apply; when HAProxy refuses, leave out the objects it refused and
	// apply the rest, so one tenant's bad object never blocks the others.
	var instances []instance
	round := 0
	for ; ; round++ {
		took.mark("targets")
		if rendered == nil {
			if rendered, err = render.Render(res.Config); err != nil {
				return reconcile.Result{}, err
			}
			hash = rendered.Hash()
		}
		took.mark("render")
		var refused *apply.RefusedError
		var refusedBy *target
		if round == 0 && !holdReload {
			holdReload = pacer.resumes(time.Now(), len(rendered.Text))
		}
		desired := apply.Desired{Config: rendered.Text, Digest: rendered.Digest(), Model: res.Config, Revision: tr.revision, Since: tr.since, Changed: tr.changed,
			HoldReload: holdReload && round == 0}
		applyStart := time.Now()
		instances, refused, refusedBy = r.applyAll(ctx, &hap, targets, desired, hash)
		took.mark("apply")
		if anyInstance(instances, func(in instance) bool { return in.Reloaded }) {
			pacer.reloaded(time.Since(applyStart), time.Now(), len(rendered.Text))
		}
		if anyInstance(instances, func(in instance) bool { return in.Held }) {
			// Nothing of this reconcile is kept: the one that reloads
			// translates, and writes statuses, from the last applied.
			wait := pacer.hold(time.Now(), len(rendered.Text))
			metrics.ReloadHeld.WithLabelValues(req.String()).Set(1)
			logger.Info("Holding a reload while changes keep coming", "quiet", wait, "atMost", pacer.longest())
			return reconcile.Result{RequeueAfter: wait}, nil
		}
		if refused == nil || round == maxExclusionRounds {
			break
		}
		found := r.blame(ctx, refusedBy, &snap, res, refused)
		if len(found) == 0 {
			logger.Info("HAProxy refused the configuration and no object could be blamed", "stage", refused.Stage)
			break
		}
		for _, ex := range found {
			logger.Info("Leaving out an object HAProxy refused", "object", ex.Ref, "generation", ex.Generation, "reason", ex.Reason)
		}
		r.excluded.add(req.NamespacedName, now, found...)
		snap.Exclusions = r.excluded.current(req.NamespacedName, &snap, now)
		res, rendered = translate.Translate(snap), nil
		tr = translated{revision: r.revisions.Add(1)}
	}
	metrics.Exclusions.WithLabelValues(klogRef(&hap)).Set(float64(len(snap.Exclusions)))
	// The owned objects follow what the instances now run: the Service
	// has a port per listener, a megabyte at 10,000 mappings, and written
	// before the apply it delayed every new port by its write (and was
	// written for held configurations too). Statuses come after it.
	if result, err := ensureOwned(res); err != nil || !result.IsZero() {
		return result, err
	}
	took.mark("owned")
	if round == 0 {
		versions.keep()
		r.translations.Store(req.NamespacedName, &lastTranslation{versions: versions, res: res, rendered: rendered, hash: hash, revision: tr.revision})
	} else {
		// Translated again with other exclusions than versions says: the
		// next reconcile starts afresh.
		r.translations.Delete(req.NamespacedName)
	}

	recordMappings(klogRef(&hap), res, instances)
	var change statusChange
	if round == 0 {
		change.serial = versions.serial
		// Only a translation that is the last one, or derived from it,
		// leaves the verdicts off the changed ports as they were; a full
		// one (a grant, a namespace, a TLSContext changed) may change any.
		if versions.against != 0 && (tr.since != 0 || tr.revision == lastRevision) {
			// The objects changed since the last reconcile, and the ports
			// translated again when this translation derives from its.
			change.against, change.since, change.ports, change.mappings = versions.against, tr.since, tr.ports, versions.changed
			change.objects = changedObjects(&versions, res, change)
		}
	}
	r.statusQueueFor(req.NamespacedName, logger).submitLater(func() []func(context.Context) error {
		return r.statusJobs(&hap, &snap, res, hash, replicas, running, instances, change)
	})
	took.mark("status")
	for _, in := range instances {
		if !in.Programmed {
			logger.Info("Instance not programmed; retrying", "pod", in.Pod, "reason", in.Reason)
			return reconcile.Result{RequeueAfter: 2 * time.Second}, nil
		}
	}
	if len(snap.Exclusions) > 0 {
		// Objects refused at reload are tried again once their exclusion
		// expires.
		return reconcile.Result{RequeueAfter: exclusionTTL + time.Second}, nil
	}
	return reconcile.Result{}, nil
}

// changes notes, for each HAProxy's reload pacer, when the watch events
// mapFn maps to it came.
func (r *HAProxyReconciler) changes(mapFn handler.MapFunc) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		reqs := mapFn(ctx, o)
		now := time.Now()
		for _, req := range reqs {
			r.pacerFor(req.NamespacedName).input(now, o)
		}
		return reqs
	}
}

// pacerFor is the reload pacer of one HAProxy.
func (r *HAProxyReconciler) pacerFor(key types.NamespacedName) *reloadPacer {
	if p, ok := r.pacers.Load(key); ok {
		return p.(*reloadPacer)
	}
	p, _ := r.pacers.LoadOrStore(key, &reloadPacer{interval: r.ReloadInterval})
	return p.(*reloadPacer)
}

func anyInstance(instances []instance, is func(instance) bool) bool {
	for _, in := range instances {
		if is(in) {
			return true
		}
	}
	return false
}

// statusQueueFor is the status writer of one HAProxy.
func (r *HAProxyReconciler) statusQueueFor(key types.NamespacedName, logger logr.Logger) *statusQueue {
	if q, ok := r.statusQueues.Load(key); ok {
		return q.(*statusQueue)
	}
	ctx := r.background
	if ctx == nil {
		ctx = context.Background()
	}
	fresh := newStatusQueue(ctx, logger)
	fresh.heldReload = r.pacerFor(key).heldReload
	q, _ := r.statusQueues.LoadOrStore(key, fresh)
	return q.(*statusQueue)
}

// closeStatusQueue stops an HAProxy's status writer, once what it is
// writing is written.
func (r *HAProxyReconciler) closeStatusQueue(key types.NamespacedName) {
	if q, ok := r.statusQueues.LoadAndDelete(key); ok {
		q.(*statusQueue).close()
	}
}

// phaseTimer measures where a reconcile's time goes, for the debug log.
type phaseTimer struct {
	start, last time.Time
	phases      []any
}

func newPhaseTimer() *phaseTimer {
	now := time.Now()
	return &phaseTimer{start: now, last: now}
}

// mark ends the phase called name; a phase run twice is logged twice.
func (t *phaseTimer) mark(name string) {
	now := time.Now()
	t.phases = append(t.phases, name, now.Sub(t.last).Round(time.Microsecond).String())
	t.last = now
}

func (t *phaseTimer) fields() []any {
	return append([]any{"took", time.Since(t.start).Round(time.Microsecond).String()}, t.phases...)
}

func (r *HAProxyReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func podReady(p *corev1.Pod) bool {
	if p.Status.PodIP == "" || !p.DeletionTimestamp.IsZero() {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (r *HAProxyReconciler) instancePods(ctx context.Context, hap *v1alpha1.HAProxy) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(hap.Namespace), client.MatchingLabels(selectorLabels(hap))); err != nil {
		return nil, fmt.Errorf("list instance pods of %s/%s: %w", hap.Namespace, hap.Name, err)
	}
	return pods.Items, nil
}

func outcomeLabel(o apply.Outcome, err error) string {
	switch {
	case err != nil:
		return "error"
	case o.Held:
		return "held"
	case o.Reloaded:
		return "reload"
	case o.Changed:
		return "runtime"
	}
	return "unchanged"
}

// recordMappings sets the mapping and sync gauges of one HAProxy.
func recordMappings(hap string, res translate.Result, instances []instance) {
	var accepted, rejected, conflict, outOfSync float64
	for _, m := range res.Mappings {
		switch {
		case m.Programmable():
			accepted++
		case m.Accepted.Reason == v1alpha1.ReasonConflict:
			rejected++
			conflict++
		default:
			rejected++
		}
	}
	for _, in := range instances {
		if !in.Programmed {
			outOfSync++
		}
	}
	metrics.Mappings.WithLabelValues(hap, "accepted").Set(accepted)
	metrics.Mappings.WithLabelValues(hap, "rejected").Set(rejected)
	metrics.Mappings.WithLabelValues(hap, "conflict").Set(conflict)
	metrics.OutOfSync.WithLabelValues(hap).Set(outOfSync)
	metrics.ReloadHeld.WithLabelValues(hap).Add(0) // the series, 0 until a hold
}

func klogRef(o client.Object) string { return o.GetNamespace() + "/" + o.GetName() }
