package apply

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
)

// Map files (model.Config.Maps) route connections: hosts to groups, slot
// ranges to backends. They go to the API's map storage before the
// configuration that loads them; HAProxy reads them at a reload, and
// between reloads their entries change at runtime, so a weight or route
// change is a few map entry calls and no reload. The stored file is
// always replaced first, so a later reload loads what runs.

// mapEntries is one map's entries by key.
type mapEntries map[string]string

func entriesOf(m model.Map) mapEntries {
	out := make(mapEntries, len(m.Entries))
	for _, e := range m.Entries {
		out[e.Key] = e.Value
	}
	return out
}

// mapAction is one runtime change of a map entry.
type mapAction struct {
	op         mapOp
	name       string
	key, value string
}

type mapOp int

const (
	mapAdd mapOp = iota
	mapSet
	mapDelete
)

func (a mapAction) String() string {
	switch a.op {
	case mapAdd:
		return fmt.Sprintf("add map %s %s %s", a.name, a.key, a.value)
	case mapSet:
		return fmt.Sprintf("set map %s %s %s", a.name, a.key, a.value)
	}
	return fmt.Sprintf("del map %s %s", a.name, a.key)
}

// isHostMap says whether a map routes hosts to groups (model.HostMapName)
// rather than slots to backends.
func isHostMap(name string) bool { return strings.HasSuffix(name, "-hosts.map") }

// mapActions turns the running entries into the desired ones so that
// every connection finds a backend at every step: a weight map's new
// ranges are added (after the old ones, which HAProxy tries first) and
// changed values set before any host points at them; then hosts are added
// and changed, then hosts removed, and old ranges removed last, which
// uncovers the new ones. Maps are taken in name order, keys in key order.
// running must hold every desired map's entries.
func mapActions(running map[string]mapEntries, desired []model.Map) []mapAction {
	var phases [4][]mapAction
	for _, m := range desired {
		have := running[m.Name]
		want := entriesOf(m)
		host := 0
		if isHostMap(m.Name) {
			host = 1
		}
		for _, e := range m.Entries {
			v, ok := have[e.Key]
			switch {
			case !ok:
				phases[host] = append(phases[host], mapAction{op: mapAdd, name: m.Name, key: e.Key, value: e.Value})
			case v != e.Value:
				phases[host] = append(phases[host], mapAction{op: mapSet, name: m.Name, key: e.Key, value: e.Value})
			}
		}
		var gone []string
		for k := range have {
			if _, ok := want[k]; !ok {
				gone = append(gone, k)
			}
		}
		sort.Strings(gone)
		for _, k := range gone {
			phases[3-host] = append(phases[3-host], mapAction{op: mapDelete, name: m.Name, key: k})
		}
	}
	var out []mapAction
	for _, p := range phases {
		out = append(out, p...)
	}
	return out
}

// mapPlan is what to do with map files.
type mapPlan struct {
	store  []storeMap
	remove []string
}

// storeMap is one map file to create or replace.
type storeMap struct {
	m       model.Map
	content []byte
	digest  string
	replace bool
}

// wantedMaps are the map files of want and their content digests.
func wantedMaps(want target) ([]model.Map, map[string]string) {
	if !want.hasModel {
		return nil, nil
	}
	d := want.digested()
	return d.model.Maps, d.mapContent
}

// planMaps decides which map files to store and delete. A file it stored
// is compared by the digest it remembers; one it does not remember, by
// the content the API serves. Contents are built only for the files to
// store: the digests come with the model's.
func (st *instanceState) planMaps(ctx context.Context, i Instance, t target) (mapPlan, error) {
	var plan mapPlan
	want, digests := wantedMaps(t)
	if len(want) == 0 && len(st.storedMaps) == 0 && st.mapsChecked {
		return plan, nil
	}
	inst, ok := i.(MapInstance)
	if !ok {
		if len(want) == 0 {
			// Nothing to store, and no way to list what is stored.
			return plan, nil
		}
		return plan, fmt.Errorf("the configuration loads map files and the client %T cannot store them", i)
	}
	var listed map[string]bool
	if !st.mapsChecked {
		all, err := inst.Maps(ctx)
		if err != nil {
			return plan, fmt.Errorf("list map files: %w", err)
		}
		listed = map[string]bool{}
		for _, m := range all {
			if m == nil {
				continue
			}
			listed[m.StorageName] = true
			st.learnMapDir(m.File)
		}
		for name := range st.storedMaps {
			if !listed[name] {
				delete(st.storedMaps, name)
			}
		}
	}
	for _, m := range want {
		d := digests[m.Name]
		if have, ok := st.storedMaps[m.Name]; ok {
			if have != d {
				plan.store = append(plan.store, storeMap{m: m, content: m.Content(), digest: d, replace: true})
			}
			continue
		}
		if listed[m.Name] {
			// Stored before this applier knew it: the same content
			// needs nothing.
			have, err := inst.MapFile(ctx, m.Name)
			if err != nil {
				return plan, fmt.Errorf("read map file %s: %w", m.Name, err)
			}
			if contentDigest(have) == d {
				st.storedMaps[m.Name] = d
				continue
			}
		}
		plan.store = append(plan.store, storeMap{m: m, content: m.Content(), digest: d, replace: listed[m.Name]})
	}
	for name := range st.storedMaps {
		if _, keep := digests[name]; !keep {
			plan.remove = append(plan.remove, name)
		}
	}
	for name := range listed {
		_, keep := digests[name]
		if _, remembered := st.storedMaps[name]; !keep && owned(name) && !remembered {
			plan.remove = append(plan.remove, name)
		}
	}
	sort.Strings(plan.remove)
	return plan, nil
}

// storeMaps stores the planned map files.
func (st *instanceState) storeMaps(ctx context.Context, i Instance, plan mapPlan, out *Outcome) error {
	if len(plan.store) == 0 {
		return nil
	}
	inst := i.(MapInstance) // planMaps planned nothing otherwise
	for _, s := range plan.store {
		stored, err := inst.StoreMap(ctx, s.m.Name, s.content, s.replace)
		if err != nil {
			delete(st.storedMaps, s.m.Name)
			return fmt.Errorf("store map file %s: %w", s.m.Name, err)
		}
		if base := stored.File; base != "" && base[strings.LastIndexByte(base, '/')+1:] != s.m.Name {
			// The configuration loads the file by the name it was sent
			// under; an API that renames it would leave HAProxy without.
			return fmt.Errorf("store map file %s: the API stored it as %s, not under the name the configuration uses", s.m.Name, stored.File)
		}
		st.learnMapDir(stored.File)
		st.storedMaps[s.m.Name] = s.digest
		out.Changed = true
	}
	return nil
}

// removeMaps deletes the map files the stored configuration no longer
// loads.
func (st *instanceState) removeMaps(ctx context.Context, i Instance, plan mapPlan, out *Outcome) error {
	inst, _ := i.(MapInstance) // planMaps planned nothing otherwise
	for _, name := range plan.remove {
		if err := inst.DeleteMap(ctx, name); err != nil {
			return fmt.Errorf("delete map file %s: %w", name, err)
		}
		delete(st.storedMaps, name)
		delete(st.runMaps, name)
		out.Changed = true
	}
	st.mapsChecked = true
	return nil
}

// syncMapEntries brings the entries HAProxy runs to want's, reading them
// from the API where it does not know them. When HAProxy runs the map
// entries of the revision want derives from, only the map files changed
// since are compared.
func (st *instanceState) syncMapEntries(ctx context.Context, i Instance, t target, out *Outcome) error {
	want, _ := wantedMaps(t)
	if len(want) == 0 {
		return nil
	}
	d := t.digested()
	if d.since != 0 && st.mapsRev == d.since && st.runMaps != nil {
		changed := make([]model.Map, len(d.changedMaps))
		for k, i := range d.changedMaps {
			changed[k] = want[i]
		}
		want = changed
	}
	// Until every action went through, what runs is no revision's.
	st.mapsRev = 0
	inst, ok := i.(MapInstance)
	if !ok {
		return fmt.Errorf("the configuration loads map files and the client %T cannot change them", i)
	}
	if st.runMaps == nil {
		st.runMaps = map[string]mapEntries{}
	}
	for _, m := range want {
		if _, ok := st.runMaps[m.Name]; ok {
			continue
		}
		all, err := inst.MapEntries(ctx, m.Name)
		if err != nil {
			return fmt.Errorf("read entries of map %s: %w", m.Name, err)
		}
		have := mapEntries{}
		for _, e := range all {
			if e != nil {
				have[e.Key] = e.Value
			}
		}
		st.runMaps[m.Name] = have
	}
	for _, a := range mapActions(st.runMaps, want) {
		var err error
		switch a.op {
		case mapAdd:
			err = inst.AddMapEntry(ctx, a.name, a.key, a.value)
		case mapSet:
			err = inst.SetMapEntry(ctx, a.name, a.key, a.value)
		default:
			err = inst.DeleteMapEntry(ctx, a.name, a.key)
		}
		if err != nil {
			// What runs is no longer known: read it again next time.
			delete(st.runMaps, a.name)
			return fmt.Errorf("%s: %w", a, err)
		}
		if a.op == mapDelete {
			delete(st.runMaps[a.name], a.key)
		} else {
			st.runMaps[a.name][a.key] = a.value
		}
		out.Changed = true
		out.MapChanges = append(out.MapChanges, a.String())
	}
	st.mapsRev = d.revision
	return nil
}

// loaded records that HAProxy (re)loaded the map files as stored: want's.
func (st *instanceState) loaded(t target) {
	want, _ := wantedMaps(t)
	st.runMaps = make(map[string]mapEntries, len(want))
	for _, m := range want {
		st.runMaps[m.Name] = entriesOf(m)
	}
	st.mapsRev = 0
	if t.hasModel {
		st.mapsRev = t.digested().revision
	}
}

// forgetRunMaps drops what is known of the map entries HAProxy runs.
func (st *instanceState) forgetRunMaps() {
	st.runMaps, st.mapsRev = nil, 0
}

// learnMapDir takes the directory the API keeps map files in from a path
// it answered.
func (st *instanceState) learnMapDir(file string) {
	if dir := dirOf(file); dir != "" {
		st.dirs.maps = dir
	}
}
