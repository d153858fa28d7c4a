// Package apply makes HAProxy instances run a rendered configuration
// through the Data Plane API, sending the least. An Applier remembers per
// instance what it applied (configuration version, a digest of the text,
// the model's structure and runtime view, certificate and map file
// digests, the map entries HAProxy runs), so an unchanged instance costs
// one GET of the configuration version. Changes that need no reload go
// out at runtime: server addresses, weights and states as runtime actions,
// a Service's endpoints as servers added (add server) or retired
// (maintenance), hosts and weights as map entries (add/set/del map);
// only a change of structure reloads, and then Apply returns once the
// reload succeeded. Servers are added and map entries changed before the
// text that names them is stored, so they serve at once and a moved
// endpoint's new server serves before the old one is retired. A model
// derived from the last one (Desired.Since, Desired.Changed) is digested
// from the last one's digest, reading only the changed sections
// (digest.go). Map files are stored before the configuration that
// loads them and kept equal to what runs, so a reload loads the same
// routes. When it remembers nothing (a restart) or the version moved
// under it, it reads the stored text and compares by meaning, through
// client-native's configuration parser, so it works against any server
// that re-serialises the file (the official dataplaneapi does). An API
// other than this project's dataplane reads paths in the configuration
// as written and keeps files where it likes: such an instance gets the
// rendered text with the directories its answers name written in
// (paths.go), its CA bundles and CRLs go to its general storage, and
// files are stored under names it keeps. It is the only operator code
// that talks to the Data Plane API; it imports the model and the client,
// nothing from Kubernetes.
package apply

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/haproxytech/client-native/v5/models"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
)

// Instance is the part of the Data Plane API client the applier needs;
// *client.Client implements it.
type Instance interface {
	Info(ctx context.Context) (*models.Info, error)
	Version(ctx context.Context) (int64, error)
	RawConfiguration(ctx context.Context) (string, int64, error)
	PushConfiguration(ctx context.Context, cfg []byte, p client.Push) (client.PushResult, error)
	Validate(ctx context.Context, cfg []byte) error
	WaitReload(ctx context.Context, id string) error
	Certificates(ctx context.Context) (models.SslCertificates, error)
	Certificate(ctx context.Context, name string) (*models.SslCertificate, error)
	StoreCertificate(ctx context.Context, name string, pem []byte, replace bool) (client.Stored, error)
	DeleteCertificate(ctx context.Context, name string) error
	GeneralFiles(ctx context.Context) (models.GeneralFiles, error)
	GeneralFile(ctx context.Context, name string) ([]byte, error)
	StoreGeneralFile(ctx context.Context, name string, content []byte, replace bool) (client.Stored, error)
	DeleteGeneralFile(ctx context.Context, name string) error
}

// ServerInstance is the part of the Data Plane API client that adds and
// deletes servers at runtime; without it, a new endpoint reloads.
type ServerInstance interface {
	AddRuntimeServer(ctx context.Context, backend string, s models.RuntimeAddServer) error
	DeleteRuntimeServer(ctx context.Context, backend, name string) error
}

// MapInstance is the part of the Data Plane API client that stores map
// files and changes their entries at runtime; an Instance whose desired
// configuration loads maps must implement it.
type MapInstance interface {
	Maps(ctx context.Context) (models.Maps, error)
	MapFile(ctx context.Context, name string) ([]byte, error)
	StoreMap(ctx context.Context, name string, content []byte, replace bool) (client.Stored, error)
	DeleteMap(ctx context.Context, name string) error
	MapEntries(ctx context.Context, mapName string) (models.MapEntries, error)
	AddMapEntry(ctx context.Context, mapName, key, value string) error
	SetMapEntry(ctx context.Context, mapName, key, value string) error
	DeleteMapEntry(ctx context.Context, mapName, key string) error
}

// Desired is what an instance should run.
type Desired struct {
	// Config is the rendered haproxy.cfg.
	Config []byte
	// Digest, when not zero, names Config: the same for texts with the
	// same head and sections, in any order, another for any other
	// (render's Rendered.Digest, worked out from the sections rendered
	// again). Zero: the applier hashes Config, 4 MB at 10,000 mappings.
	Digest [sha256.Size]byte
	// Model is what Config was rendered from; the applier decides from it
	// what can change at runtime. A zero Model makes every decision go
	// through the stored text (slower, same outcome).
	Model model.Config
	// Certificates are the files to store; nil means Model.Certificates.
	Certificates []model.Certificate

	// Revision names Model for later models derived from it; 0 names
	// none. Models of one revision are equal.
	Revision uint64
	// Since and Changed say that Model is the model of revision Since
	// with only the frontends, backends and map files Changed names
	// changed, added or removed: the applier then reads only those
	// sections of Model (whose lists are in name order, as translate
	// gives them). With Since 0, or a revision the applier no longer
	// knows, it reads all of Model.
	Since   uint64
	Changed []string

	// HoldReload asks for no reload now: when the instance runs a
	// configuration the applier knows and Model changes its structure,
	// Apply sends nothing and says so in Outcome.Held. What needs no
	// reload goes out as always. An instance in an unknown state is
	// brought to Model, reloading if it must.
	HoldReload bool
}

// Outcome says what Apply did.
type Outcome struct {
	// Changed is false when the instance already ran the configuration.
	Changed bool
	// Reloaded is true when HAProxy reloaded (and the reload succeeded).
	Reloaded bool
	// Actions are the runtime actions sent instead of a reload.
	Actions []client.Action
	// Certificates lists the certificate files created or replaced.
	Certificates []string
	// MapChanges are the map entry changes made at runtime, as HAProxy's
	// add/set/del map commands would read.
	MapChanges []string
	// ServersAdded are the servers added at runtime, as backend/server.
	ServersAdded []string
	// Held: the change needs a reload, which Desired.HoldReload held
	// back; nothing was sent.
	Held bool
}

// maxConflictRetries bounds how often a push that met a concurrent
// change is re-planned and sent again.
const maxConflictRetries = 3

// Applier applies configurations to the instances of one HAProxy
// resource and remembers, per instance, what it applied. It is safe for
// concurrent use; applies to one instance are serialised.
type Applier struct {
	mu        sync.Mutex
	instances map[string]*instanceState
	// last is the digest of the last revision applied, which the next
	// one may be derived from.
	last *modelDigest
}

// NewApplier returns an Applier that remembers nothing yet.
func NewApplier() *Applier {
	return &Applier{instances: map[string]*instanceState{}}
}

// Forget drops what the Applier remembers about the instance at
// endpoint (one that went away); the next Apply to it compares by meaning.
func (a *Applier) Forget(endpoint string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.instances, endpoint)
}

func (a *Applier) instance(endpoint string) *instanceState {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.instances[endpoint]
	if !ok {
		st = &instanceState{certs: map[fileKey]string{}, storedMaps: map[string]string{}}
		a.instances[endpoint] = st
	}
	return st
}

// digestOf is the digest of desired's model: the one of its revision
// when known, else a new one, derived from the revision it names when
// that is the last one.
func (a *Applier) digestOf(desired Desired) *modelDigest {
	if isZero(&desired.Model) {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if desired.Revision != 0 && a.last != nil && a.last.revision == desired.Revision {
		return a.last
	}
	d := &modelDigest{model: &desired.Model, revision: desired.Revision}
	if desired.Since != 0 && a.last != nil && a.last.revision == desired.Since {
		d.base, d.changed = a.last, desired.Changed
	}
	if desired.Revision != 0 {
		a.last = d
	}
	return d
}

// Apply brings the instance at endpoint, reached through inst, to
// desired. A configuration HAProxy refuses is a *RefusedError (the
// instance keeps running the previous one); other errors wrap their cause
// (errors.Is(err, context.DeadlineExceeded) for a timeout).
func (a *Applier) Apply(ctx context.Context, endpoint string, inst Instance, desired Desired) (Outcome, error) {
	st := a.instance(endpoint)
	want := newTarget(desired, a.digestOf(desired))
	st.mu.Lock()
	defer st.mu.Unlock()
	out, err := st.apply(ctx, inst, desired, want)
	return out, st.readable(err, desired.Config)
}

// Apply applies desired to inst with nothing remembered: it reads the
// stored configuration and compares by meaning. Long-running callers use
// an Applier, which sends nothing when nothing changed.
func Apply(ctx context.Context, inst Instance, desired Desired) (Outcome, error) {
	return NewApplier().Apply(ctx, "", inst, desired)
}

// Validate asks the instance at endpoint whether its HAProxy would accept
// cfg, changing nothing, with cfg written for that instance as Apply
// would send it (its directories and the stored names of files in, when
// its API needs them literally).
// A refusal is a *RefusedError at StageValidate.
func (a *Applier) Validate(ctx context.Context, endpoint string, inst Instance, cfg []byte) error {
	st := a.instance(endpoint)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := st.detect(ctx, inst); err != nil {
		return err
	}
	t := target{config: cfg}
	if err := st.localize(ctx, inst, &t, &storedText{}); err != nil {
		return err
	}
	return st.readable(Validate(ctx, inst, t.config), cfg)
}

// Validate asks the instance's HAProxy whether it would accept cfg as
// written, changing nothing. A refusal is a *RefusedError at
// StageValidate.
func Validate(ctx context.Context, inst interface {
	Validate(ctx context.Context, cfg []byte) error
}, cfg []byte) error {
	err := inst.Validate(ctx, cfg)
	if err == nil {
		return nil
	}
	if r := refusal(err); r != nil {
		r.Stage = StageValidate
		return r
	}
	return fmt.Errorf("validate configuration: %w", err)
}

// instanceState is what the applier knows about one instance.
type instanceState struct {
	mu sync.Mutex

	// apiKnown is set once the API's kind was read from /v2/info and,
	// for an API other than ours, its storage probed.
	apiKnown bool
	// runtimeCertSwap: a replaced certificate is served to new
	// connections without a reload (this project's dataplane). The
	// official API's PUT only writes the file.
	runtimeCertSwap bool
	// literal: the API reads paths in the configuration as written (it
	// does not expand the environment variables the template names
	// directories with), so the text it gets has them written in.
	literal bool
	// generalStorage: the API serves storage/general, where CA bundles
	// and CRLs go when the configuration is literal.
	generalStorage bool
	// dirs are the instance's directories, as far as known: learned from
	// storage answers, else read from its stored configuration, else the
	// defaults. Only used when literal.
	dirs dirs

	// known says the fields below describe the stored configuration.
	known     bool
	version   int64
	text      [sha256.Size]byte
	hasModel  bool
	structure string
	view      runtimeView
	// viewRev is the revision whose desired view view is (with servers
	// retired since): 0 when none is known.
	viewRev uint64
	// needReload is set when a push failed halfway: the running HAProxy
	// may not match the stored file, so the next push reloads.
	needReload bool

	// certs are the digests of the certificate files this applier stored
	// (or found equal); certsChecked says the names were checked against
	// the instance's list since the configuration state was last lost.
	certs        map[fileKey]string
	certsChecked bool

	// storedMaps are the digests of the map files this applier stored;
	// mapsChecked says the names were checked against the API's list
	// since the configuration state was last lost.
	storedMaps  map[string]string
	mapsChecked bool
	// runMaps are the entries HAProxy runs per map file, where known;
	// mapsRev is the revision whose map entries they are (0: none known).
	runMaps map[string]mapEntries
	mapsRev uint64
}

// target is desired, digested. The model's digests are made when first
// asked for: a configuration whose text did not change needs none.
type target struct {
	config   []byte
	text     [sha256.Size]byte
	hasModel bool
	// dirs, when set, are the instance's directories written into the
	// text (a literal API): part of the structure.
	dirs   string
	digest *modelDigest
	certs  []model.Certificate
}

func (t target) digested() *modelDigest { return t.digest.digested() }

// structure identifies what the configuration is, leaving out what
// runtime actions change (see modelDigest).
func (t target) structure() string {
	s := t.digested().structure
	if t.dirs != "" {
		s += "\x00" + t.dirs
	}
	return s
}

// view is the model's runtime view.
func (t target) view() runtimeView { return t.digested().view }

// newTarget is d with its model's digest: digest, when the caller has
// one for it (an Applier shares one per revision), else a new one.
func newTarget(d Desired, digest *modelDigest) target {
	t := target{config: d.Config, text: d.Digest, certs: d.Certificates}
	if t.text == ([sha256.Size]byte{}) {
		t.text = sha256.Sum256(d.Config)
	}
	if t.certs == nil {
		t.certs = d.Model.Certificates
	}
	if !isZero(&d.Model) {
		t.hasModel = true
		t.digest = digest
		if digest == nil {
			t.digest = &modelDigest{model: &d.Model}
		}
	}
	return t
}

func isZero(m *model.Config) bool {
	return m.Name == "" && len(m.Frontends) == 0 && len(m.Backends) == 0 && m.Stats == nil && m.Resolvers == nil
}

type pushKind int

const (
	pushNothing pushKind = iota
	pushRuntime
	pushReload
)

// configPlan is what to send for the configuration.
type configPlan struct {
	kind    pushKind
	version int64
	actions []client.Action
	// add are the servers to create after the push (HAProxy's add server).
	add []runtimeServer
	// view is what runs once the plan is carried out, with changes made
	// to it; nil keeps the desired model's view. It is the instance's
	// own map (its state or one parsed for the plan), never a digest's:
	// the changes are made to it in place.
	view    runtimeView
	changes runtimePlan
	// sameText: the instance runs the text desired, as remembered.
	sameText bool
}

func (st *instanceState) apply(ctx context.Context, inst Instance, desired Desired, want target) (Outcome, error) {
	var out Outcome
	if err := st.detect(ctx, inst); err != nil {
		return out, err
	}
	version, err := inst.Version(ctx)
	if err != nil {
		return out, fmt.Errorf("read configuration version: %w", err)
	}
	if !st.known || version != st.version {
		st.certsChecked, st.mapsChecked = false, false
		st.forgetRunMaps()
	}
	if desired.HoldReload && st.wouldReload(version, want) {
		out.Held = true
		return out, nil
	}
	certs, err := st.planCertificates(ctx, inst, want.certs)
	if err != nil {
		return out, err
	}
	maps, err := st.planMaps(ctx, inst, want)
	if err != nil {
		return out, err
	}

	// Files first: the new configuration may load them, and the answers
	// say where the API keeps them, which the configuration then names.
	var reloads []string
	for _, c := range certs.store {
		var stored client.Stored
		if c.key.store == generalStore {
			stored, err = inst.StoreGeneralFile(ctx, c.key.name, c.cert.PEM.Reveal(), c.replace)
		} else {
			stored, err = inst.StoreCertificate(ctx, c.key.name, c.cert.PEM.Reveal(), c.replace)
		}
		if err != nil {
			var apiErr *client.APIError
			if errors.As(err, &apiErr) && fileRefused(apiErr) {
				// The file itself is refused: name it, so the caller can
				// leave out what it came from and apply the rest.
				return out, &RefusedError{Stage: StageValidate, Lines: []string{fmt.Sprintf("%s file %s refused: %s", c.key.store, c.cert.File, apiErr.Message)}, Err: err}
			}
			return out, fmt.Errorf("store %s %s: %w", c.key.store, c.cert.File, err)
		}
		if stored.File != "" && path.Base(stored.File) != c.key.name {
			// The configuration names the file by the name it was sent
			// under; an API that renames it would leave HAProxy without.
			return out, fmt.Errorf("store %s %s: the API stored it as %s, not under the name %s the configuration uses", c.key.store, c.cert.File, stored.File, c.key.name)
		}
		st.learn(c.key.store, stored.File)
		st.certs[c.key] = c.digest
		out.Changed = true
		out.Certificates = append(out.Certificates, c.cert.File)
		if stored.ReloadID != "" {
			reloads = append(reloads, stored.ReloadID)
		}
	}

	if err := st.storeMaps(ctx, inst, maps, &out); err != nil {
		return out, err
	}

	raw := &storedText{}
	if err := st.localize(ctx, inst, &want, raw); err != nil {
		return out, err
	}
	plan, err := st.planConfig(ctx, inst, version, want, raw)
	if err != nil {
		return out, err
	}
	if certs.needsReload(st.runtimeCertSwap) {
		plan.kind = pushReload
	}

	// Without a reload, what runs changes first and the text after: new
	// servers are added before the push puts the servers they replace in
	// maintenance (an endpoint that moves always has one serving), and
	// map entries route new hosts and weights at once rather than after
	// the 4 MB text is stored and checked. Map entries wait for the push
	// when it makes a retired server ready again: a host must not be
	// routed to a server still in maintenance.
	mapsFirst := plan.kind != pushReload && !makesReady(plan.actions)
	if plan.kind == pushRuntime {
		if err := st.addServers(ctx, inst, plan.add, &out); err != nil {
			// HAProxy may run some of them: a reload makes it run what the
			// stored text says.
			st.known, st.needReload = false, true
			return out, err
		}
	}
	if mapsFirst {
		if err := st.syncMapEntries(ctx, inst, want, &out); err != nil {
			return out, err
		}
	}

	for attempt := 0; ; attempt++ {
		id, err := st.push(ctx, inst, want, plan, &out)
		if err != nil && plan.kind == pushRuntime && (len(plan.add) > 0 || mapsFirst) && !errors.Is(err, client.ErrVersionConflict) {
			// HAProxy runs changes the stored text lacks: the next push
			// reloads, so that it runs the text.
			st.needReload = true
		}
		if errors.Is(err, client.ErrVersionConflict) && attempt < maxConflictRetries {
			// Someone else changed it: read again and decide again. The
			// servers added stay; the push stores the text naming them.
			st.forgetRunMaps()
			mapsFirst = false
			forced := plan.kind == pushReload && certs.needsReload(st.runtimeCertSwap)
			if version, err = inst.Version(ctx); err != nil {
				return out, fmt.Errorf("read configuration version: %w", err)
			}
			if plan, err = st.planByMeaning(ctx, inst, version, want, &storedText{}); err != nil {
				return out, err
			}
			if forced {
				plan.kind = pushReload
			}
			continue
		}
		if err != nil {
			return out, err
		}
		if id != "" {
			reloads = append(reloads, id)
		}
		break
	}

	// Map entries run in memory: after a reload HAProxy read the files
	// just stored; otherwise they change at runtime, once the servers
	// they route to are in place.
	if plan.kind == pushReload {
		st.loaded(want)
	} else if !mapsFirst {
		if err := st.syncMapEntries(ctx, inst, want, &out); err != nil {
			return out, err
		}
	}

	// Old files last: the API refuses to delete a file the stored
	// configuration still names.
	for _, k := range certs.remove {
		var err error
		if k.store == generalStore {
			err = inst.DeleteGeneralFile(ctx, k.name)
		} else {
			err = inst.DeleteCertificate(ctx, k.name)
		}
		if err != nil {
			return out, fmt.Errorf("delete %s %s: %w", k.store, k.name, err)
		}
		delete(st.certs, k)
		out.Changed = true
	}
	st.certsChecked = true
	if err := st.removeMaps(ctx, inst, maps, &out); err != nil {
		return out, err
	}

	seen := map[string]bool{}
	for _, id := range reloads {
		if seen[id] {
			continue
		}
		seen[id] = true
		if err := inst.WaitReload(ctx, id); err != nil {
			st.known = false
			st.forgetRunMaps()
			if r := refusal(err); r != nil {
				return out, r
			}
			return out, fmt.Errorf("wait for reload: %w", err)
		}
		out.Reloaded = true
	}
	return out, nil
}

// fileRefused says whether an answer to storing a file refuses the
// content: 400 or 422, or the official API's 500 for a file it cannot
// parse. Any other 500 may be the instance's trouble, not the file's.
func fileRefused(e *client.APIError) bool {
	switch e.Status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return true
	case http.StatusInternalServerError:
		m := strings.ToLower(e.Message)
		return strings.Contains(m, "failed to parse") || strings.Contains(m, "should contain")
	}
	return false
}

// planConfig decides from what it remembers when the version is the one
// it left, else from the stored text.
func (st *instanceState) planConfig(ctx context.Context, inst Instance, version int64, want target, raw *storedText) (configPlan, error) {
	if !st.known || version != st.version {
		return st.planByMeaning(ctx, inst, version, want, raw)
	}
	plan := configPlan{kind: pushReload, version: version}
	switch {
	case st.needReload:
	case want.text == st.text:
		plan.kind, plan.view, plan.sameText = pushNothing, st.view, true
	case want.hasModel && st.hasModel && want.structure() == st.structure:
		if rp, ok := st.runtimeActionsTo(want); ok && st.canAdd(inst, rp) {
			plan.kind, plan.actions, plan.add, plan.view, plan.changes = pushRuntime, rp.actions, rp.add, st.view, rp
		}
	case !want.hasModel || !st.hasModel:
		// Nothing to decide from but the text.
		return st.planByMeaning(ctx, inst, version, want, raw)
	}
	return plan, nil
}

// wouldReload says, from what it remembers alone, that bringing the
// instance to want takes a reload: its structure is not the one running.
// Unknown or doubtful states say no; they are decided by planConfig.
func (st *instanceState) wouldReload(version int64, want target) bool {
	if !st.known || version != st.version || st.needReload || !want.hasModel || !st.hasModel {
		return false
	}
	s := want.digested().structure
	if st.literal {
		// The directories written in are, until localize learns
		// others, those of the last push.
		s += "\x00" + st.dirs.String()
	}
	return s != st.structure
}

// runtimeActionsTo is the runtime plan from what runs to want: worked out
// for the backends changed since the revision want derives from alone,
// when that revision is what runs.
func (st *instanceState) runtimeActionsTo(want target) (runtimePlan, bool) {
	d := want.digested()
	if d.since != 0 && st.viewRev == d.since {
		return runtimeActionsIn(st.view, d.view, d.changedBackends)
	}
	return runtimeActions(st.view, d.view)
}

// planByMeaning reads the stored configuration and compares it with the
// desired one as client-native's parser reads both. The push goes against
// version, read from the version endpoint before the text: after a failed
// reload the official API serves the rolled-back file, whose _version is
// older than the version it checks pushes against.
func (st *instanceState) planByMeaning(ctx context.Context, inst Instance, version int64, want target, raw *storedText) (configPlan, error) {
	stored, err := raw.get(ctx, inst)
	if err != nil {
		return configPlan{}, err
	}
	plan := configPlan{kind: pushReload, version: version}
	if st.needReload {
		return plan, nil
	}
	dynamic := dynamicBackends(want)
	have, err := parseConfig(stored, dynamic)
	if err != nil {
		return plan, nil // what cannot be read is replaced
	}
	next, err := parseConfig(string(want.config), dynamic)
	if err != nil {
		return plan, nil // haproxy -c will say what is wrong with it
	}
	// The model's view knows how to add a server; the text's does not.
	desired := next.servers
	if want.hasModel {
		// The digest's own view goes on to the next revision: what runs
		// is a copy.
		desired = maps.Clone(want.view())
	}
	plan.view = desired
	switch {
	case have.canonical == next.canonical:
		plan.kind = pushNothing
	case have.structure == next.structure:
		if rp, ok := runtimeActions(have.servers, desired); ok && st.canAdd(inst, rp) {
			// have.servers was parsed for this plan: it becomes what runs.
			plan.kind, plan.actions, plan.add, plan.view, plan.changes = pushRuntime, rp.actions, rp.add, have.servers, rp
		}
	}
	return plan, nil
}

// push sends the configuration as planned and remembers what the instance
// then runs. It returns the ID of a reload the API queued.
func (st *instanceState) push(ctx context.Context, inst Instance, want target, plan configPlan, out *Outcome) (string, error) {
	remember := func(version int64) {
		st.known, st.version, st.text, st.needReload = true, version, want.text, false
		st.viewRev = 0
		if want.hasModel {
			// The view below is this revision's (with servers retired).
			st.viewRev = want.digested().revision
		}
		if plan.sameText && st.hasModel == want.hasModel {
			// The same text: the same structure and view as remembered.
			return
		}
		st.hasModel = want.hasModel
		st.structure = ""
		if want.hasModel {
			st.structure = want.structure()
		}
		switch {
		case plan.view != nil && plan.kind != pushReload:
			st.view = plan.changes.applyTo(plan.view)
		case want.hasModel:
			// The digest's own view goes on to the next revision (a
			// derived digest changes it in place): what runs is a copy,
			// made once per reload.
			st.view = maps.Clone(want.view())
		default:
			st.view = plan.view
		}
	}
	if plan.kind == pushNothing {
		remember(plan.version)
		return "", nil
	}
	p := client.Push{Version: plan.version}
	if plan.kind == pushRuntime {
		p.SkipReload, p.Actions = true, plan.actions
	} else {
		p.ForceReload = true
	}
	res, err := inst.PushConfiguration(ctx, want.config, p)
	switch {
	case errors.Is(err, client.ErrVersionConflict):
		st.known = false
		return "", err
	case err != nil:
		if r := refusal(err); r != nil {
			if r.Stage == StageReload {
				// The API went back to the previous file and version.
				st.known = false
			}
			return "", r
		}
		// Unknown whether it was stored or which actions ran.
		st.known, st.needReload = false, true
		return "", fmt.Errorf("push configuration: %w", err)
	}
	out.Changed = true
	out.Actions = p.Actions
	out.Reloaded = out.Reloaded || (p.ForceReload && res.Status != 202)
	version := res.Version
	if version == 0 {
		if version, err = inst.Version(ctx); err != nil {
			// Stored, but the version is unknown: decide by meaning
			// next time.
			st.known = false
			return res.ReloadID, nil
		}
	}
	remember(version)
	return res.ReloadID, nil
}

// The Data Plane API client stores maps and adds servers.
var (
	_ Instance       = (*client.Client)(nil)
	_ MapInstance    = (*client.Client)(nil)
	_ ServerInstance = (*client.Client)(nil)
)
