package translate_test

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/yaml"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/internal/golden"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/render"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// change is one edit of a snapshot and the ports it touches.
type change struct {
	name  string
	edit  func(s *snapshot.Snapshot) []int32
	ports []int32
}

// changesOn are the edits Update must follow on one port: none, every
// weight, a mapping removed, a mapping added (a new host beside the
// others, or a second member of a group), and the endpoints of the
// Services its mappings use.
func changesOn(port int32) []change {
	onPort := func(s *snapshot.Snapshot) []int {
		var out []int
		for i, m := range s.TCPMappings {
			if m.Spec.Port == port {
				out = append(out, i)
			}
		}
		return out
	}
	return []change{
		{name: "nothing", edit: func(*snapshot.Snapshot) []int32 { return []int32{port} }},
		{name: "weights", edit: func(s *snapshot.Snapshot) []int32 {
			for _, i := range onPort(s) {
				m := s.TCPMappings[i]
				w := int32(37)
				if m.Spec.Weight != nil {
					w = (*m.Spec.Weight + 29) % 101
				}
				m.Spec.Weight = &w
				m.Generation++
			}
			return []int32{port}
		}},
		{name: "removed", edit: func(s *snapshot.Snapshot) []int32 {
			if i := onPort(s); len(i) > 0 {
				s.TCPMappings = append(s.TCPMappings[:i[0]:i[0]], s.TCPMappings[i[0]+1:]...)
			}
			return []int32{port}
		}},
		{name: "new host", edit: func(s *snapshot.Snapshot) []int32 {
			if i := onPort(s); len(i) > 0 {
				m := *s.TCPMappings[i[0]].DeepCopy()
				m.Name, m.UID, m.Status = m.Name+"-new", m.UID+"-new", v1alpha1.TCPMappingStatus{}
				m.CreationTimestamp.Time = m.CreationTimestamp.Add(1e9)
				if m.Spec.Host != "" {
					m.Spec.Host = "new-" + strings.TrimPrefix(m.Spec.Host, "*.")
				}
				s.TCPMappings = append(s.TCPMappings, &m)
			}
			return []int32{port}
		}},
		{name: "endpoints", edit: func(s *snapshot.Snapshot) []int32 {
			// Every slice of a Service a mapping on port names gets one
			// more endpoint; every port with a mapping naming it is
			// touched.
			used := map[string]bool{}
			for _, i := range onPort(s) {
				used[serviceName(s.TCPMappings[i].Spec.Service)] = true
			}
			touched := map[string]bool{}
			for i := range s.EndpointSlices {
				es := &s.EndpointSlices[i]
				svc := es.Labels[discoveryv1.LabelServiceName]
				if !used[svc] {
					continue
				}
				touched[svc] = true
				ready := true
				es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
					Addresses:  []string{fmt.Sprintf("10.99.%d.%d", i%250, len(es.Endpoints)%250)},
					Conditions: discoveryv1.EndpointConditions{Ready: &ready},
				})
			}
			ports := []int32{port}
			for _, m := range s.TCPMappings {
				if touched[serviceName(m.Spec.Service)] {
					ports = append(ports, m.Spec.Port)
				}
				if la := m.Status.LastAccepted; la != nil && touched[serviceName(la.Spec.Service)] {
					ports = append(ports, la.Spec.Port)
				}
			}
			return ports
		}},
	}
}

// serviceName is the name part of a service string, enough to tell which
// Services a mapping may use (more is fine: it only touches more ports).
func serviceName(service string) string {
	s := service
	if _, rest, ok := strings.Cut(s, "://"); ok {
		s = rest
	}
	s, _, _ = strings.Cut(s, ":")
	s, _, _ = strings.Cut(s, ".")
	return s
}

// TestUpdateEqualsAFullTranslation checks Update against Translate for
// every golden case, every port of it, and every kind of change a port
// can have at runtime.
func TestUpdateEqualsAFullTranslation(t *testing.T) {
	for _, tc := range golden.Cases(t, "testdata") {
		prev := translate.Translate(tc.Snapshot)
		prevText, err := render.Render(prev.Config)
		if err != nil {
			t.Fatal(err)
		}
		// An update shares prev's sections and verdicts by pointer: it
		// must leave them as they were, for the readers of prev.
		prevJSON := comparable(t, prev)
		ports := map[int32]bool{}
		for _, m := range tc.Snapshot.TCPMappings {
			ports[m.Spec.Port] = true
		}
		var sorted []int32
		for p := range ports {
			sorted = append(sorted, p)
		}
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		for _, port := range sorted {
			for _, ch := range changesOn(port) {
				t.Run(fmt.Sprintf("%s/port %d/%s", tc.Name, port, ch.name), func(t *testing.T) {
					s := deepCopy(tc.Snapshot)
					touched := ch.edit(&s)
					got, ok := translate.Update(prev, s, touched)
					if !ok {
						// Allowed only when the change reaches a file or
						// another port; a full translation then runs.
						t.Logf("Update declined; the caller translates in full")
						return
					}
					if after := comparable(t, prev); after != prevJSON {
						t.Errorf("Update changed the translation it started from:\n%s", golden.Diff(prevJSON, after))
					}
					want := translate.Translate(s)
					if g, w := comparable(t, got), comparable(t, want); g != w {
						t.Errorf("Update differs from Translate:\n%s", golden.Diff(w, g))
					}
					if !reflect.DeepEqual(got.PortOf, want.PortOf) {
						t.Errorf("Update's PortOf differs from Translate's:\n got %v\nwant %v", got.PortOf, want.PortOf)
					}
					if g, w := sectionsByPort(got), sectionsByPort(want); !reflect.DeepEqual(g, w) {
						t.Errorf("Update's SectionsOn differs from Translate's:\n got %v\nwant %v", g, w)
					}
					if g, w := sectionsByPort(got), inverse(want.PortOf); !reflect.DeepEqual(g, w) {
						t.Errorf("SectionsOn is not PortOf the other way round:\n got %v\nwant %v", g, w)
					}
					// The renderer copies every section not on a changed
					// port: each must have one.
					var names []string
					for _, f := range want.Config.Frontends {
						names = append(names, f.Name)
					}
					for _, b := range want.Config.Backends {
						names = append(names, b.Name)
					}
					for _, m := range want.Config.Maps {
						names = append(names, m.Name)
					}
					for _, n := range names {
						if _, ok := want.PortOf[n]; !ok {
							t.Errorf("section %s has no port", n)
						}
					}
					// The text: the last one with the touched ports'
					// sections rendered again, as the operator does.
					var changed []string
					for name, p := range got.PortOf {
						if slices.Contains(touched, p) {
							changed = append(changed, name)
						}
					}
					next, err := prevText.Update(got.Config, changed)
					if err != nil {
						t.Fatal(err)
					}
					wantText, err := render.Config(want.Config)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(next.Text, wantText) {
						t.Errorf("the updated text differs from a full rendering:\n%s", golden.Diff(string(wantText), string(next.Text)))
					}
				})
			}
		}
	}
}

// TestUpdateDeclinesWhatReachesBeyondItsPorts checks the refusals: no
// previous translation to start from, and a mapping built on a port the
// caller did not name.
func TestUpdateDeclinesWhatReachesBeyondItsPorts(t *testing.T) {
	tc := golden.Cases(t, "testdata")[0]
	if _, ok := translate.Update(translate.Result{}, tc.Snapshot, []int32{1}); ok {
		t.Error("Update accepted a result it cannot know the ports of")
	}
	prev := translate.Translate(tc.Snapshot)
	s := deepCopy(tc.Snapshot)
	m := s.TCPMappings[0]
	from := m.Spec.Port
	s.TCPMappings[0].Spec.Port = 3999
	s.TCPMappings[0].Generation++
	if _, ok := translate.Update(prev, s, []int32{from}); ok {
		t.Errorf("Update accepted a mapping moved from port %d to a port it was not told of", from)
	}
	if got, ok := translate.Update(prev, s, []int32{from, 3999}); !ok {
		t.Error("Update declined a move between two ports it was told of")
	} else if g, w := comparable(t, got), comparable(t, translate.Translate(s)); g != w {
		t.Errorf("moved mapping: Update differs from Translate:\n%s", golden.Diff(w, g))
	}
}

func deepCopy(s snapshot.Snapshot) snapshot.Snapshot {
	out := s
	out.HAProxy = *s.HAProxy.DeepCopy()
	out.TCPMappings = nil
	for i := range s.TCPMappings {
		out.TCPMappings = append(out.TCPMappings, s.TCPMappings[i].DeepCopy())
	}
	out.EndpointSlices = nil
	for i := range s.EndpointSlices {
		out.EndpointSlices = append(out.EndpointSlices, *s.EndpointSlices[i].DeepCopy())
	}
	return out
}

// comparable is a result as text, References left out: Update may keep
// those of removed mappings.
func comparable(t *testing.T, r translate.Result) string {
	t.Helper()
	r.References = nil
	out, err := yaml.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestUpdatesChain checks that an Update's result serves as the previous
// result of the next one: each port in turn gets new weights and a new
// mapping, and after each step Update still equals Translate.
func TestUpdatesChain(t *testing.T) {
	for _, tc := range golden.Cases(t, "testdata") {
		t.Run(tc.Name, func(t *testing.T) {
			s := deepCopy(tc.Snapshot)
			prev := translate.Translate(s)
			var ports []int32
			seen := map[int32]bool{}
			for _, m := range s.TCPMappings {
				if !seen[m.Spec.Port] {
					seen[m.Spec.Port] = true
					ports = append(ports, m.Spec.Port)
				}
			}
			for _, port := range ports {
				for _, ch := range changesOn(port)[1:4:4] {
					next := deepCopy(s)
					touched := ch.edit(&next)
					got, ok := translate.Update(prev, next, touched)
					want := translate.Translate(next)
					if ok {
						if g, w := comparable(t, got), comparable(t, want); g != w {
							t.Fatalf("port %d, %s: Update differs from Translate:\n%s", port, ch.name, golden.Diff(w, g))
						}
						prev = got
					} else {
						prev = want
					}
					s = next
				}
			}
		})
	}
}

// sectionsByPort is r.SectionsOn with each port's names sorted (their
// order follows the building order, which an update may change).
func sectionsByPort(r translate.Result) map[int32][]string {
	out := make(map[int32][]string, len(r.SectionsOn))
	for port, names := range r.SectionsOn {
		out[port] = slices.Sorted(slices.Values(names))
	}
	return out
}

// inverse lists the names portOf gives each port, sorted.
func inverse(portOf map[string]int32) map[int32][]string {
	out := map[int32][]string{}
	for name, port := range portOf {
		out[port] = append(out[port], name)
	}
	for port := range out {
		slices.Sort(out[port])
	}
	return out
}
