package apply_test

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/haproxytech/client-native/v5/models"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/apply"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
)

// mapRecorder is a recorder with map storage and runtime map entries, as
// the official API keeps them (in its maps directory).
type mapRecorder struct {
	*recorder
	files map[string][]byte
	// running are the entries HAProxy holds, per map; a reload reads the
	// files again.
	running map[string]map[string]string
}

const officialMapDir = "/etc/haproxy/maps"

func newMapRecorder() *mapRecorder {
	return &mapRecorder{recorder: &recorder{version: 1, certs: map[string][]byte{}}, files: map[string][]byte{}, running: map[string]map[string]string{}}
}

func (r *mapRecorder) PushConfiguration(ctx context.Context, cfg []byte, p client.Push) (client.PushResult, error) {
	res, err := r.recorder.PushConfiguration(ctx, cfg, p)
	if err == nil && !p.SkipReload {
		r.running = map[string]map[string]string{}
		for name, content := range r.files {
			if strings.Contains(string(cfg), officialMapDir+"/"+name) {
				r.running[name] = parseMap(content)
			}
		}
	}
	return res, err
}

func parseMap(content []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(content)), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			out[k] = v
		}
	}
	return out
}

func (r *mapRecorder) Maps(context.Context) (models.Maps, error) {
	r.call("GET maps")
	var out models.Maps
	for name := range r.files {
		out = append(out, &models.Map{StorageName: name, File: officialMapDir + "/" + name})
	}
	return out, nil
}

func (r *mapRecorder) MapFile(_ context.Context, name string) ([]byte, error) {
	r.call("GET map %s", name)
	b, ok := r.files[name]
	if !ok {
		return nil, &client.APIError{Status: http.StatusNotFound}
	}
	return b, nil
}

func (r *mapRecorder) StoreMap(_ context.Context, name string, content []byte, replace bool) (client.Stored, error) {
	if _, exists := r.files[name]; exists != replace {
		return client.Stored{}, &client.APIError{Status: http.StatusConflict, Message: "exists: " + name}
	}
	if replace {
		r.call("PUT map %s", name)
	} else {
		r.call("POST map %s", name)
	}
	r.files[name] = content
	return client.Stored{File: officialMapDir + "/" + name}, nil
}

func (r *mapRecorder) DeleteMap(_ context.Context, name string) error {
	r.call("DELETE map %s", name)
	delete(r.files, name)
	return nil
}

func (r *mapRecorder) MapEntries(_ context.Context, name string) (models.MapEntries, error) {
	r.call("GET entries %s", name)
	m, ok := r.running[name]
	if !ok {
		return nil, &client.APIError{Status: http.StatusNotFound}
	}
	var out models.MapEntries
	for k, v := range m {
		out = append(out, &models.MapEntry{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (r *mapRecorder) AddMapEntry(_ context.Context, name, key, value string) error {
	r.call("add map %s %s %s", name, key, value)
	if _, dup := r.running[name][key]; dup {
		return &client.APIError{Status: http.StatusConflict}
	}
	r.running[name][key] = value
	return nil
}

func (r *mapRecorder) SetMapEntry(_ context.Context, name, key, value string) error {
	r.call("set map %s %s %s", name, key, value)
	if _, ok := r.running[name][key]; !ok {
		return &client.APIError{Status: http.StatusNotFound}
	}
	r.running[name][key] = value
	return nil
}

func (r *mapRecorder) DeleteMapEntry(_ context.Context, name, key string) error {
	r.call("del map %s %s", name, key)
	delete(r.running[name], key)
	return nil
}

// picked is port 2222 split between mappings a and b by a weight map,
// each with its own backend.
func picked(slotsA int) model.Config {
	m := model.Config{
		Name: "default/haproxy",
		Frontends: []*model.Frontend{{Name: "tcpm-fe-2222", Bind: model.Bind{Port: 2222},
			Pick: &model.Pick{WeightMap: "tcpm-fe-2222-weights.map"}}},
		Backends: []*model.Backend{
			{Name: "tcpm-be-default:a", Servers: []model.Server{{Name: "default:a:1", Address: "10.0.0.1", Port: 80, Weight: 1}}},
			{Name: "tcpm-be-default:b", Servers: []model.Server{{Name: "default:b:1", Address: "10.0.0.2", Port: 80, Weight: 1}}},
		},
	}
	wm := model.Map{Name: "tcpm-fe-2222-weights.map"}
	if slotsA > 0 {
		wm.Entries = append(wm.Entries, model.MapEntry{Key: "0:" + strconv.Itoa(slotsA-1), Value: "tcpm-be-default:a"})
	}
	if slotsA < model.PickRange {
		wm.Entries = append(wm.Entries, model.MapEntry{Key: strconv.Itoa(slotsA) + ":9999", Value: "tcpm-be-default:b"})
	}
	m.Maps = []model.Map{wm}
	return m
}

func runMaps(t *testing.T, a *apply.Applier, r *mapRecorder, d apply.Desired) apply.Outcome {
	t.Helper()
	out, err := a.Apply(context.Background(), "http://instance", r, d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAWeightChangeIsMapEntriesOnly(t *testing.T) {
	r := newMapRecorder()
	a := apply.NewApplier()
	out := runMaps(t, a, r, want(t, picked(9900)))
	same(t, "first apply", r.take(), "GET maps", "POST map tcpm-fe-2222-weights.map", "GET raw", "POST raw reload")
	if !out.Reloaded {
		t.Errorf("first apply: %+v", out)
	}
	if !strings.Contains(r.stored, officialMapDir+"/tcpm-fe-2222-weights.map") {
		t.Errorf("the stored configuration does not load the map from the API's map directory:\n%s", r.stored)
	}

	out = runMaps(t, a, r, want(t, picked(5000)))
	same(t, "weights", r.take(),
		"PUT map tcpm-fe-2222-weights.map",
		"add map tcpm-fe-2222-weights.map 0:4999 tcpm-be-default:a",
		"add map tcpm-fe-2222-weights.map 5000:9999 tcpm-be-default:b",
		"del map tcpm-fe-2222-weights.map 0:9899",
		"del map tcpm-fe-2222-weights.map 9900:9999")
	if out.Reloaded || !out.Changed || len(out.MapChanges) != 4 {
		t.Errorf("weights: %+v", out)
	}
	if got := parseMap(r.files["tcpm-fe-2222-weights.map"]); len(got) != 2 || got["0:4999"] != "tcpm-be-default:a" {
		t.Errorf("the stored map file is not the one running: %v", got)
	}

	out = runMaps(t, a, r, want(t, picked(5000)))
	same(t, "same again", r.take())
	if out.Changed {
		t.Errorf("same again: %+v", out)
	}

	// A restarted operator knows nothing: it lists the files, reads the
	// entries HAProxy runs and sends the difference.
	runMaps(t, apply.NewApplier(), r, want(t, picked(0)))
	same(t, "after a restart", r.take(),
		"GET maps", "GET map tcpm-fe-2222-weights.map", "PUT map tcpm-fe-2222-weights.map", "GET raw",
		"GET entries tcpm-fe-2222-weights.map",
		"add map tcpm-fe-2222-weights.map 0:9999 tcpm-be-default:b",
		"del map tcpm-fe-2222-weights.map 0:4999",
		"del map tcpm-fe-2222-weights.map 5000:9999")
}

func TestAMapNoLongerLoadedIsDeletedAfterThePush(t *testing.T) {
	r := newMapRecorder()
	a := apply.NewApplier()
	runMaps(t, a, r, want(t, picked(5000)))
	r.take()
	single := picked(5000)
	single.Frontends[0].Pick, single.Frontends[0].DefaultBackend = nil, "tcpm-be-default:a"
	single.Backends, single.Maps = single.Backends[:1], nil
	out := runMaps(t, a, r, want(t, single))
	same(t, "single mapping", r.take(), "POST raw reload", "DELETE map tcpm-fe-2222-weights.map")
	if !out.Reloaded {
		t.Errorf("single mapping: %+v", out)
	}
}

func (r *mapRecorder) AddRuntimeServer(_ context.Context, backend string, s models.RuntimeAddServer) error {
	r.call("add server %s/%s %s:%d", backend, s.Name, s.Address, *s.Port)
	return nil
}

func (r *mapRecorder) DeleteRuntimeServer(_ context.Context, backend, name string) error {
	r.call("del server %s/%s", backend, name)
	return nil
}

// endpoints is a mapping on port 2222 whose Service has endpoints at the
// given ports of 10.0.0.1.
func endpoints(ports ...int32) model.Config {
	be := model.Backend{Name: "tcpm-be-default:a", Template: &model.Server{Weight: 1, Dynamic: true}}
	for _, p := range ports {
		be.Servers = append(be.Servers, model.Server{Name: "default:a:10.0.0.1:" + strconv.Itoa(int(p)), Address: "10.0.0.1", Port: p, Weight: 1, Dynamic: true})
	}
	return model.Config{
		Name:      "default/haproxy",
		Frontends: []*model.Frontend{{Name: "tcpm-fe-2222", Bind: model.Bind{Port: 2222}, DefaultBackend: be.Name}},
		Backends:  []*model.Backend{&be},
	}
}

func TestEndpointsComeAndGoAtRuntime(t *testing.T) {
	r := newMapRecorder()
	a := apply.NewApplier()
	runMaps(t, a, r, want(t, endpoints(80)))
	r.take()

	out := runMaps(t, a, r, want(t, endpoints(80, 81)))
	// The server serves before the text naming it is stored.
	same(t, "an endpoint appears", r.take(), "add server tcpm-be-default:a/default:a:10.0.0.1:81 10.0.0.1:81", "POST raw runtime 0 actions")
	if out.Reloaded || len(out.ServersAdded) != 1 {
		t.Errorf("an endpoint appears: %+v", out)
	}

	runMaps(t, a, r, want(t, endpoints(81)))
	same(t, "an endpoint goes", r.take(), "POST raw runtime 1 actions")

	// An endpoint that moves: the new server serves before the push puts
	// the old one in maintenance, so one always serves.
	out = runMaps(t, a, r, want(t, endpoints(83)))
	same(t, "an endpoint moves", r.take(), "add server tcpm-be-default:a/default:a:10.0.0.1:83 10.0.0.1:83", "POST raw runtime 1 actions")
	if len(out.Actions) != 1 || out.Actions[0].String() != "SetServerState tcpm-be-default:a default:a:10.0.0.1:81 maint" {
		t.Errorf("an endpoint moves: %+v", out.Actions)
	}

	runMaps(t, a, r, want(t, endpoints()))
	same(t, "the last endpoint goes", r.take(), "POST raw runtime 1 actions")

	// The retired server is still there: coming back makes it ready.
	out = runMaps(t, a, r, want(t, endpoints(80)))
	same(t, "an endpoint comes back", r.take(), "POST raw runtime 1 actions")
	if len(out.Actions) != 1 || out.Actions[0].String() != "SetServerState tcpm-be-default:a default:a:10.0.0.1:80 ready" {
		t.Errorf("an endpoint comes back: %+v", out.Actions)
	}

	// A restarted operator reads the stored text: a new endpoint is still
	// a server to add, not a reload.
	out = runMaps(t, apply.NewApplier(), r, want(t, endpoints(80, 82)))
	same(t, "an endpoint appears after a restart", r.take(), "GET maps", "GET raw", "add server tcpm-be-default:a/default:a:10.0.0.1:82 10.0.0.1:82", "POST raw runtime 0 actions")
	if out.Reloaded {
		t.Errorf("an endpoint appears after a restart: %+v", out)
	}
}

// TestAPushRefusedAfterRuntimeChangesReloadsNext: servers added before a
// push HAProxy refuses run while the stored text lacks them; the next
// push reloads, so HAProxy runs what is stored.
func TestAPushRefusedAfterRuntimeChangesReloadsNext(t *testing.T) {
	r := newMapRecorder()
	a := apply.NewApplier()
	runMaps(t, a, r, want(t, endpoints(80)))
	r.take()

	r.refuse = &client.APIError{Status: http.StatusBadRequest, Message: "haproxy refused the configuration"}
	if _, err := a.Apply(context.Background(), "http://instance", r, want(t, endpoints(80, 81))); err == nil {
		t.Fatal("a refused push succeeded")
	}
	same(t, "the refused push", r.take(), "add server tcpm-be-default:a/default:a:10.0.0.1:81 10.0.0.1:81", "POST raw runtime 0 actions")

	r.refuse = nil
	out := runMaps(t, a, r, want(t, endpoints(80, 81)))
	if !out.Reloaded {
		t.Errorf("after a refused push with servers added, the next push did not reload: %q", r.take())
	}
}
