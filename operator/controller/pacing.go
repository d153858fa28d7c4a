package controller

import (
	"fmt"
	"reflect"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// maxReloadHold bounds how long a change that needs a reload waits while
// others keep coming.
const maxReloadHold = 10 * time.Second

// maxStormDoublings bounds how often the longest hold doubles while
// changes keep coming through hold after hold: at most 4 times the
// longest hold (40 s with the defaults).
const maxStormDoublings = 2

// reloadPacer spaces out one HAProxy's reloads while changes that need
// one keep coming, as when thousands of mappings are created at once.
// Each reload parses the whole configuration and its old worker then
// stops every proxy: at 10,000 mappings that is seconds of CPU, which
// back-to-back reloads take from the API server and the operator still
// taking the burst in. So a change after a quiet spell reloads at once;
// one arriving within a reload's time of the last reload's end is held.
// When nothing else comes while it is held, it goes out a reload's time
// after that reload ended: a lone change waits out only the spacing
// between two reloads, not a reload's time of its own. When more come,
// it is held until the changes stop for a reload's time, or for eight
// reloads' time (at most maxReloadHold), and then goes out in one
// reload with all that came meanwhile. Everything, reload or not, waits
// while a reload is held: what the instances run stays one
// configuration the operator made; and so do the status writes
// (heldReload), which would take the API server's time from the burst's
// own writes to report what is about to change. A
// reload interval, when set and longer, stands for the reload's time.
// A reload's cost grows with the configuration: the longest hold counts
// with the last reload's time scaled to the held configuration's size,
// so a burst into a small configuration is not reloaded at the pace of
// its first, cheap reloads. The held configuration keeps growing while
// the changes come, and a held reconcile does not look at it: so a hold
// that reaches its longest while changes still come resumes, once the
// released reconcile has the configuration in hand, if that one would
// cost enough to have been held longer. When changes still come as a
// hold reaches its longest, and again as the next one is held (a storm
// longer than a hold, as when a GitOps tool creates thousands of
// mappings over a minute), each further hold may last twice as long as
// the last, up to maxStormDoublings times; a quiet spell ends the storm.
// Each reload leaves an old worker serving its connections until they
// end, with the memory of the whole configuration: a storm's reloads
// stay a few, not one every longest hold.
type reloadPacer struct {
	// interval is the least time counted as a reload's (the operator's
	// --reload-interval).
	interval time.Duration

	mu sync.Mutex
	// took is how long the last reload took, from the apply's start to
	// the new worker running; ended is when it ended.
	took  time.Duration
	ended time.Time
	// size is the length of the configuration the last reload loaded.
	size int
	// heldCost is the last reload's time scaled to the size of the
	// configuration held.
	heldCost time.Duration
	// heldSince is when a reload was first held; zero when none is.
	heldSince time.Time
	// nextDoublings is how often the longest hold doubles for the next
	// hold: one more than for the last hold when that one ended at its
	// longest while changes still came, 0 when it ended as they stopped
	// or after a quiet spell. heldDoublings is the hold held now's.
	nextDoublings, heldDoublings int
	// changed is when an input of the HAProxy last changed (a watch
	// event that reconciles it). Reconciles do not count: a held one
	// asks to be run again, and that run is no change.
	changed time.Time
	// released: the hold just ended, and the reconcile it ended for
	// reloads whatever came.
	released bool
	// resumable is when the hold that just ended began, when it ended at
	// its longest while changes still came; zero otherwise.
	resumable time.Time
	// heldChanges counts the input changes since the hold began, and
	// lastChange names the last one, for the log of its release.
	heldChanges int
	lastChange  string
	// heldEnds is closed when the hold ends; nil when none is held.
	heldEnds chan struct{}
}

// heldRelease is what the log says of a hold as it ends.
type heldRelease struct {
	heldFor    time.Duration
	changes    int
	lastChange string
	// whileChanging: the hold ended at its longest, changes still coming.
	whileChanging bool
}

func (h *heldRelease) logFields() []any {
	return []any{"heldFor", h.heldFor, "changesWhileHeld", h.changes, "lastChange", h.lastChange, "changesStillComing", h.whileChanging}
}

// quiet is how long the changes must stop for a held reload to go out,
// and how soon after a reload another is held.
func (p *reloadPacer) quiet() time.Duration { return max(p.took, p.interval) }

// longest is how long a reload is held at most.
func (p *reloadPacer) longest() time.Duration { return p.longestFor(p.heldCost) }

// longestFor is how long a reload that would cost cost is held at most,
// in the hold held now.
func (p *reloadPacer) longestFor(cost time.Duration) time.Duration {
	return min(8*max(p.quiet(), cost), max(maxReloadHold, p.interval)) << p.heldDoublings
}

// costOf is the last reload's time scaled to a configuration of size
// bytes, when that is larger than the one reloaded.
func (p *reloadPacer) costOf(size int) time.Duration {
	if p.size > 0 && size > p.size {
		return time.Duration(float64(p.took) * float64(size) / float64(p.size))
	}
	return p.took
}

// wait is how long a reconcile at now waits before it does anything: 0
// when no reload is held, or when the held one is due, which it then
// releases and describes.
func (p *reloadPacer) wait(now time.Time) (time.Duration, *heldRelease) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.heldSince.IsZero() {
		return 0, nil
	}
	due := p.due()
	if now.Before(due) {
		return due.Sub(now), nil
	}
	rel := &heldRelease{heldFor: now.Sub(p.heldSince), changes: p.heldChanges, lastChange: p.lastChange,
		whileChanging: p.heldChanges > 0 && now.Before(p.changed.Add(p.quiet()))}
	p.resumable = time.Time{}
	p.nextDoublings = 0
	if rel.whileChanging {
		p.resumable = p.heldSince
		p.nextDoublings = p.heldDoublings + 1
	}
	p.heldSince, p.released = time.Time{}, true
	close(p.heldEnds)
	p.heldEnds = nil
	return 0, rel
}

// heldReload is closed when the reload held now is released; nil when
// none is held.
func (p *reloadPacer) heldReload() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.heldEnds
}

// due is when the held reload goes out: quiet after the last reload
// ended when no change came since the hold, else once the changes
// stopped for quiet since the last one; longest after the hold at the
// latest.
func (p *reloadPacer) due() time.Time {
	due := p.ended.Add(p.quiet())
	if p.heldChanges > 0 {
		due = p.changed.Add(p.quiet())
	}
	if due.Before(p.heldSince) {
		due = p.heldSince
	}
	if longest := p.heldSince.Add(p.longest()); longest.Before(due) {
		due = longest
	}
	return due
}

// input records that an input, o, changed at now.
func (p *reloadPacer) input(now time.Time, o client.Object) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.changed = now
	if !p.heldSince.IsZero() {
		p.heldChanges++
		p.lastChange = fmt.Sprintf("%s %s/%s", reflect.Indirect(reflect.ValueOf(o)).Type().Name(), o.GetNamespace(), o.GetName())
	}
}

// mayHold says whether a reload needed at now may be held: the last
// reload ended less than quiet ago, and no hold just ended.
func (p *reloadPacer) mayHold(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.released {
		p.released = false
		return false
	}
	p.resumable = time.Time{}
	if p.ended.IsZero() || now.Sub(p.ended) >= p.quiet() {
		p.nextDoublings = 0
		return false
	}
	return true
}

// resumes says whether the reconcile a hold was just released for holds
// on: the hold ended at its longest while changes still came, and the
// configuration now in hand, of size bytes, would cost enough to be held
// longer than it was.
func (p *reloadPacer) resumes(now time.Time, size int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resumable.IsZero() {
		return false
	}
	if now.Before(p.resumable.Add(p.longestFor(p.costOf(size)))) {
		return true
	}
	p.resumable = time.Time{}
	return false
}

// hold records that a reload of a configuration of size bytes was held
// at now, or resumed the hold that just ended, and returns when to look
// again: never 0, which would not look again at all. The reconcile that
// decided to hold may have taken past the hold's due time to get here.
func (p *reloadPacer) hold(now time.Time, size int) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.heldSince, p.heldCost = now, p.costOf(size)
	if p.heldEnds == nil {
		p.heldEnds = make(chan struct{})
	}
	if !p.resumable.IsZero() {
		p.heldSince, p.resumable = p.resumable, time.Time{}
	} else {
		p.heldChanges, p.lastChange = 0, ""
		p.heldDoublings = min(p.nextDoublings, maxStormDoublings)
	}
	return max(p.due().Sub(now), time.Millisecond)
}

// reloaded records a reload of a configuration of size bytes that took
// took and ended at end.
func (p *reloadPacer) reloaded(took time.Duration, end time.Time, size int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.took, p.ended, p.size = took, end, size
}
