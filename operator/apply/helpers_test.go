package apply

import (
	"maps"
	"slices"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
)

// Helpers the tests read models and views with.

// structureDigest is a model's structure, worked out in full.
func structureDigest(cfg *model.Config) string {
	return (&modelDigest{model: cfg}).digested().structure
}

// serversView groups servers by their backend.
func serversView(servers ...runtimeServer) runtimeView {
	v := runtimeView{}
	for _, s := range servers {
		v[s.Backend] = append(v[s.Backend], s)
	}
	return v
}

// servers are v's servers, backends in name order.
func (v runtimeView) servers() []runtimeServer {
	var out []runtimeServer
	for _, b := range slices.Sorted(maps.Keys(v)) {
		out = append(out, v[b]...)
	}
	return out
}

// viewOf is the runtime view of a model, as render writes it.
func viewOf(cfg *model.Config) runtimeView {
	v := make(runtimeView, len(cfg.Backends))
	for i := range cfg.Backends {
		if servers := backendView(cfg.Backends[i]); len(servers) > 0 {
			v[cfg.Backends[i].Name] = servers
		}
	}
	return v
}
