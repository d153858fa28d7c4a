package dataplane

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"time"
)

// outputTap passes HAProxy's output to the log and lets a reload collect
// the lines HAProxy prints while it runs, so a failed reload is reported
// with HAProxy's own words.
type outputTap struct {
	dst io.Writer

	mu      sync.Mutex
	partial []byte
	active  *lineCapture
}

// lineCapture holds the lines written while it is active.
type lineCapture struct {
	mu  sync.Mutex
	all []string
	// paused and resumed count the old worker's "Paused frontend" and
	// "Resumed frontend" lines: during a reload the old worker pauses its
	// listeners and, when the new worker cannot start, resumes them.
	paused, resumed int
	// done closes on "Loading failure", loaded on "Loading success":
	// what the master prints once a load has failed, or has forked the
	// new worker.
	done, loaded chan struct{}
}

func newOutputTap(dst io.Writer) *outputTap { return &outputTap{dst: dst} }

// Write forwards p and records its complete lines in the active capture.
func (o *outputTap) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c := o.active; c != nil {
		o.partial = append(o.partial, p...)
		for {
			i := bytes.IndexByte(o.partial, '\n')
			if i < 0 {
				break
			}
			c.add(string(o.partial[:i]))
			o.partial = o.partial[i+1:]
		}
	}
	return o.dst.Write(p)
}

// capture starts collecting lines; release ends it.
func (o *outputTap) capture() *lineCapture {
	c := &lineCapture{done: make(chan struct{}), loaded: make(chan struct{})}
	o.mu.Lock()
	o.active, o.partial = c, nil
	o.mu.Unlock()
	return c
}

func (o *outputTap) release(c *lineCapture) {
	o.mu.Lock()
	if o.active == c {
		o.active, o.partial = nil, nil
	}
	o.mu.Unlock()
}

func (c *lineCapture) add(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	line = strings.TrimRight(line, "\r ")
	if line == "" {
		return
	}
	switch {
	case strings.Contains(line, "Paused frontend"):
		c.paused++
	case strings.Contains(line, "Resumed frontend"):
		c.resumed++
	}
	if strings.Contains(line, "Loading failure") && !c.finished() {
		close(c.done)
	}
	if strings.Contains(line, "Loading success") && !c.succeeded() {
		close(c.loaded)
	}
	c.all = append(c.all, line)
}

func (c *lineCapture) finished() bool { return closed(c.done) }

func (c *lineCapture) succeeded() bool { return closed(c.loaded) }

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// lines are the alerts HAProxy printed, or every line when it printed no
// alert.
func (c *lineCapture) lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var alerts []string
	for _, l := range c.all {
		if strings.Contains(l, "[ALERT]") {
			alerts = append(alerts, l)
		}
	}
	if len(alerts) > 0 {
		return alerts
	}
	return append([]string(nil), c.all...)
}

// wait gives HAProxy's output up to d to arrive (it travels through a
// pipe, behind the master CLI's answer) until the "Loading failure" line
// HAProxy prints after its alerts, then returns lines.
func (c *lineCapture) wait(d time.Duration) []string {
	select {
	case <-c.done:
	case <-time.After(d):
	}
	return c.lines()
}

// waitResumed waits up to d until the old worker has resumed every
// listener it paused, so a failed reload is answered only once the old
// listeners accept connections again.
func (c *lineCapture) waitResumed(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		done := c.resumed >= c.paused
		c.mu.Unlock()
		if done {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
