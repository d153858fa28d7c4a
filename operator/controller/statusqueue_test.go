package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

func TestStatusQueueWritesTheNewestBatchAndDropsOnesNeverStarted(t *testing.T) {
	q := newStatusQueue(context.Background(), logr.Discard())
	started, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var wrote []string
	job := func(name string, block bool) func(context.Context) error {
		return func(context.Context) error {
			if block {
				close(started)
				<-release
			}
			mu.Lock()
			wrote = append(wrote, name)
			mu.Unlock()
			return nil
		}
	}
	q.submit([]func(context.Context) error{job("first", true)})
	<-started
	// While the first batch is written, two more come: the second is
	// replaced by the third before it starts.
	q.submit([]func(context.Context) error{job("second", false)})
	q.submit([]func(context.Context) error{job("third", false)})
	close(release)
	q.wait()
	if got := len(wrote); got != 2 || wrote[0] != "first" || wrote[1] != "third" {
		t.Fatalf("wrote %v, want [first third]", wrote)
	}
}

// TestStatusQueueWorksOutOnlyTheBatchesItWrites: a batch submitted for
// later is worked out when it starts, so one replaced before it started
// costs nothing.
func TestStatusQueueWorksOutOnlyTheBatchesItWrites(t *testing.T) {
	q := newStatusQueue(context.Background(), logr.Discard())
	started, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var worked []string
	batch := func(name string, block bool) func() []func(context.Context) error {
		return func() []func(context.Context) error {
			mu.Lock()
			worked = append(worked, name)
			mu.Unlock()
			return []func(context.Context) error{func(context.Context) error {
				if block {
					close(started)
					<-release
				}
				return nil
			}}
		}
	}
	q.submitLater(batch("first", true))
	<-started
	q.submitLater(batch("second", false))
	q.submitLater(batch("third", false))
	close(release)
	q.wait()
	if len(worked) != 2 || worked[0] != "first" || worked[1] != "third" {
		t.Fatalf("worked out %v, want [first third]", worked)
	}
}

func TestStatusQueueRetriesAFailedBatch(t *testing.T) {
	saved := statusRetry
	statusRetry.first, statusRetry.max = time.Millisecond, 2*time.Millisecond
	t.Cleanup(func() { statusRetry = saved })
	q := newStatusQueue(context.Background(), logr.Discard())
	var tries atomic.Int32
	q.submit([]func(context.Context) error{func(context.Context) error {
		if tries.Add(1) < 3 {
			return errors.New("the API server is away")
		}
		return nil
	}})
	q.wait()
	if got := tries.Load(); got != 3 {
		t.Fatalf("tried %d times, want 3 (two failures, then success)", got)
	}
}

func TestStatusQueueClosedWritesNothingMore(t *testing.T) {
	q := newStatusQueue(context.Background(), logr.Discard())
	started, release := make(chan struct{}), make(chan struct{})
	var wrote atomic.Int32
	q.submit([]func(context.Context) error{func(context.Context) error { close(started); <-release; wrote.Add(1); return nil }})
	<-started
	q.submit([]func(context.Context) error{func(context.Context) error { wrote.Add(10); return nil }})
	closed := make(chan struct{})
	go func() { q.close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("close returned while a batch was still being written")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-closed
	q.submit([]func(context.Context) error{func(context.Context) error { wrote.Add(100); return nil }})
	q.wait()
	if got := wrote.Load(); got != 1 {
		t.Fatalf("wrote %d, want 1: the batch under way only", got)
	}
}

func TestStatusMemoAsksAgainWhenObjectVerdictOrInstancesChange(t *testing.T) {
	verdict := translate.MappingResult{Namespace: "ns", Name: "db", Generation: 2,
		Accepted: translate.Condition{Status: true, Reason: "Accepted"}, UpstreamTLSVerified: &translate.Condition{Status: true}}
	memo := &statusMemo{seen: map[types.NamespacedName]statusSeen{}}
	db := types.NamespacedName{Namespace: "ns", Name: "db"}
	if memo.current(db, "10", verdict, "fleet") {
		t.Fatal("a status never looked at counts as current")
	}
	memo.record(db, "10", "10", verdict, "fleet")
	// The same verdict from another translation: a new pointer, equal value.
	again := verdict
	again.UpstreamTLSVerified = &translate.Condition{Status: true}
	if !memo.current(db, "10", again, "fleet") {
		t.Error("an unchanged object, verdict and fleet must not be looked at again")
	}
	changed := verdict
	changed.Generation = 3
	warning := verdict
	warning.UpstreamTLSVerified = &translate.Condition{Status: false, Reason: "InsecureSkipVerify"}
	for name, ok := range map[string]bool{
		"the object changed":           memo.current(db, "11", verdict, "fleet"),
		"the verdict changed":          memo.current(db, "10", changed, "fleet"),
		"the upstream verdict changed": memo.current(db, "10", warning, "fleet"),
		"an instance changed":          memo.current(db, "10", verdict, "other fleet"),
	} {
		if ok {
			t.Errorf("%s, yet the status counts as current", name)
		}
	}
	// Mappings no longer served are forgotten once they are many.
	for i := 0; i < 1100; i++ {
		memo.record(types.NamespacedName{Namespace: "ns", Name: fmt.Sprintf("gone-%d", i)}, "1", "1", verdict, "fleet")
	}
	memo.sweep(map[types.NamespacedName]*translate.MappingResult{db: &verdict})
	if len(memo.seen) != 1 {
		t.Errorf("after the sweep the memo holds %d entries, want 1", len(memo.seen))
	}
}

// A batch worked out from a snapshot taken before the last batch's
// writes holds their objects at the versions those writes replaced: at
// 10,000 mappings, writing from them again was a conflict and a read for
// nearly every mapping.
func TestStatusMemoKnowsTheVersionItsWriteReplaced(t *testing.T) {
	verdict := translate.MappingResult{Namespace: "ns", Name: "db", Generation: 1, Accepted: translate.Condition{Status: true}}
	memo := &statusMemo{seen: map[types.NamespacedName]statusSeen{}}
	db := types.NamespacedName{Namespace: "ns", Name: "db"}
	memo.record(db, "12", "10", verdict, "fleet")
	for _, rv := range []string{"10", "12"} {
		if !memo.current(db, rv, verdict, "fleet") {
			t.Errorf("version %s: the status written over it counts as not current", rv)
		}
	}
	changed := verdict
	changed.Accepted = translate.Condition{Status: false, Reason: "PortConflict"}
	for name, ok := range map[string]bool{
		"a version neither read nor written":    memo.current(db, "11", verdict, "fleet"),
		"the replaced version, another verdict": memo.current(db, "10", changed, "fleet"),
		"the replaced version, other instances": memo.current(db, "10", verdict, "other fleet"),
	} {
		if ok {
			t.Errorf("%s counts as current", name)
		}
	}
}

func TestStatusMemoBaselineNeedsEveryWrite(t *testing.T) {
	memo := &statusMemo{seen: map[types.NamespacedName]statusSeen{}}
	if jobs := memo.advanceWhenWritten(nil, 4, "fleet"); len(jobs) != 0 {
		t.Fatalf("%d jobs for none", len(jobs))
	}
	if rev, fleet := memo.baseline(); rev != 4 || fleet != "fleet" {
		t.Fatalf("nothing to write: baseline %d %q, want 4 \"fleet\"", rev, fleet)
	}
	fail := true
	jobs := memo.advanceWhenWritten([]func(context.Context) error{
		func(context.Context) error { return nil },
		func(context.Context) error {
			if fail {
				return errors.New("conflict")
			}
			return nil
		},
	}, 5, "fleet")
	if rev, _ := memo.baseline(); rev != 0 {
		t.Fatalf("a batch not yet written keeps baseline %d", rev)
	}
	ctx := context.Background()
	for _, j := range jobs {
		_ = j(ctx)
	}
	if rev, _ := memo.baseline(); rev != 0 {
		t.Fatalf("a batch with a failed write set baseline %d", rev)
	}
	// Written again: the job that succeeded before succeeds again and
	// must not count twice; the one that failed now succeeds.
	if err := jobs[0](ctx); err != nil {
		t.Fatal(err)
	}
	if rev, _ := memo.baseline(); rev != 0 {
		t.Fatalf("one job counted twice: baseline %d", rev)
	}
	fail = false
	if err := jobs[1](ctx); err != nil {
		t.Fatal(err)
	}
	if rev, _ := memo.baseline(); rev != 5 {
		t.Fatalf("every write went through: baseline %d, want 5", rev)
	}
}

// queueAtAHeldReload is a status queue whose HAProxy holds a reload, with
// one status write submitted and waiting for the hold's end; release ends
// the hold, and wrote counts the writes made.
func queueAtAHeldReload(t *testing.T) (q *statusQueue, release func(), wrote *atomic.Int32) {
	t.Helper()
	q = newStatusQueue(context.Background(), logr.Discard())
	var mu sync.Mutex
	held, asked := make(chan struct{}), make(chan struct{}, 1)
	q.heldReload = func() <-chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		select {
		case asked <- struct{}{}:
		default:
		}
		if held == nil {
			return nil
		}
		return held
	}
	wrote = new(atomic.Int32)
	ran := make(chan struct{})
	q.submit([]func(context.Context) error{func(context.Context) error { wrote.Add(1); close(ran); return nil }})
	select {
	case <-asked:
	case <-ran:
		t.Fatal("a status was written while a reload is held")
	}
	release = func() {
		mu.Lock()
		defer mu.Unlock()
		close(held)
		held = nil
	}
	return q, release, wrote
}

// TestStatusQueueWritesNothingWhileAReloadIsHeld: the writes of a batch
// wait while the HAProxy holds a reload, and go once it is released.
func TestStatusQueueWritesNothingWhileAReloadIsHeld(t *testing.T) {
	q, release, wrote := queueAtAHeldReload(t)
	if n := wrote.Load(); n != 0 {
		t.Fatalf("%d statuses written while a reload is held", n)
	}
	release()
	q.wait()
	if n := wrote.Load(); n != 1 {
		t.Fatalf("%d statuses written once the hold was released, want 1", n)
	}
}

// TestStatusQueueClosesWhileAReloadIsHeld: an HAProxy deleted while it
// holds a reload does not leave its status writer waiting forever.
func TestStatusQueueClosesWhileAReloadIsHeld(t *testing.T) {
	q, _, wrote := queueAtAHeldReload(t)
	closed := make(chan struct{})
	go func() { q.close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("close did not return within 10 s while a reload was held")
	}
	if n := wrote.Load(); n != 0 {
		t.Errorf("%d statuses written after the queue closed", n)
	}
}
