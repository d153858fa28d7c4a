package controller

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestReloadPacer walks a pacer through reloads, holds and releases; each
// step is one call at a time after the start.
func TestReloadPacer(t *testing.T) {
	type step struct {
		at   time.Duration
		call string // reloaded (took), input, mayHold, resumes, hold, wait
		took time.Duration
		size int // of the configuration reloaded or held; 1 when not set
		want any // bool for mayHold and resumes, time.Duration for hold and wait
	}
	s := time.Second
	ms := time.Millisecond
	cases := []struct {
		name     string
		interval time.Duration
		steps    []step
	}{
		{"nothing reloaded yet: nothing is held", 0, []step{
			{at: 0, call: "mayHold", want: false},
			{at: 0, call: "wait", want: time.Duration(0)},
		}},
		{"a change after a quiet spell reloads at once", 0, []step{
			{at: 0, call: "reloaded", took: s},
			{at: s, call: "mayHold", want: false},
			{at: 5 * s, call: "mayHold", want: false},
		}},
		{"a change within a reload's time of the last is held until the changes stop", 0, []step{
			{at: 0, call: "reloaded", took: s},
			{at: 400 * ms, call: "input"},
			{at: 500 * ms, call: "mayHold", want: true},
			// Nothing else yet: due a reload's time after the reload.
			{at: 500 * ms, call: "hold", want: 500 * ms},
			{at: 900 * ms, call: "input"},
			{at: 900 * ms, call: "wait", want: s},
			{at: 1800 * ms, call: "input"},
			{at: 1800 * ms, call: "wait", want: s},
			// Run again as asked, with no change since: still held.
			{at: 2000 * ms, call: "wait", want: 800 * ms},
			// No change for a reload's time: it goes out, unheld.
			{at: 2800 * ms, call: "wait", want: time.Duration(0)},
			{at: 2800 * ms, call: "mayHold", want: false},
			{at: 2800 * ms, call: "wait", want: time.Duration(0)},
		}},
		{"a lone change held goes out a reload's time after the last reload, not after itself", 0, []step{
			{at: 0, call: "reloaded", took: s},
			{at: 900 * ms, call: "input"},
			{at: 900 * ms, call: "mayHold", want: true},
			{at: 900 * ms, call: "hold", want: 100 * ms},
			{at: 950 * ms, call: "wait", want: 50 * ms},
			{at: s, call: "wait", want: time.Duration(0)},
			{at: s, call: "mayHold", want: false},
		}},
		{"a hold begun past its due time still looks again", 0, []step{
			// The reconcile that asked mayHold at 900 ms reached hold
			// after the spacing ended: it must be run again, not dropped.
			{at: 0, call: "reloaded", took: s},
			{at: 900 * ms, call: "mayHold", want: true},
			{at: 1200 * ms, call: "hold", want: ms},
			{at: 1201 * ms, call: "wait", want: time.Duration(0)},
			{at: 1201 * ms, call: "mayHold", want: false},
		}},
		{"changes that keep coming are held eight reloads' time at most", 0, []step{
			{at: 0, call: "reloaded", took: s},
			{at: 100 * ms, call: "mayHold", want: true},
			{at: 100 * ms, call: "hold", want: 900 * ms},
			{at: 900 * ms, call: "input"},
			{at: 1700 * ms, call: "input"},
			{at: 2500 * ms, call: "input"},
			{at: 3300 * ms, call: "input"},
			{at: 4100 * ms, call: "input"},
			{at: 4900 * ms, call: "input"},
			{at: 5700 * ms, call: "input"},
			{at: 6500 * ms, call: "input"},
			{at: 7300 * ms, call: "input"},
			{at: 7300 * ms, call: "wait", want: 800 * ms},
			{at: 8000 * ms, call: "input"},
			{at: 8000 * ms, call: "wait", want: 100 * ms},
			{at: 8100 * ms, call: "wait", want: time.Duration(0)},
			{at: 8100 * ms, call: "mayHold", want: false},
		}},
		{"a slow reload is held ten seconds at most", 0, []step{
			{at: 0, call: "reloaded", took: 3 * s},
			{at: s, call: "mayHold", want: true},
			{at: s, call: "hold", want: 2 * s},
			{at: 3 * s, call: "input"},
			{at: 5 * s, call: "input"},
			{at: 7 * s, call: "input"},
			{at: 9 * s, call: "input"},
			{at: 9 * s, call: "wait", want: 2 * s},
			{at: 11 * s, call: "wait", want: time.Duration(0)},
		}},
		{"a reload interval longer than the reload stands for it", 3 * s, []step{
			{at: 0, call: "reloaded", took: 100 * ms},
			{at: 2 * s, call: "mayHold", want: true},
			{at: 2 * s, call: "hold", want: s},
			{at: 4 * s, call: "input"},
			{at: 4 * s, call: "wait", want: 3 * s},
			{at: 7 * s, call: "wait", want: time.Duration(0)},
			{at: 7 * s, call: "mayHold", want: false},
			{at: 7 * s, call: "reloaded", took: 100 * ms},
			{at: 10*s + 100*ms, call: "mayHold", want: false},
		}},
		{"a reload slower than the longest hold is held that long", 0, []step{
			{at: 0, call: "reloaded", took: 22 * s},
			{at: s, call: "mayHold", want: true},
			{at: s, call: "hold", want: 10 * s},
			{at: 5 * s, call: "wait", want: 6 * s},
			{at: 11 * s, call: "wait", want: time.Duration(0)},
		}},
		{"a configuration grown since the last reload is held as long as its reload would take", 0, []step{
			{at: 0, call: "reloaded", took: 100 * ms, size: 10_000},
			{at: 50 * ms, call: "mayHold", want: true},
			// 40 times the text: 4 s to reload, held 8 times that, 10 s
			// at most, while the changes keep coming.
			{at: 50 * ms, call: "hold", size: 400_000, want: 50 * ms},
			{at: 100 * ms, call: "input"},
			{at: 5 * s, call: "input"},
			{at: 5 * s, call: "wait", want: 100 * ms},
			{at: 9 * s, call: "input"},
			{at: 10 * s, call: "input"},
			{at: 10 * s, call: "wait", want: 50 * ms},
			{at: 10*s + 50*ms, call: "wait", want: time.Duration(0)},
		}},
		{"a configuration grown since the last reload still goes out once the changes stop", 0, []step{
			{at: 0, call: "reloaded", took: 100 * ms, size: 10_000},
			{at: 50 * ms, call: "mayHold", want: true},
			{at: 50 * ms, call: "hold", size: 400_000, want: 50 * ms},
			{at: 100 * ms, call: "wait", want: time.Duration(0)},
		}},
		{"a hold that reached its longest resumes when the configuration grew meanwhile", 0, []step{
			{at: 0, call: "reloaded", took: 100 * ms, size: 10_000},
			{at: 50 * ms, call: "mayHold", want: true},
			{at: 50 * ms, call: "hold", size: 10_000, want: 50 * ms},
			{at: 100 * ms, call: "input"},
			{at: 500 * ms, call: "input"},
			{at: 800 * ms, call: "input"},
			// Eight reloads' time of the configuration it was held with.
			{at: 850 * ms, call: "wait", want: time.Duration(0)},
			{at: 850 * ms, call: "mayHold", want: false},
			// The released reconcile's configuration grew 40 times: 4 s to
			// reload, so held on, 10 s from the hold's start at most.
			{at: 850 * ms, call: "resumes", size: 400_000, want: true},
			{at: 850 * ms, call: "hold", size: 400_000, want: 50 * ms},
			{at: 5 * s, call: "input"},
			{at: 9 * s, call: "input"},
			{at: 10 * s, call: "input"},
			{at: 10 * s, call: "wait", want: 50 * ms},
			{at: 10*s + 50*ms, call: "wait", want: time.Duration(0)},
			{at: 10*s + 50*ms, call: "mayHold", want: false},
			{at: 10*s + 50*ms, call: "resumes", size: 800_000, want: false},
		}},
		{"a hold that ended because the changes stopped does not resume", 0, []step{
			{at: 0, call: "reloaded", took: 100 * ms, size: 10_000},
			{at: 50 * ms, call: "mayHold", want: true},
			{at: 50 * ms, call: "hold", size: 10_000, want: 50 * ms},
			{at: 100 * ms, call: "wait", want: time.Duration(0)},
			{at: 100 * ms, call: "mayHold", want: false},
			{at: 100 * ms, call: "resumes", size: 400_000, want: false},
		}},
		{"a hold does not resume for a configuration that did not grow", 0, []step{
			{at: 0, call: "reloaded", took: 100 * ms, size: 10_000},
			{at: 50 * ms, call: "mayHold", want: true},
			{at: 50 * ms, call: "hold", size: 10_000, want: 50 * ms},
			{at: 800 * ms, call: "input"},
			{at: 850 * ms, call: "wait", want: time.Duration(0)},
			{at: 850 * ms, call: "mayHold", want: false},
			{at: 850 * ms, call: "resumes", size: 10_000, want: false},
		}},
		{"a later reconcile does not resume a hold released before", 0, []step{
			{at: 0, call: "reloaded", took: 100 * ms, size: 10_000},
			{at: 50 * ms, call: "mayHold", want: true},
			{at: 50 * ms, call: "hold", size: 10_000, want: 50 * ms},
			{at: 800 * ms, call: "input"},
			{at: 850 * ms, call: "wait", want: time.Duration(0)},
			{at: 850 * ms, call: "mayHold", want: false},
			// That reconcile needed no reload; the next one comes later.
			{at: 2 * s, call: "mayHold", want: false},
			{at: 2 * s, call: "resumes", size: 400_000, want: false},
		}},
		{"a long reload interval is the longest hold", 20 * s, []step{
			{at: 0, call: "reloaded", took: 100 * ms},
			{at: 0, call: "mayHold", want: true},
			{at: 0, call: "hold", want: 20 * s},
			{at: 10 * s, call: "input"},
			{at: 19 * s, call: "wait", want: s},
			{at: 20 * s, call: "wait", want: time.Duration(0)},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			p := reloadPacer{interval: tc.interval}
			for i, st := range tc.steps {
				now := start.Add(st.at)
				var got any
				switch st.call {
				case "reloaded":
					p.reloaded(st.took, now, max(st.size, 1))
					continue
				case "input":
					p.input(now, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "svc"}})
					continue
				case "mayHold":
					got = p.mayHold(now)
				case "hold":
					got = p.hold(now, max(st.size, 1))
				case "resumes":
					got = p.resumes(now, max(st.size, 1))
				case "wait":
					got, _ = p.wait(now)
				}
				if got != st.want {
					t.Fatalf("step %d, %s at %v: got %v, want %v", i, st.call, st.at, got, st.want)
				}
			}
		})
	}
}

// TestReloadPacerDescribesItsRelease checks what the log of a released
// hold says: how long it held, how many changes came and the last one.
func TestReloadPacerDescribesItsRelease(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "backend"}}
	p := reloadPacer{}
	p.reloaded(time.Second, at(0), 1)
	p.input(at(100*time.Millisecond), svc) // before the hold: not counted
	if !p.mayHold(at(200 * time.Millisecond)) {
		t.Fatal("not held")
	}
	p.hold(at(200*time.Millisecond), 1)
	for i := 1; i <= 8; i++ {
		p.input(at(200*time.Millisecond+time.Duration(i)*time.Second), svc)
	}
	wait, rel := p.wait(at(8200 * time.Millisecond))
	if wait != 0 || rel == nil {
		t.Fatalf("the hold did not end at its longest: wait %v", wait)
	}
	want := heldRelease{heldFor: 8 * time.Second, changes: 8, lastChange: "Service ns/backend", whileChanging: true}
	if *rel != want {
		t.Fatalf("release %+v, want %+v", *rel, want)
	}
	if _, again := p.wait(at(9 * time.Second)); again != nil {
		t.Fatalf("released twice: %+v", *again)
	}
}

// TestReloadPacerSignalsTheEndOfAHold: what waits for a held reload (the
// status writes) learns when it is released, and when it is resumed.
func TestReloadPacerSignalsTheEndOfAHold(t *testing.T) {
	start := time.Unix(1000, 0)
	p := &reloadPacer{}
	if p.heldReload() != nil {
		t.Fatal("nothing is held, yet heldReload says a reload is")
	}
	p.reloaded(time.Second, start, 1)
	wait := p.hold(start.Add(100*time.Millisecond), 1)
	held := p.heldReload()
	if held == nil {
		t.Fatal("a reload is held, yet heldReload says none is")
	}
	if d, _ := p.wait(start.Add(200 * time.Millisecond)); d <= 0 {
		t.Fatalf("the hold ended %v after it began, before its quiet time", 100*time.Millisecond)
	}
	select {
	case <-held:
		t.Fatal("the hold signalled its end before it was released")
	default:
	}
	if d, rel := p.wait(start.Add(100*time.Millisecond + wait)); d != 0 || rel == nil {
		t.Fatalf("wait at the hold's due time = %v, %v; want the release", d, rel)
	}
	select {
	case <-held:
	default:
		t.Fatal("the hold was released, yet its end was not signalled")
	}
	if p.heldReload() != nil {
		t.Error("after the release heldReload still says a reload is held")
	}
	p.hold(start.Add(5*time.Second), 1)
	if again := p.heldReload(); again == nil || again == held {
		t.Error("a new hold must be signalled on a channel of its own")
	}
}

// TestReloadPacerLengthensTheHoldsOfAStorm: while changes keep coming
// through hold after hold, each further hold may last twice the last
// (8 s, 16 s, then 32 s at most for a 1 s reload); a hold that ends as
// the changes stop, or a quiet spell, starts again from 8 s.
func TestReloadPacerLengthensTheHoldsOfAStorm(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "backend"}}
	const step = 500 * time.Millisecond
	p := reloadPacer{}
	now := start
	p.reloaded(time.Second, now, 1)
	// hold holds a reload 100 ms after the last reload ended, sends a
	// change every step while changing, and returns how long the hold
	// lasted and whether changes still came at its release; the release
	// then reloads, which takes a second.
	hold := func(changing bool) (time.Duration, bool) {
		t.Helper()
		now = now.Add(100 * time.Millisecond)
		if !p.mayHold(now) {
			t.Fatalf("a change 100 ms after a reload at %v was not held", now.Sub(start))
		}
		p.hold(now, 1)
		began := now
		for i := 0; i < 200; i++ {
			now = now.Add(step)
			if changing {
				p.input(now, svc)
			}
			wait, rel := p.wait(now)
			if wait > 0 {
				continue
			}
			if rel == nil {
				t.Fatalf("the hold ended at %v without a release", now.Sub(start))
			}
			if p.mayHold(now) || p.resumes(now, 1) {
				t.Fatalf("the reconcile released at %v held on", now.Sub(start))
			}
			now = now.Add(time.Second)
			p.reloaded(time.Second, now, 1)
			return rel.heldFor, rel.whileChanging
		}
		t.Fatalf("the hold begun at %v never ended", began.Sub(start))
		return 0, false
	}
	for i, want := range []time.Duration{8 * time.Second, 16 * time.Second, 32 * time.Second, 32 * time.Second} {
		if got, changing := hold(true); got != want || !changing {
			t.Fatalf("hold %d of the storm lasted %v (changes still coming: %v), want %v while they come", i+1, got, changing, want)
		}
	}
	// No change comes within the hold: it ends a reload's time after the
	// last reload (at the first step past it), and the next hold starts
	// from 8 s again.
	if got, changing := hold(false); got != time.Second || changing {
		t.Fatalf("a hold without changes lasted %v (changes still coming: %v), want 1s", got, changing)
	}
	if got, _ := hold(true); got != 8*time.Second {
		t.Fatalf("the first hold after the storm lasted %v, want 8s", got)
	}
	if got, _ := hold(true); got != 16*time.Second {
		t.Fatalf("the second hold of a new storm lasted %v, want 16s", got)
	}
	// A quiet spell (no reload needed for more than a reload's time)
	// ends the storm too.
	now = now.Add(2 * time.Second)
	if p.mayHold(now) {
		t.Fatal("a change after a quiet spell was held")
	}
	p.reloaded(time.Second, now.Add(time.Second), 1)
	now = now.Add(time.Second)
	if got, _ := hold(true); got != 8*time.Second {
		t.Fatalf("the first hold after a quiet spell lasted %v, want 8s", got)
	}
}
