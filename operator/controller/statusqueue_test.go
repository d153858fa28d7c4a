package controller

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
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
