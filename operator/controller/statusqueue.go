package controller

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// statusQueue writes, in the background, the statuses the reconciles of
// one HAProxy computed, so a reconcile returns once its configuration is
// applied: the next change is applied while the statuses of the last one
// are still being written. Only the newest batch matters; one not yet
// started when a newer one comes is dropped, since the newer one was
// computed from a later state of the same objects. A batch is worked out
// when it starts (submitLater): working out which of 10,000 statuses to
// write is itself work a reconcile should not wait for, and a batch
// dropped is never worked out.
type statusQueue struct {
	log logr.Logger
	// heldReload, when set, is the HAProxy's held reload (reloadPacer's):
	// no status is written while one is held. A hold means changes are
	// still coming fast, as in a burst of creations; the API server is
	// the bottleneck then, and each status write of the configuration
	// about to be replaced costs it more than a creation, so the burst
	// would serve later and its statuses be written no sooner.
	heldReload func() <-chan struct{}

	mu       sync.Mutex
	pending  func() []func(context.Context) error
	running  bool
	idle     *sync.Cond
	canceled bool
	// stopped is closed by close, so writes waiting for a held reload end.
	stopped chan struct{}
	// ctx ends the writes when the operator stops.
	ctx context.Context
}

// statusRetry bounds the wait before a failed batch is written again,
// unless a newer batch replaced it meanwhile.
var statusRetry = struct{ first, max time.Duration }{first: 500 * time.Millisecond, max: 30 * time.Second}

func newStatusQueue(ctx context.Context, log logr.Logger) *statusQueue {
	q := &statusQueue{ctx: ctx, log: log, stopped: make(chan struct{})}
	q.idle = sync.NewCond(&q.mu)
	return q
}

// submit makes jobs the batch to write next, in place of any batch not
// yet started.
func (q *statusQueue) submit(jobs []func(context.Context) error) {
	q.submitLater(func() []func(context.Context) error { return jobs })
}

// submitLater makes the jobs batch returns, when it starts, the batch to
// write next, in place of any batch not yet started.
func (q *statusQueue) submitLater(batch func() []func(context.Context) error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.canceled {
		return
	}
	q.pending = batch
	if !q.running {
		q.running = true
		go q.run()
	}
}

func (q *statusQueue) run() {
	backoff := statusRetry.first
	for {
		q.mu.Lock()
		batch := q.pending
		q.pending = nil
		if batch == nil || q.canceled || q.ctx.Err() != nil {
			q.running = false
			q.idle.Broadcast()
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()

		jobs := batch()
		err := parallel(q.ctx, q.unlessHeld(jobs))
		if err == nil {
			backoff = statusRetry.first
			continue
		}
		q.log.Error(err, "Writing statuses failed; retrying", "after", backoff)
		select {
		case <-q.ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, statusRetry.max)
		q.mu.Lock()
		if q.pending == nil {
			q.pending = func() []func(context.Context) error { return jobs }
		}
		q.mu.Unlock()
	}
}

// unlessHeld makes each job wait, before it writes, while a reload is
// held; once the queue is closed, a waiting job writes nothing.
func (q *statusQueue) unlessHeld(jobs []func(context.Context) error) []func(context.Context) error {
	if q.heldReload == nil {
		return jobs
	}
	out := make([]func(context.Context) error, len(jobs))
	for i, job := range jobs {
		out[i] = func(ctx context.Context) error {
			// A released hold may be resumed at once: look again.
			for held := q.heldReload(); held != nil; held = q.heldReload() {
				select {
				case <-held:
				case <-q.stopped:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return job(ctx)
		}
	}
	return out
}

// close drops the batch not yet started, refuses new ones and waits for
// the one being written: the HAProxy is going away, and what it releases
// must not be written back after.
func (q *statusQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.canceled {
		close(q.stopped)
	}
	q.canceled = true
	q.pending = nil
	for q.running {
		q.idle.Wait()
	}
}

// wait returns once the queue has written everything submitted so far
// (or gave up because the operator stops).
func (q *statusQueue) wait() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.running {
		q.idle.Wait()
	}
}

// statusMemo remembers, for one HAProxy, what each TCPMapping's status
// was last found right or written for: the object's resourceVersion, the
// verdict and the instances' state. A reconcile that changed one mapping
// of 10,000 then looks at one status, not at all of them.
type statusMemo struct {
	mu   sync.Mutex
	seen map[types.NamespacedName]statusSeen
	// serial and fleet, when serial is not 0, say that every mapping's
	// status was right for the reconcile that read those input versions
	// and for those instances: the batch of the next reconcile looks only
	// at what changed since.
	serial uint64
	fleet  string
}

// baseline is the input versions' serial and the fleet every mapping's
// status was last found right for; serial 0 when none.
func (m *statusMemo) baseline() (uint64, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.serial, m.fleet
}

// advanceWhenWritten returns jobs, the mapping status writes of a batch
// for the input versions serial and fleet, made to record that baseline
// once every one of them succeeded; until then, and if one fails, there
// is none.
func (m *statusMemo) advanceWhenWritten(jobs []func(context.Context) error, serial uint64, fleet string) []func(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.serial, m.fleet = 0, ""
	if len(jobs) == 0 {
		m.serial, m.fleet = serial, fleet
		return nil
	}
	var left atomic.Int32
	left.Store(int32(len(jobs)))
	out := make([]func(context.Context) error, len(jobs))
	for i, job := range jobs {
		var once sync.Once
		out[i] = func(ctx context.Context) error {
			if err := job(ctx); err != nil {
				return err
			}
			// A batch written again after a failure runs its jobs again:
			// each counts once.
			once.Do(func() {
				if left.Add(-1) == 0 {
					m.mu.Lock()
					m.serial, m.fleet = serial, fleet
					m.mu.Unlock()
				}
			})
			return nil
		}
	}
	return out
}

type statusSeen struct {
	resourceVersion string
	// replaced is the version the write that left resourceVersion was
	// given. A batch worked out from a snapshot taken before that write
	// still holds the object at this version: the write already gave it
	// this verdict's status, and a write from it would only conflict.
	replaced string
	// result without its UpstreamTLSVerified pointer, which is another one
	// each translation: hasUpstream and upstream hold its value.
	result      translate.MappingResult
	hasUpstream bool
	upstream    translate.Condition
	fleet       string
}

func (r *HAProxyReconciler) statusMemoFor(hap string) *statusMemo {
	m, _ := r.statusMemos.LoadOrStore(hap, &statusMemo{seen: map[types.NamespacedName]statusSeen{}})
	return m.(*statusMemo)
}

func seenAs(resourceVersion string, m translate.MappingResult, fleet string) statusSeen {
	s := statusSeen{resourceVersion: resourceVersion, result: m, fleet: fleet}
	if m.UpstreamTLSVerified != nil {
		s.hasUpstream, s.upstream = true, *m.UpstreamTLSVerified
		s.result.UpstreamTLSVerified = nil
	}
	return s
}

// current reports whether key's status was found right, or written, for
// this version of the object, this verdict and these instances.
func (m *statusMemo) current(key types.NamespacedName, resourceVersion string, result translate.MappingResult, fleet string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.seen[key]
	if !ok || (resourceVersion != s.resourceVersion && resourceVersion != s.replaced) {
		return false
	}
	want := seenAs(s.resourceVersion, result, fleet)
	want.replaced = s.replaced
	return s == want
}

// record remembers that key's status is right at resourceVersion, the
// version a write left when given the object at replaced (the same
// version when nothing was written).
func (m *statusMemo) record(key types.NamespacedName, resourceVersion, replaced string, result translate.MappingResult, fleet string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := seenAs(resourceVersion, result, fleet)
	s.replaced = replaced
	m.seen[key] = s
}

// sweep forgets mappings no longer served, once they are many.
func (m *statusMemo) sweep(served map[types.NamespacedName]*translate.MappingResult) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.seen) <= len(served)+1024 {
		return
	}
	for k := range m.seen {
		if _, ok := served[k]; !ok {
			delete(m.seen, k)
		}
	}
}
