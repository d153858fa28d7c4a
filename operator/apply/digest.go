package apply

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"slices"
	"strings"
	"sync"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
)

// modelDigest is what the applier reads of a model: its structure (what
// a reload is needed for), its runtime view (servers), which backends
// take servers at runtime, and the content digest of each map file. Two
// models of the same structure render to texts that differ only in
// server addresses and weights and in which dynamic servers (a Service's
// endpoints) each backend has, and load the same map files, whose
// entries may differ; Secrets count through their digest, certificate
// contents are synchronised on their own. It
// is shared by the instances applying one revision and worked out once,
// when first asked for.
//
// A model derived from an earlier revision (Desired.Since) is worked out
// from that revision's digest: only the sections Desired.Changed names
// are read, so a weight among 10,000 mappings costs what its port costs.
// The structure is then a sum over sections that a changed section
// updates in place: the XOR of each section's keyed digest.
type modelDigest struct {
	model    *model.Config
	revision uint64
	// base and changed are the derivation, until worked out.
	base    *modelDigest
	changed []string

	once sync.Once
	// Per section (by name): the digest of what it renders, with what
	// runtime actions change left out. Map files count by name alone.
	frontends, backends map[string][sha256.Size]byte
	// sum is the XOR of every section's keyed digest; head is the digest
	// of everything outside the sections.
	sum, head [sha256.Size]byte
	structure string
	view      runtimeView
	// dynamic names the backends whose servers come and go at runtime.
	dynamic map[string]bool
	// mapContent is each map file's content digest (contentDigest).
	mapContent map[string]string

	// handedOver says a revision derived from this one took its
	// frontends, backends, view, dynamic and mapContent maps to change
	// in place: a weight change among 10,000 mappings then copies none
	// of them. Only the newest revision is derived from
	// (Applier.digestOf), and a second derivation from a revision that
	// handed over works its digest out in full. An instance's state
	// keeps a copy of the view it runs, never the digest's.
	handOverMu sync.Mutex
	handedOver bool

	// since is the revision this one was derived from (0: worked out in
	// full); changedBackends and changedMaps are the backends and map
	// files (positions in model.Maps) that differ from it.
	since           uint64
	changedBackends []string
	changedMaps     []int
}

// digested works the digest out on first use.
func (d *modelDigest) digested() *modelDigest {
	d.once.Do(func() {
		if d.base != nil && inNameOrder(d.model) && d.base.digested().handOver() {
			d.derive()
		} else {
			d.full()
		}
		// A derived digest copies what it needs: the chain of earlier
		// revisions is not kept alive.
		d.base, d.changed = nil, nil
	})
	return d
}

// sectionDigester hashes sections one at a time through one encoder.
type sectionDigester struct {
	h      hash.Hash
	enc    *json.Encoder
	static []model.Server
}

func newSectionDigester() *sectionDigester {
	h := sha256.New()
	return &sectionDigester{h: h, enc: json.NewEncoder(h)}
}

func (s *sectionDigester) sum(v any) [sha256.Size]byte {
	s.h.Reset()
	// Encoding plain data into a hash cannot fail.
	_ = s.enc.Encode(v)
	var out [sha256.Size]byte
	s.h.Sum(out[:0])
	return out
}

func (s *sectionDigester) frontend(f *model.Frontend) [sha256.Size]byte {
	c := *f
	// Sources name objects for messages; render does not write them.
	c.Sources = nil
	return s.sum(&c)
}

func (s *sectionDigester) backend(b *model.Backend) [sha256.Size]byte {
	c := *b
	// Which mapping holds a pool's backend, and its share, are not
	// written in the text.
	c.Members, c.Sources = nil, nil
	// Dynamic servers come and go at runtime: the backend's Template is
	// their structure. Of the others, only what a runtime action cannot
	// change counts.
	s.static = s.static[:0]
	for _, srv := range b.Servers {
		if srv.Dynamic {
			continue
		}
		srv.Weight = 0
		if srv.Socket == "" && srv.Resolve == nil {
			srv.Address, srv.Port = "", 0
		}
		s.static = append(s.static, srv)
	}
	c.Servers = s.static
	return s.sum(&c)
}

// keyed is a section's digest bound to its kind and name, as it enters
// the sum.
func keyed(kind byte, name string, digest [sha256.Size]byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte{kind})
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write(digest[:])
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

func xorInto(sum *[sha256.Size]byte, v [sha256.Size]byte) {
	for i := range sum {
		sum[i] ^= v[i]
	}
}

const (
	kindFrontend = 'f'
	kindBackend  = 'b'
	kindMap      = 'm'
)

// headDigest is the digest of everything outside the frontends, backends
// and map files: global settings, stats, resolvers, certificate files.
// Secrets count through their digest; certificate contents are
// synchronised on their own.
func headDigest(cfg *model.Config) [sha256.Size]byte {
	h := sha256.New()
	c := *cfg
	if c.Stats != nil {
		st := *c.Stats
		h.Write([]byte("stats password\x00"))
		h.Write(st.Password.Reveal())
		h.Write([]byte{0})
		st.Password = nil
		c.Stats = &st
	}
	c.Frontends, c.Backends, c.Maps = nil, nil, nil
	c.Certificates = make([]model.Certificate, len(cfg.Certificates))
	for i, cert := range cfg.Certificates {
		c.Certificates[i] = model.Certificate{File: cert.File}
	}
	_ = json.NewEncoder(h).Encode(&c)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

func (d *modelDigest) finish() {
	d.head = headDigest(d.model)
	h := sha256.New()
	h.Write(d.head[:])
	h.Write(d.sum[:])
	d.structure = hex.EncodeToString(h.Sum(nil))
}

// full works everything out from the model.
func (d *modelDigest) full() {
	m := d.model
	sd := newSectionDigester()
	d.frontends = make(map[string][sha256.Size]byte, len(m.Frontends))
	d.backends = make(map[string][sha256.Size]byte, len(m.Backends))
	d.view = make(runtimeView, len(m.Backends))
	d.dynamic = map[string]bool{}
	d.mapContent = make(map[string]string, len(m.Maps))
	for i := range m.Frontends {
		digest := sd.frontend(m.Frontends[i])
		d.swap(d.frontends, kindFrontend, m.Frontends[i].Name, &digest)
	}
	for i := range m.Backends {
		b := m.Backends[i]
		digest := sd.backend(b)
		d.swap(d.backends, kindBackend, b.Name, &digest)
		if servers := backendView(b); len(servers) > 0 {
			d.view[b.Name] = servers
		}
		if b.Template != nil {
			d.dynamic[b.Name] = true
		}
	}
	for i := range m.Maps {
		mp := &m.Maps[i]
		d.mapContent[mp.Name] = contentDigest(mp.Content())
		xorInto(&d.sum, keyed(kindMap, mp.Name, [sha256.Size]byte{}))
	}
	d.finish()
}

// handOver reports whether a derived revision may take d's maps; it
// says yes once.
func (d *modelDigest) handOver() bool {
	d.handOverMu.Lock()
	defer d.handOverMu.Unlock()
	if d.handedOver {
		return false
	}
	d.handedOver = true
	return true
}

// derive works out the sections changed since the base revision and
// takes the others from it, whose maps it changes in place (handOver).
// Only the changed names are looked up, in the model's lists by binary
// search: a name the model lacks and the base has is a section removed.
func (d *modelDigest) derive() {
	base, m := d.base, d.model
	sd := newSectionDigester()
	d.since = base.revision
	d.sum = base.sum
	d.frontends, d.backends, d.dynamic, d.mapContent, d.view = base.frontends, base.backends, base.dynamic, base.mapContent, base.view
	base.frontends, base.backends, base.dynamic, base.mapContent, base.view = nil, nil, nil, nil, nil

	changed := slices.Clone(d.changed)
	slices.Sort(changed)
	changed = slices.Compact(changed)
	for _, name := range changed {
		if i, ok := model.Find(m.Frontends, name, model.FrontendNameOf); ok {
			digest := sd.frontend(m.Frontends[i])
			d.swap(d.frontends, kindFrontend, name, &digest)
		} else if _, ok := d.frontends[name]; ok {
			d.swap(d.frontends, kindFrontend, name, nil)
		}

		if i, ok := model.Find(m.Backends, name, model.BackendNameOf); ok {
			b := m.Backends[i]
			d.changedBackends = append(d.changedBackends, name)
			digest := sd.backend(b)
			d.swap(d.backends, kindBackend, name, &digest)
			delete(d.view, name)
			if servers := backendView(b); len(servers) > 0 {
				d.view[name] = servers
			}
			delete(d.dynamic, name)
			if b.Template != nil {
				d.dynamic[name] = true
			}
		} else if _, ok := d.backends[name]; ok {
			d.changedBackends = append(d.changedBackends, name)
			d.swap(d.backends, kindBackend, name, nil)
			delete(d.view, name)
			delete(d.dynamic, name)
		}

		if i, ok := model.Find(m.Maps, name, model.MapNameOf); ok {
			mp := &m.Maps[i]
			d.changedMaps = append(d.changedMaps, i)
			if _, ok := d.mapContent[name]; !ok {
				xorInto(&d.sum, keyed(kindMap, name, [sha256.Size]byte{}))
			}
			d.mapContent[name] = contentDigest(mp.Content())
		} else if _, ok := d.mapContent[name]; ok {
			delete(d.mapContent, name)
			xorInto(&d.sum, keyed(kindMap, name, [sha256.Size]byte{}))
		}
	}
	d.finish()
}

// inNameOrder reports whether the model's frontends, backends and maps
// are in name order, which derive's lookups need.
func inNameOrder(m *model.Config) bool {
	return slices.IsSortedFunc(m.Frontends, func(a, b *model.Frontend) int { return strings.Compare(a.Name, b.Name) }) &&
		slices.IsSortedFunc(m.Backends, func(a, b *model.Backend) int { return strings.Compare(a.Name, b.Name) }) &&
		slices.IsSortedFunc(m.Maps, func(a, b model.Map) int { return strings.Compare(a.Name, b.Name) })
}

// swap puts digest in sections as name's (nil: removes name), keeping
// sum the XOR of every section's keyed digest.
func (d *modelDigest) swap(sections map[string][sha256.Size]byte, kind byte, name string, digest *[sha256.Size]byte) {
	if old, ok := sections[name]; ok {
		xorInto(&d.sum, keyed(kind, name, old))
		delete(sections, name)
	}
	if digest != nil {
		sections[name] = *digest
		xorInto(&d.sum, keyed(kind, name, *digest))
	}
}
