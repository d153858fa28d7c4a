package dataplane

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/haproxytech/client-native/v5/models"
)

const maxReloadHistory = 100

// newReload records a reload; callers hold s.mu.
func (s *Server) newReload() *models.Reload {
	s.reloadN++
	rl := &models.Reload{
		ID:     fmt.Sprintf("%s-%d", time.Now().UTC().Format("2006-01-02"), s.reloadN),
		Status: "in_progress",
	}
	s.reloads = append(s.reloads, rl)
	if len(s.reloads) > maxReloadHistory {
		s.reloads = s.reloads[len(s.reloads)-maxReloadHistory:]
	}
	return rl
}

// queueReload asks for a reload after ReloadDelay; requests queued before
// it runs share it. Callers hold s.mu.
func (s *Server) queueReload() string {
	if s.pending == nil {
		s.pending = s.newReload()
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return s.pending.ID
}

// doReload loads the stored configuration into HAProxy and records the
// outcome in rl (and in the queued reload, which a forced one also
// serves). When HAProxy cannot start the new worker, the previous
// configuration file and version are put back: what is stored is what
// runs. Callers hold s.mu.
func (s *Server) doReload(rl *models.Reload) error {
	s.opt.Logger.Info("Reloading HAProxy", "reload", rl.ID)
	text, _, readErr := s.stored()
	err := s.master.reload()
	if err == nil && readErr != nil {
		err = readErr
	}
	if err == nil {
		s.good = text
	} else {
		s.opt.Logger.Error(err, "Reload failed; restoring the previous configuration", "reload", rl.ID)
		if rerr := s.restoreGood(); rerr != nil {
			err = fmt.Errorf("%w; %v", err, rerr)
		}
	}
	if s.pending != nil && s.pending != rl {
		s.doneReload(s.pending, err)
	}
	s.doneReload(rl, err)
	return err
}

func (s *Server) doneReload(rl *models.Reload, err error) {
	rl.ReloadTimestamp = time.Now().Unix()
	if err != nil {
		rl.Status, rl.Response = "failed", err.Error()
	} else {
		rl.Status = "succeeded"
	}
	if s.pending == rl {
		s.pending = nil
	}
}

func (s *Server) reloadLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.opt.ReloadDelay):
		}
		s.mu.Lock()
		if rl := s.pending; rl != nil && !s.stopping.Load() {
			_ = s.doReload(rl) // recorded in rl
		}
		s.mu.Unlock()
	}
}

func (s *Server) getReloads(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := make(models.Reloads, 0, len(s.reloads))
	for _, rl := range s.reloads {
		c := *rl
		out = append(out, &c)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getReload(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rl := range s.reloads {
		if rl.ID == id {
			writeJSON(w, http.StatusOK, rl)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("reload %s not found", id))
}
