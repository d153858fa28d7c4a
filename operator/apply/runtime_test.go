package apply

import (
	"maps"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	parser "github.com/haproxytech/client-native/v5/config-parser"
	"github.com/haproxytech/client-native/v5/config-parser/options"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/render"
)

// sample is a model with a Service's endpoint (a dynamic server), a
// literal IP, a loop to a terminator and a server resolved by DNS.
func sample() model.Config {
	return model.Config{
		Name:          "default/haproxy",
		HardStopAfter: time.Minute,
		Stats:         &model.Stats{Port: 8404, Path: "/stats", User: "admin", Password: model.PrivateBytes("secret")},
		Frontends: []*model.Frontend{{
			Name: "tcpm-fe-2222", Bind: model.Bind{Port: 2222}, DefaultBackend: "tcpm-be-2222",
		}},
		Backends: []*model.Backend{
			{Name: "tcpm-be-2222", Members: []model.Member{{Mapping: "default/a", Share: 100}}, Servers: []model.Server{
				{Name: "default:a:10.0.0.1:80", Address: "10.0.0.1", Port: 80, Weight: 1, Dynamic: true},
			}, Template: &model.Server{Weight: 1, Dynamic: true}},
			{Name: "tcpm-be-dns", Servers: []model.Server{
				{Name: "default:dns:1", Address: "db.example.com", Port: 5432, Weight: 256, Resolve: &model.Resolve{Resolvers: "dns", Prefer: "ipv4"}},
			}},
			{Name: "tcpm-be-ip", Servers: []model.Server{
				{Name: "default:ip:1", Address: "10.9.9.9", Port: 80, Weight: 1},
			}},
			{Name: "tcpm-to-tls-2222-0", Servers: []model.Server{
				{Name: "terminator", Socket: "tls-2222-0.sock", Weight: 1, SendProxy: true},
			}},
		},
		Resolvers: &model.Resolvers{Name: "dns"},
	}
}

func TestStructureDigest(t *testing.T) {
	base := structureDigest(ptr(sample()))
	for _, c := range []struct {
		name    string
		change  func(*model.Config)
		runtime bool
	}{
		{"a weight changes", func(c *model.Config) { c.Backends[0].Servers[0].Weight = 10 }, true},
		{"an endpoint is added", func(c *model.Config) {
			c.Backends[0].Servers = append(c.Backends[0].Servers, model.Server{Name: "default:a:10.0.0.2:80", Address: "10.0.0.2", Port: 80, Weight: 1, Dynamic: true})
		}, true},
		{"the last endpoint goes", func(c *model.Config) { c.Backends[0].Servers = nil }, true},
		{"a literal IP changes", func(c *model.Config) { c.Backends[2].Servers[0].Address = "10.9.9.8" }, true},
		{"a member's share changes", func(c *model.Config) { c.Backends[0].Members[0].Share = 50 }, true},
		{"a resolved server's weight changes", func(c *model.Config) { c.Backends[1].Servers[0].Weight = 3 }, true},
		{"a map's entries change", func(c *model.Config) {
			c.Maps = []model.Map{{Name: "tcpm-fe-2222-weights.map", Entries: []model.MapEntry{{Key: "0:9999", Value: "x"}}}}
		}, false},
		{"a certificate file is added", func(c *model.Config) {
			c.Certificates = []model.Certificate{{File: "x.pem", PEM: []byte("b")}}
		}, false},
		{"a new frontend", func(c *model.Config) { c.Frontends = append(c.Frontends, &model.Frontend{Name: "tcpm-fe-3333"}) }, false},
		{"a literal IP server is added", func(c *model.Config) {
			c.Backends[2].Servers = append(c.Backends[2].Servers, model.Server{Name: "default:ip:2", Address: "10.9.9.8", Port: 80})
		}, false},
		{"a resolved name changes", func(c *model.Config) { c.Backends[1].Servers[0].Address = "db2.example.com" }, false},
		{"the endpoints start TLS", func(c *model.Config) { c.Backends[0].Template.TLS = true }, false},
		{"the stats password changes", func(c *model.Config) { c.Stats.Password = model.PrivateBytes("other") }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := sample()
			c.change(&m)
			if got := structureDigest(&m) == base; got != c.runtime {
				t.Errorf("same structure = %v, want %v", got, c.runtime)
			}
		})
	}
	withMap := func(value string) string {
		m := sample()
		m.Maps = []model.Map{{Name: "tcpm-fe-2222-weights.map", Entries: []model.MapEntry{{Key: "0:9999", Value: value}}}}
		return structureDigest(&m)
	}
	if withMap("a") != withMap("b") {
		t.Error("a map entry changed the structure; entries change at runtime")
	}
	withCert := func(pem string) string {
		m := sample()
		m.Certificates = []model.Certificate{{File: "x.pem", PEM: []byte(pem)}}
		return structureDigest(&m)
	}
	if withCert("a") != withCert("b") {
		t.Error("a certificate's content changed the structure; it is synchronised on its own")
	}
}

func ptr[T any](v T) *T { return &v }

func TestRuntimeActions(t *testing.T) {
	be := "tcpm-be-2222"
	srv := func(name, addr string, port, weight int32, maint bool) runtimeServer {
		return runtimeServer{Backend: be, Name: name, AddrRuntime: true, Addr: addr, Port: port, Weight: weight, Maint: maint}
	}
	addable := func(name, addr string, port int32) runtimeServer {
		s := srv(name, addr, port, 1, false)
		s.add = &addSpec{server: model.Server{Name: name, Address: addr, Port: port, Weight: 1, Dynamic: true}}
		return s
	}
	for _, c := range []struct {
		name             string
		running, desired runtimeView
		want             []client.Action
		add              []string
		next             []string
		possible         bool
	}{
		{
			name:    "nothing changes",
			running: serversView(srv("a", "10.0.0.1", 80, 256, false)), desired: serversView(srv("a", "10.0.0.1", 80, 256, false)),
			next:     []string{"a"},
			possible: true,
		},
		{
			name:    "a weight changes",
			running: serversView(srv("a", "10.0.0.1", 80, 256, false)), desired: serversView(srv("a", "10.0.0.1", 80, 10, false)),
			want:     []client.Action{{"SetServerWeight", be, "a", "10"}},
			next:     []string{"a"},
			possible: true,
		},
		{
			name:    "a literal address changes",
			running: serversView(srv("a", "10.0.0.1", 80, 1, false)), desired: serversView(srv("a", "10.0.0.2", 8080, 1, false)),
			want:     []client.Action{{"SetServerAddr", be, "a", "10.0.0.2", "8080"}},
			next:     []string{"a"},
			possible: true,
		},
		{
			name:     "a new endpoint is added after the push",
			running:  serversView(addable("a", "10.0.0.1", 80)),
			desired:  serversView(addable("a", "10.0.0.1", 80), addable("b", "10.0.0.2", 80)),
			add:      []string{"b"},
			next:     []string{"a", "b"},
			possible: true,
		},
		{
			name:     "a gone endpoint is retired: maintenance, still known until the next reload",
			running:  serversView(addable("a", "10.0.0.1", 80), addable("b", "10.0.0.2", 80)),
			desired:  serversView(addable("a", "10.0.0.1", 80)),
			want:     []client.Action{{"SetServerState", be, "b", "maint"}},
			next:     []string{"a", "b (maint)"},
			possible: true,
		},
		{
			name:     "a retired endpoint that comes back is made ready",
			running:  serversView(addable("a", "10.0.0.1", 80), srv("b", "10.0.0.2", 80, 1, true)),
			desired:  serversView(addable("a", "10.0.0.1", 80), addable("b", "10.0.0.2", 80)),
			want:     []client.Action{{"SetServerState", be, "b", "ready"}},
			next:     []string{"a", "b"},
			possible: true,
		},
		{
			name:    "a server that cannot be added",
			running: serversView(srv("a", "10.0.0.1", 80, 256, false)), desired: serversView(srv("z", "10.0.0.1", 80, 256, false)),
		},
		{
			name:    "a static server goes",
			running: serversView(srv("a", "10.0.0.1", 80, 256, false), runtimeServer{Backend: be, Name: "dns", Weight: 1}),
			desired: serversView(srv("a", "10.0.0.1", 80, 256, false)),
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := runtimeActions(c.running, c.desired)
			if ok != c.possible {
				t.Fatalf("possible = %v, want %v", ok, c.possible)
			}
			if !ok {
				return
			}
			var add, next []string
			for _, s := range got.add {
				add = append(add, s.Name)
			}
			for _, s := range got.applyTo(maps.Clone(c.running)).servers() {
				n := s.Name
				if s.Maint {
					n += " (maint)"
				}
				next = append(next, n)
			}
			if !reflect.DeepEqual(got.actions, c.want) || !reflect.DeepEqual(add, c.add) || !reflect.DeepEqual(next, c.next) {
				t.Errorf("actions %v, add %v, next %v; want %v, %v, %v", got.actions, add, next, c.want, c.add, c.next)
			}
		})
	}
}

// reserialise stores text as client-native does (the official Data Plane
// API): its parser's serialisation under # _md5hash and # _version lines.
func reserialise(t *testing.T, text []byte) string {
	t.Helper()
	p, err := parser.New(options.String(string(text)))
	if err != nil {
		t.Fatal(err)
	}
	return "# _md5hash=0123456789abcdef\n# _version=7\n# Dataplaneapi managed File\n" + p.String()
}

func TestStoredTextComparesByMeaning(t *testing.T) {
	for _, golden := range []string{"seed-relay", "passthrough-and-termination", "ipv6-preference"} {
		t.Run(golden, func(t *testing.T) {
			text, err := os.ReadFile("../render/testdata/" + golden + ".haproxy.cfg")
			if err != nil {
				t.Fatal(err)
			}
			stored := reserialise(t, text)
			if strings.Contains(stored, "\n    server ") {
				t.Fatal("the re-serialisation kept the 4-space indent; the test proves nothing")
			}
			have, err := parseConfig(stored, nil)
			if err != nil {
				t.Fatal(err)
			}
			want, err := parseConfig(string(text), nil)
			if err != nil {
				t.Fatal(err)
			}
			if have.canonical != want.canonical {
				t.Errorf("stored and rendered texts differ in meaning:\n%s\n---\n%s", have.canonical, want.canonical)
			}
		})
	}
}

func TestParsedServersMatchTheModelView(t *testing.T) {
	// A port with one mapping renders as a listen section, whose
	// servers are a backend's.
	listen := func(c *model.Config) {
		c.Frontends[0] = &model.Frontend{Name: "tcpm-be-2222", Bind: model.Bind{Port: 2222}, DefaultBackend: "tcpm-be-2222", Listen: true}
	}
	for name, shape := range map[string]func(*model.Config){"frontend and backend": func(*model.Config) {}, "listen section": listen} {
		t.Run(name, func(t *testing.T) { testParsedServersMatchTheModelView(t, shape) })
	}
}

func testParsedServersMatchTheModelView(t *testing.T, shape func(*model.Config)) {
	m := sample()
	shape(&m)
	text, err := render.Config(m)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseConfig(reserialise(t, text), nil)
	if err != nil {
		t.Fatal(err)
	}
	fromModel := viewOf(&m)
	for _, servers := range fromModel {
		for i := range servers {
			servers[i].add = nil // the text does not say how to add a server
		}
	}
	if !reflect.DeepEqual(p.servers, fromModel) {
		t.Errorf("servers read from the stored text:\n%+v\nfrom the model:\n%+v", p.servers, fromModel)
	}

	// A weight and a literal address change: the same structure, and
	// the actions the model difference gives.
	next := sample()
	shape(&next)
	next.Backends[0].Servers[0].Weight = 100
	next.Backends[2].Servers[0].Address = "10.9.9.8"
	next.Backends[0].Members[0].Share = 99
	nextText, err := render.Config(next)
	if err != nil {
		t.Fatal(err)
	}
	q, err := parseConfig(string(nextText), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.structure != q.structure {
		t.Errorf("a runtime-only change changed the parsed structure:\n%s\n---\n%s", p.structure, q.structure)
	}
	fromText, _ := runtimeActions(p.servers, q.servers)
	fromModels, _ := runtimeActions(viewOf(&m), viewOf(&next))
	if len(fromText.actions) == 0 || !reflect.DeepEqual(fromText.actions, fromModels.actions) {
		t.Errorf("actions from the texts %v, from the models %v", fromText.actions, fromModels.actions)
	}
}
