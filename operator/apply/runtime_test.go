package apply

import (
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

// sample is a model with a filled slot, a spare slot, a loop to a
// terminator and a server resolved by DNS.
func sample() model.Config {
	return model.Config{
		Name:          "default/haproxy",
		HardStopAfter: time.Minute,
		Stats:         &model.Stats{Port: 8404, Path: "/stats", User: "admin", Password: model.PrivateBytes("secret")},
		Frontends: []model.Frontend{{
			Name: "tcpm-fe-2222", Bind: model.Bind{Port: 2222}, DefaultBackend: "tcpm-be-2222",
		}},
		Backends: []model.Backend{
			{Name: "tcpm-be-2222", Members: []model.Member{{Mapping: "default/a", Share: 100}}, Servers: []model.Server{
				{Name: "default:a:1", Address: "10.0.0.1", Port: 80, Weight: 256},
				{Name: "default:a:2", Spare: true},
			}},
			{Name: "tcpm-be-dns", Servers: []model.Server{
				{Name: "default:dns:1", Address: "db.example.com", Port: 5432, Weight: 256, Resolve: &model.Resolve{Resolvers: "dns", Prefer: "ipv4"}},
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
		{"a spare slot is filled", func(c *model.Config) {
			c.Backends[0].Servers[1] = model.Server{Name: "default:a:2", Address: "10.0.0.2", Port: 80, Weight: 128}
		}, true},
		{"a filled slot empties", func(c *model.Config) { c.Backends[0].Servers[0] = model.Server{Name: "default:a:1", Spare: true} }, true},
		{"a member's share changes", func(c *model.Config) { c.Backends[0].Members[0].Share = 50 }, true},
		{"a resolved server's weight changes", func(c *model.Config) { c.Backends[1].Servers[0].Weight = 3 }, true},
		{"a certificate file is added", func(c *model.Config) {
			c.Certificates = []model.Certificate{{File: "x.pem", PEM: []byte("b")}}
		}, false},
		{"a new frontend", func(c *model.Config) { c.Frontends = append(c.Frontends, model.Frontend{Name: "tcpm-fe-3333"}) }, false},
		{"a new server slot", func(c *model.Config) {
			c.Backends[0].Servers = append(c.Backends[0].Servers, model.Server{Name: "default:a:3", Spare: true})
		}, false},
		{"a resolved name changes", func(c *model.Config) { c.Backends[1].Servers[0].Address = "db2.example.com" }, false},
		{"a server starts TLS", func(c *model.Config) { c.Backends[0].Servers[0].TLS = true }, false},
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
	spare := func(name string) runtimeServer { return srv(name, spareAddr, sparePort, 0, true) }
	for _, c := range []struct {
		name               string
		running, desired   runtimeView
		want               []client.Action
		structureUnchanged bool
	}{
		{
			name:    "nothing changes",
			running: runtimeView{srv("a", "10.0.0.1", 80, 256, false)}, desired: runtimeView{srv("a", "10.0.0.1", 80, 256, false)},
			structureUnchanged: true,
		},
		{
			name:    "a weight changes",
			running: runtimeView{srv("a", "10.0.0.1", 80, 256, false)}, desired: runtimeView{srv("a", "10.0.0.1", 80, 10, false)},
			want:               []client.Action{{"SetServerWeight", be, "a", "10"}},
			structureUnchanged: true,
		},
		{
			name:    "a spare slot is filled: address and weight first, then ready",
			running: runtimeView{spare("b")}, desired: runtimeView{srv("b", "10.0.0.2", 8080, 128, false)},
			want: []client.Action{
				{"SetServerAddr", be, "b", "10.0.0.2", "8080"},
				{"SetServerWeight", be, "b", "128"},
				{"SetServerState", be, "b", "ready"},
			},
			structureUnchanged: true,
		},
		{
			name:    "a slot empties: maintenance first",
			running: runtimeView{srv("b", "10.0.0.2", 8080, 128, false)}, desired: runtimeView{spare("b")},
			want: []client.Action{
				{"SetServerState", be, "b", "maint"},
				{"SetServerAddr", be, "b", "127.0.0.1", "1"},
				{"SetServerWeight", be, "b", "0"},
			},
			structureUnchanged: true,
		},
		{
			name:    "a server is renamed",
			running: runtimeView{srv("a", "10.0.0.1", 80, 256, false)}, desired: runtimeView{srv("z", "10.0.0.1", 80, 256, false)},
		},
		{
			name:    "a server is added",
			running: runtimeView{srv("a", "10.0.0.1", 80, 256, false)},
			desired: runtimeView{srv("a", "10.0.0.1", 80, 256, false), spare("b")},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := runtimeActions(c.running, c.desired)
			if ok != c.structureUnchanged || !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, %v; want %v, %v", got, ok, c.want, c.structureUnchanged)
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
			have, err := parseConfig(stored)
			if err != nil {
				t.Fatal(err)
			}
			want, err := parseConfig(string(text))
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
	m := sample()
	text, err := render.Config(m)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseConfig(reserialise(t, text))
	if err != nil {
		t.Fatal(err)
	}
	if fromModel := viewOf(&m); !reflect.DeepEqual(p.servers, fromModel) {
		t.Errorf("servers read from the stored text:\n%+v\nfrom the model:\n%+v", p.servers, fromModel)
	}

	// A weight and an endpoint change: the same structure, and the
	// actions the model difference gives.
	next := sample()
	next.Backends[0].Servers[0].Weight = 100
	next.Backends[0].Servers[1] = model.Server{Name: "default:a:2", Address: "10.0.0.2", Port: 80, Weight: 156}
	next.Backends[0].Members[0].Share = 99
	nextText, err := render.Config(next)
	if err != nil {
		t.Fatal(err)
	}
	q, err := parseConfig(string(nextText))
	if err != nil {
		t.Fatal(err)
	}
	if p.structure != q.structure {
		t.Errorf("a runtime-only change changed the parsed structure:\n%s\n---\n%s", p.structure, q.structure)
	}
	fromText, _ := runtimeActions(p.servers, q.servers)
	fromModel, _ := runtimeActions(viewOf(&m), viewOf(&next))
	if len(fromText) == 0 || !reflect.DeepEqual(fromText, fromModel) {
		t.Errorf("actions from the texts %v, from the models %v", fromText, fromModel)
	}
}
