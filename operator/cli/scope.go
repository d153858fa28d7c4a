package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// WatchNamespaceEnv names the namespaces a namespaced install serves,
// comma-separated; empty means every namespace. OLM sets it from the
// olm.targetNamespaces annotation of the operator's Pod.
const WatchNamespaceEnv = "WATCH_NAMESPACE"

// namespacePollPeriod is how often a namespaced install reads the labels
// of its namespaces: it may not watch Namespaces, which are cluster-scoped.
const namespacePollPeriod = 10 * time.Second

// parseWatchNamespaces reads a WATCH_NAMESPACE value: namespace names
// separated by commas, blanks around them ignored. It returns nil for all
// namespaces.
func parseWatchNamespaces(v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			return nil, fmt.Errorf("%q has an empty namespace name", v)
		}
		if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
			return nil, fmt.Errorf("namespace %q: %s", n, strings.Join(errs, "; "))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// scopedCacheOptions limits the manager's cache to namespaces and makes it
// answer for Namespaces without listing or watching them: a namespaced
// install holds Roles only, and a Role cannot grant list or watch of a
// cluster-scoped resource. It can grant get of the Namespace it lives in
// (the API server authorizes GET /api/v1/namespaces/N in namespace N), so
// the operator reads the labels of exactly the namespaces it serves and
// HAProxy namespace selectors keep their meaning among them.
func scopedCacheOptions(opts cache.Options, namespaces []string) (cache.Options, cache.NewCacheFunc) {
	opts.DefaultNamespaces = map[string]cache.Config{}
	for _, n := range namespaces {
		opts.DefaultNamespaces[n] = cache.Config{}
	}
	newCache := func(cfg *rest.Config, o cache.Options) (cache.Cache, error) {
		inner, err := cache.New(cfg, o)
		if err != nil {
			return nil, err
		}
		live, err := client.New(cfg, client.Options{Scheme: o.Scheme, Mapper: o.Mapper, HTTPClient: o.HTTPClient})
		if err != nil {
			return nil, fmt.Errorf("client for Namespaces: %w", err)
		}
		return newScopedCache(inner, live, namespaces, namespacePollPeriod), nil
	}
	return opts, newCache
}

// scopedCache is a cache whose Namespaces are the served ones, read one by
// one from the API server; every other kind comes from the inner cache.
type scopedCache struct {
	cache.Cache
	live       client.Reader
	namespaces []string
	served     map[string]bool
	poller     *namespacePoller
}

func newScopedCache(inner cache.Cache, live client.Reader, namespaces []string, period time.Duration) *scopedCache {
	c := &scopedCache{Cache: inner, live: live, namespaces: namespaces, served: map[string]bool{}}
	for _, n := range namespaces {
		c.served[n] = true
	}
	c.poller = &namespacePoller{read: c.readNamespace, names: namespaces, period: period, synced: make(chan struct{})}
	return c
}

var namespaceGVK = corev1.SchemeGroupVersion.WithKind("Namespace")

// readNamespace gets one served Namespace from the API server.
func (c *scopedCache) readNamespace(ctx context.Context, name string, into *corev1.Namespace) error {
	if err := c.live.Get(ctx, client.ObjectKey{Name: name}, into); err != nil {
		if apierrors.IsForbidden(err) {
			return fmt.Errorf("get Namespace %s (a namespaced install needs get on namespaces in a Role in each namespace it serves): %w", name, err)
		}
		return err
	}
	return nil
}

// Get answers for a served Namespace from the API server, and that any
// other Namespace does not exist: the operator serves nothing there.
func (c *scopedCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		if isNamespaceKind(obj) {
			return fmt.Errorf("a namespaced install reads Namespaces only as *v1.Namespace, not %T", obj)
		}
		return c.Cache.Get(ctx, key, obj, opts...)
	}
	if !c.served[key.Name] {
		return apierrors.NewNotFound(corev1.Resource("namespaces"), key.Name)
	}
	return c.readNamespace(ctx, key.Name, ns)
}

// List lists the served Namespaces that exist and match the options'
// label selector.
func (c *scopedCache) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	nl, ok := list.(*corev1.NamespaceList)
	if !ok {
		if gvk := list.GetObjectKind().GroupVersionKind(); gvk.Group == "" && gvk.Kind == "NamespaceList" {
			return fmt.Errorf("a namespaced install lists Namespaces only as *v1.NamespaceList, not %T", list)
		}
		return c.Cache.List(ctx, list, opts...)
	}
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	nl.Items = nil
	for _, n := range c.namespaces {
		var ns corev1.Namespace
		err := c.readNamespace(ctx, n, &ns)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if lo.LabelSelector != nil && !lo.LabelSelector.Matches(labels.Set(ns.Labels)) {
			continue
		}
		nl.Items = append(nl.Items, ns)
	}
	return nil
}

func isNamespaceKind(obj client.Object) bool {
	gvk := obj.GetObjectKind().GroupVersionKind()
	return gvk.Group == "" && gvk.Kind == "Namespace"
}

// GetInformer returns the poller for Namespaces.
func (c *scopedCache) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	if _, ok := obj.(*corev1.Namespace); ok || isNamespaceKind(obj) {
		return c.poller, nil
	}
	return c.Cache.GetInformer(ctx, obj, opts...)
}

// GetInformerForKind returns the poller for Namespaces.
func (c *scopedCache) GetInformerForKind(ctx context.Context, gvk schema.GroupVersionKind, opts ...cache.InformerGetOption) (cache.Informer, error) {
	if gvk == namespaceGVK {
		return c.poller, nil
	}
	return c.Cache.GetInformerForKind(ctx, gvk, opts...)
}

// RemoveInformer keeps the poller.
func (c *scopedCache) RemoveInformer(ctx context.Context, obj client.Object) error {
	if _, ok := obj.(*corev1.Namespace); ok || isNamespaceKind(obj) {
		return nil
	}
	return c.Cache.RemoveInformer(ctx, obj)
}

// Start runs the poller beside the inner cache.
func (c *scopedCache) Start(ctx context.Context) error {
	go c.poller.run(ctx)
	return c.Cache.Start(ctx)
}

// WaitForCacheSync waits for the inner cache and the first poll.
func (c *scopedCache) WaitForCacheSync(ctx context.Context) bool {
	if !c.Cache.WaitForCacheSync(ctx) {
		return false
	}
	select {
	case <-c.poller.synced:
		return true
	case <-ctx.Done():
		return false
	}
}

// namespacePoller is an informer for the served Namespaces that reads
// them every period instead of watching, so label changes still reach
// the handlers (a little later than a watch would).
type namespacePoller struct {
	read   func(context.Context, string, *corev1.Namespace) error
	names  []string
	period time.Duration

	mu       sync.Mutex
	handlers []*pollRegistration
	last     map[string]*corev1.Namespace
	polled   bool
	stopped  bool
	synced   chan struct{}
}

// pollRegistration is one handler; it has synced once it received the
// Namespaces of the first poll.
type pollRegistration struct {
	handler toolscache.ResourceEventHandler
	done    chan struct{}
}

func (r *pollRegistration) HasSynced() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

func (r *pollRegistration) HasSyncedChecker() toolscache.DoneChecker { return r }
func (r *pollRegistration) Name() string                             { return "served Namespaces" }
func (r *pollRegistration) Done() <-chan struct{}                    { return r.done }

func (p *namespacePoller) run(ctx context.Context) {
	log := ctrl.LoggerFrom(ctx).WithName("namespaces")
	t := time.NewTicker(p.period)
	defer t.Stop()
	for {
		if err := p.poll(ctx); err != nil && ctx.Err() == nil {
			log.Error(err, "Read the served Namespaces")
		}
		select {
		case <-ctx.Done():
			p.mu.Lock()
			p.stopped = true
			p.mu.Unlock()
			return
		case <-t.C:
		}
	}
}

// poll reads every served Namespace and tells the handlers what was
// added, changed or deleted since the last poll. A Namespace that cannot
// be read keeps its last state; the first poll counts as synced even
// then, so a missing permission shows as errors in the reconciles that
// read Namespaces instead of a cache that never syncs.
func (p *namespacePoller) poll(ctx context.Context) error {
	now := map[string]*corev1.Namespace{}
	var errs []error
	p.mu.Lock()
	last := p.last
	p.mu.Unlock()
	for _, n := range p.names {
		ns := &corev1.Namespace{}
		err := p.read(ctx, n, ns)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			errs = append(errs, err)
			if old := last[n]; old != nil {
				now[n] = old
			}
		default:
			now[n] = ns
		}
	}
	// Handlers only enqueue requests, so they are called under the lock:
	// a handler added meanwhile gets either this poll's Namespaces or
	// those of the next, never both.
	p.mu.Lock()
	defer p.mu.Unlock()
	first := !p.polled
	p.polled, p.last = true, now
	for _, h := range p.handlers {
		if h.HasSynced() {
			deliverChanges(h.handler, last, now)
		} else {
			deliverInitial(h, now)
		}
	}
	if first {
		close(p.synced)
	}
	return errors.Join(errs...)
}

func deliverInitial(h *pollRegistration, now map[string]*corev1.Namespace) {
	for _, n := range sortedNames(now) {
		h.handler.OnAdd(now[n], true)
	}
	close(h.done)
}

func deliverChanges(h toolscache.ResourceEventHandler, last, now map[string]*corev1.Namespace) {
	for _, n := range sortedNames(now) {
		old, ok := last[n]
		switch {
		case !ok:
			h.OnAdd(now[n], false)
		case old.ResourceVersion != now[n].ResourceVersion:
			h.OnUpdate(old, now[n])
		}
	}
	for _, n := range sortedNames(last) {
		if _, ok := now[n]; !ok {
			h.OnDelete(last[n])
		}
	}
}

func sortedNames(m map[string]*corev1.Namespace) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// AddEventHandler registers h; after the first poll it receives the
// served Namespaces at once.
func (p *namespacePoller) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	reg := &pollRegistration{handler: h, done: make(chan struct{})}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.handlers = append(p.handlers, reg)
	if p.polled {
		deliverInitial(reg, p.last)
	}
	return reg, nil
}

// AddEventHandlerWithResyncPeriod ignores the period: every poll
// compares with the last.
func (p *namespacePoller) AddEventHandlerWithResyncPeriod(h toolscache.ResourceEventHandler, _ time.Duration) (toolscache.ResourceEventHandlerRegistration, error) {
	return p.AddEventHandler(h)
}

// AddEventHandlerWithOptions ignores the options.
func (p *namespacePoller) AddEventHandlerWithOptions(h toolscache.ResourceEventHandler, _ toolscache.HandlerOptions) (toolscache.ResourceEventHandlerRegistration, error) {
	return p.AddEventHandler(h)
}

// RemoveEventHandler stops telling a handler.
func (p *namespacePoller) RemoveEventHandler(handle toolscache.ResourceEventHandlerRegistration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, h := range p.handlers {
		if h == handle {
			p.handlers = append(p.handlers[:i], p.handlers[i+1:]...)
			return nil
		}
	}
	return nil
}

// AddIndexers is refused: the poller keeps no index.
func (p *namespacePoller) AddIndexers(toolscache.Indexers) error {
	return errors.New("the served Namespaces are polled, not indexed")
}

// HasSynced reports whether the first poll is done.
func (p *namespacePoller) HasSynced() bool {
	select {
	case <-p.synced:
		return true
	default:
		return false
	}
}

// HasSyncedChecker is the poller's sync as a DoneChecker.
func (p *namespacePoller) HasSyncedChecker() toolscache.DoneChecker { return pollerSynced{p} }

// IsStopped reports whether the poller ended with its context.
func (p *namespacePoller) IsStopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped
}

type pollerSynced struct{ p *namespacePoller }

func (s pollerSynced) Name() string          { return "served Namespaces" }
func (s pollerSynced) Done() <-chan struct{} { return s.p.synced }
