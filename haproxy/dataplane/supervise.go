package dataplane

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// superviseEvery is how often the supervisor looks at the master when it
// is not told of its exit; restarts take well under the 2 s promised.
const superviseEvery = 250 * time.Millisecond

// restartGrace is how long the master may stay down, restarts failing,
// before /healthz says the instance is wedged.
const restartGrace = 30 * time.Second

// supervise restarts the HAProxy master when it dies, with the stored
// configuration (or, if that cannot start, the one that ran before), and
// marks the loop alive for /healthz.
func (s *Server) supervise(ctx context.Context) {
	tick := time.NewTicker(superviseEvery)
	defer tick.Stop()
	for {
		s.beat.Store(time.Now().UnixNano())
		_, exited := s.master.current()
		select {
		case <-ctx.Done():
			return
		case <-exited:
		case <-tick.C:
		}
		if s.stopping.Load() || s.master.running() {
			s.downSince.Store(0)
			continue
		}
		s.downSince.CompareAndSwap(0, time.Now().UnixNano())
		s.restart()
	}
}

// restart starts a new master after the previous one died. Workers the
// dead master left are killed with its process group first, so none keeps
// serving beside the new one.
func (s *Server) restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() || s.master.running() {
		return
	}
	s.restarting.Store(true)
	defer s.restarting.Store(false)
	s.opt.Logger.Info("HAProxy master exited; restarting it")
	s.master.killGroup()
	err := s.master.start()
	if err != nil {
		s.opt.Logger.Error(err, "Restart with the stored configuration failed; restarting with the previous one")
		if rerr := s.restoreGood(); rerr != nil {
			s.opt.Logger.Error(rerr, "Restore the previous configuration")
			return
		}
		s.master.killGroup()
		if err := s.master.start(); err != nil {
			s.opt.Logger.Error(err, "Restart HAProxy")
			return
		}
	} else if text, _, err := s.stored(); err == nil {
		s.good = text
	}
	if s.pending != nil {
		// The new master loaded the stored file: the queued reload is done.
		s.doneReload(s.pending, nil)
	}
}

// healthz is the liveness probe: the supervisor loop runs and the master
// answers or is being restarted. It needs no credentials and reveals
// nothing: the answer is "ok" or "unhealthy".
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	loopRuns := time.Since(time.Unix(0, s.beat.Load())) < 10*superviseEvery+5*time.Second
	down := s.downSince.Load()
	beingRestarted := down != 0 && time.Since(time.Unix(0, down)) < restartGrace
	if loopRuns && (beingRestarted || s.restarting.Load() || s.masterAnswers()) {
		probeAnswer(w, http.StatusOK, "ok")
		return
	}
	probeAnswer(w, http.StatusServiceUnavailable, "unhealthy")
}

// readyz is the readiness probe: the current worker runs the stored
// configuration (no restart in progress). It needs no credentials and
// reveals nothing: the answer is "ready" or "not ready".
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.restarting.Load() && s.masterAnswers() {
		if _, err := s.master.workers(); err == nil {
			probeAnswer(w, http.StatusOK, "ready")
			return
		}
	}
	probeAnswer(w, http.StatusServiceUnavailable, "not ready")
}

func (s *Server) masterAnswers() bool {
	_, err := s.master.state()
	return err == nil
}

func probeAnswer(w http.ResponseWriter, code int, word string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, word)
}
