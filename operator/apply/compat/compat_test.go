package compat_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/apply"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/render"
)

// slots is how many servers each backend has, filled or spare, so
// endpoints can come and go at runtime.
const slots = 4

// upstream is one server of a listener's backend.
type upstream struct {
	backend *dataplanetest.Backend
	weight  int32
}

// listener is a port on 127.0.0.1 relaying to its upstreams; with cert
// set it terminates TLS with that certificate file.
type listener struct {
	port      int
	cert      string
	upstreams []upstream
}

func (l listener) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(l.port)) }

// desired renders the model of listeners and certificates as the
// operator would.
func (tg *target) desired(t testing.TB, certs []model.Certificate, ls ...listener) apply.Desired {
	t.Helper()
	cfg := model.Config{Name: "compat/haproxy", HardStopAfter: 5 * time.Second, Certificates: certs}
	for _, l := range ls {
		key := model.ListenerKey("127.0.0.1", int32(l.port))
		be := model.Backend{Name: model.BackendName(key, ""), Members: []model.Member{{Mapping: "compat/app", Share: 100}}}
		for i := 0; i < slots; i++ {
			s := model.Server{Name: model.ServerName("compat", "app", i+1), Spare: true}
			if i < len(l.upstreams) {
				u := l.upstreams[i]
				s = model.Server{Name: s.Name, Address: u.backend.Addr.IP.String(), Port: int32(u.backend.Addr.Port), Weight: u.weight}
			}
			be.Servers = append(be.Servers, s)
		}
		fe := model.Frontend{Name: model.FrontendName(key), Bind: model.Bind{Address: "127.0.0.1", Port: int32(l.port)}, DefaultBackend: be.Name}
		if l.cert != "" {
			fe.Bind.TLS = &model.TLSBind{Certificate: l.cert}
		}
		cfg.Frontends = append(cfg.Frontends, fe)
		cfg.Backends = append(cfg.Backends, be)
	}
	text, err := render.Config(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tg.runDir != "" {
		// The official API finds HAProxy's runtime socket in the stats
		// socket line and does not expand environment variables there.
		text = []byte(strings.ReplaceAll(string(text), `"${TCPM_RUN_DIR}/haproxy.sock"`, tg.runDir+"/haproxy.sock"))
	}
	return apply.Desired{Config: text, Model: cfg, Certificates: certs}
}

func freePort(t testing.TB) int { return dataplanetest.FreePort(t, "127.0.0.1") }

func mustApply(t testing.TB, a *apply.Applier, tg *target, d apply.Desired) apply.Outcome {
	t.Helper()
	out, err := applyOnce(a, tg, d)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return out
}

func applyOnce(a *apply.Applier, tg *target, d apply.Desired) (apply.Outcome, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return a.Apply(ctx, tg.endpoint, tg.client(), d)
}

// serves waits until every connection to l lands on one of names, and
// each of names gets some.
func serves(t testing.TB, l listener, names ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var last map[string]int
	dataplanetest.Eventually(t, 15*time.Second, fmt.Sprintf("%s serves exactly %v", l.addr(), names), func() bool {
		last = dataplanetest.Split(l.addr(), 8*len(names))
		if len(last) != len(names) {
			return false
		}
		for n := range last {
			if !want[n] {
				return false
			}
		}
		return true
	})
}

func TestFirstApplyRelaysTraffic(t *testing.T) {
	tg := startTarget(t)
	app := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	l := listener{port: freePort(t), upstreams: []upstream{{app, 100}}}
	out := mustApply(t, apply.NewApplier(), tg, tg.desired(t, nil, l))
	if !out.Changed {
		t.Errorf("first apply: %+v, want a change", out)
	}
	serves(t, l, "app")
}

func TestStructuralChangeReloadsOnce(t *testing.T) {
	tg := startTarget(t)
	a := apply.NewApplier()
	app := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	first := listener{port: freePort(t), upstreams: []upstream{{app, 100}}}
	mustApply(t, a, tg, tg.desired(t, nil, first))
	serves(t, first, "app")
	before := tg.reloadCount(t)

	second := listener{port: freePort(t), upstreams: []upstream{{app, 100}}}
	out := mustApply(t, a, tg, tg.desired(t, nil, first, second))
	if !out.Changed || !out.Reloaded {
		t.Errorf("new port: %+v, want a change with a reload", out)
	}
	serves(t, second, "app")
	serves(t, first, "app")
	n := tg.reloadCount(t) - before
	t.Logf("reloads: %d", n)
	if n != 1 {
		t.Errorf("a new port reloaded HAProxy %d times, want 1", n)
	}
}

func TestWeightChangeNeedsNoReload(t *testing.T) {
	tg := startTarget(t)
	a := apply.NewApplier()
	stable := dataplanetest.StartBackend(t, "stable", "127.0.0.1")
	canary := dataplanetest.StartBackend(t, "canary", "127.0.0.1")
	port := freePort(t)
	weights := func(s, c int32) listener {
		return listener{port: port, upstreams: []upstream{{stable, s}, {canary, c}}}
	}
	mustApply(t, a, tg, tg.desired(t, nil, weights(100, 0)))
	serves(t, weights(100, 0), "stable")
	before := tg.reloadCount(t)

	out := mustApply(t, a, tg, tg.desired(t, nil, weights(0, 100)))
	if out.Reloaded || len(out.Actions) == 0 {
		t.Errorf("weight change: %+v, want runtime actions and no reload", out)
	}
	serves(t, weights(0, 100), "canary")
	out = mustApply(t, a, tg, tg.desired(t, nil, weights(50, 50)))
	if out.Reloaded || len(out.Actions) == 0 {
		t.Errorf("weight change: %+v, want runtime actions and no reload", out)
	}
	serves(t, weights(50, 50), "stable", "canary")

	// An operator that restarted remembers nothing: it reads what the API
	// stored and still finds the change runtime-only.
	out = mustApply(t, apply.NewApplier(), tg, tg.desired(t, nil, weights(100, 0)))
	if out.Reloaded || len(out.Actions) == 0 {
		t.Errorf("weight change after a restart: %+v, want runtime actions and no reload", out)
	}
	serves(t, weights(100, 0), "stable")
	n := tg.reloadCount(t) - before
	t.Logf("reloads: %d", n)
	if n != 0 {
		t.Errorf("weight changes reloaded HAProxy %d times, want 0", n)
	}
}

func TestEndpointChangeNeedsNoReload(t *testing.T) {
	tg := startTarget(t)
	a := apply.NewApplier()
	var pods []*dataplanetest.Backend
	for i := 0; i < 4; i++ {
		pods = append(pods, dataplanetest.StartBackend(t, fmt.Sprintf("pod-%d", i), "127.0.0.1"))
	}
	port := freePort(t)
	endpoints := func(ps ...*dataplanetest.Backend) listener {
		l := listener{port: port}
		for _, p := range ps {
			l.upstreams = append(l.upstreams, upstream{p, 100})
		}
		return l
	}
	mustApply(t, a, tg, tg.desired(t, nil, endpoints(pods[0])))
	serves(t, endpoints(pods[0]), "pod-0")
	before := tg.reloadCount(t)

	steps := [][]*dataplanetest.Backend{
		{pods[0], pods[1], pods[2]}, // scale out into spare slots
		{pods[3], pods[1]},          // a slot's address changes, one empties
		{pods[2]},
	}
	for _, step := range steps {
		l := endpoints(step...)
		out := mustApply(t, a, tg, tg.desired(t, nil, l))
		if out.Reloaded || len(out.Actions) == 0 {
			t.Errorf("endpoints %d: %+v, want runtime actions and no reload", len(step), out)
		}
		var names []string
		for _, p := range step {
			names = append(names, p.Name)
		}
		serves(t, l, names...)
	}
	n := tg.reloadCount(t) - before
	t.Logf("reloads: %d", n)
	if n != 0 {
		t.Errorf("endpoint changes reloaded HAProxy %d times, want 0", n)
	}
}

func TestNoOpApplySendsNothing(t *testing.T) {
	tg := startTarget(t)
	a := apply.NewApplier()
	app := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	l := listener{port: freePort(t), upstreams: []upstream{{app, 100}}}
	d := tg.desired(t, nil, l)
	mustApply(t, a, tg, d)
	serves(t, l, "app")
	before := tg.reloadCount(t)

	for _, c := range []struct {
		name    string
		applier *apply.Applier
	}{
		{"same applier", a},
		{"after an operator restart", apply.NewApplier()},
	} {
		tg.sent.reset()
		out := mustApply(t, c.applier, tg, d)
		if out.Changed || out.Reloaded || len(out.Actions) > 0 {
			t.Errorf("%s: %+v, want nothing done", c.name, out)
		}
		if n, sent := tg.sent.changes(); n != 0 {
			t.Errorf("%s: sent %d requests other than GET: %v", c.name, n, sent)
		}
	}
	n := tg.reloadCount(t) - before
	t.Logf("reloads: %d", n)
	if n != 0 {
		t.Errorf("no-op applies reloaded HAProxy %d times, want 0", n)
	}
	serves(t, l, "app")
}

// servedSubject is the common name HAProxy presents on addr and the
// greeting of the backend behind it.
func servedSubject(addr string) (string, string, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true, ServerName: "app.example.com"})
	if err != nil {
		return "", "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil {
		return "", "", err
	}
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, strings.TrimSpace(string(buf[:n])), nil
}

func storedCertificates(t testing.TB, tg *target) map[string]bool {
	t.Helper()
	list, err := tg.sideClient().Certificates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, c := range list {
		out[c.StorageName] = true
	}
	return out
}

func TestCertificateCreateRotateDelete(t *testing.T) {
	tg := startTarget(t)
	a := apply.NewApplier()
	app := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	plain := listener{port: freePort(t), upstreams: []upstream{{app, 100}}}
	const file = "compat_site.pem"
	secure := listener{port: freePort(t), cert: file, upstreams: []upstream{{app, 100}}}
	cert := func(cn string) []model.Certificate {
		return []model.Certificate{{File: file, PEM: dataplanetest.SelfSigned(t, cn)}}
	}
	subject := func(cn string) {
		t.Helper()
		var got, greeting string
		var err error
		dataplanetest.Eventually(t, 15*time.Second, "new connections are served "+cn, func() bool {
			got, greeting, err = servedSubject(secure.addr())
			return err == nil && got == cn && greeting == "app"
		})
	}

	// Create.
	out := mustApply(t, a, tg, tg.desired(t, cert("first.example.com"), plain, secure))
	if len(out.Certificates) != 1 {
		t.Errorf("create: %+v, want one certificate stored", out)
	}
	subject("first.example.com")

	// Rotate: same file, new content.
	rotated := cert("second.example.com")
	out = mustApply(t, a, tg, tg.desired(t, rotated, plain, secure))
	if len(out.Certificates) != 1 {
		t.Errorf("rotate: %+v, want one certificate replaced", out)
	}
	subject("second.example.com")
	t.Logf("rotation outcome: reloaded=%v", out.Reloaded)

	// Unchanged: nothing sent.
	tg.sent.reset()
	out = mustApply(t, a, tg, tg.desired(t, rotated, plain, secure))
	if out.Changed {
		t.Errorf("unchanged certificate: %+v, want nothing done", out)
	}
	if n, sent := tg.sent.changes(); n != 0 {
		t.Errorf("unchanged certificate: sent %v", sent)
	}

	// Delete: the listener goes, and its file with it.
	mustApply(t, a, tg, tg.desired(t, nil, plain))
	if storedCertificates(t, tg)[file] {
		t.Errorf("%s still stored after its listener went", file)
	}
	serves(t, plain, "app")
}

func TestRefusedConfigurationKeepsTheOldOneServing(t *testing.T) {
	tg := startTarget(t)
	a := apply.NewApplier()
	app := dataplanetest.StartBackend(t, "app", "127.0.0.1")
	good := listener{port: freePort(t), upstreams: []upstream{{app, 100}}}
	mustApply(t, a, tg, tg.desired(t, nil, good))
	serves(t, good, "app")

	t.Run("refused by the check", func(t *testing.T) {
		bad := tg.desired(t, nil, good, listener{port: freePort(t), upstreams: []upstream{{app, 100}}})
		bad.Config = append(bad.Config, []byte("    no-such-keyword here\n")...)
		_, err := applyOnce(a, tg, bad)
		var refused *apply.RefusedError
		if !errors.As(err, &refused) || refused.Stage != apply.StageValidate || len(refused.Lines) == 0 {
			t.Fatalf("apply of an invalid configuration: %v, want a *RefusedError at validate with HAProxy's lines", err)
		}
		t.Logf("refused: %v", refused)
		serves(t, good, "app")
	})

	t.Run("refused by the reload", func(t *testing.T) {
		// haproxy -c does not bind; the reload cannot bind a port held
		// here.
		held, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		taken := listener{port: held.Addr().(*net.TCPAddr).Port, upstreams: []upstream{{app, 100}}}
		_, err = applyOnce(a, tg, tg.desired(t, nil, good, taken))
		var refused *apply.RefusedError
		if !errors.As(err, &refused) || refused.Stage != apply.StageReload {
			t.Fatalf("apply of a configuration that cannot bind: %v, want a *RefusedError at reload", err)
		}
		t.Logf("refused: %v", refused)
		serves(t, good, "app")
	})

	// The applier recovers: the good configuration applies again.
	other := dataplanetest.StartBackend(t, "other", "127.0.0.1")
	next := listener{port: good.port, upstreams: []upstream{{other, 100}}}
	mustApply(t, a, tg, tg.desired(t, nil, next))
	serves(t, next, "other")
}

// racing is an Instance that, before the applier's first push, changes
// the configuration through another client, as a second writer would.
type racing struct {
	*client.Client
	side  *client.Client
	raced bool
	err   error
}

func (r *racing) PushConfiguration(ctx context.Context, cfg []byte, p client.Push) (client.PushResult, error) {
	if !r.raced {
		r.raced = true
		stored, v, err := r.side.RawConfiguration(ctx)
		if err == nil {
			_, err = r.side.PushConfiguration(ctx, []byte(stored), client.Push{Version: v, SkipReload: true})
		}
		r.err = err
	}
	return r.Client.PushConfiguration(ctx, cfg, p)
}

func TestConcurrentChangeIsRetried(t *testing.T) {
	tg := startTarget(t)
	a := apply.NewApplier()
	blue := dataplanetest.StartBackend(t, "blue", "127.0.0.1")
	green := dataplanetest.StartBackend(t, "green", "127.0.0.1")
	l := listener{port: freePort(t), upstreams: []upstream{{blue, 100}}}
	mustApply(t, a, tg, tg.desired(t, nil, l))
	serves(t, l, "blue")

	tg.sent.reset()
	next := listener{port: l.port, upstreams: []upstream{{green, 100}}}
	inst := &racing{Client: tg.client(), side: tg.sideClient()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := a.Apply(ctx, tg.endpoint, inst, tg.desired(t, nil, next)); err != nil {
		t.Fatalf("apply against a concurrent change: %v", err)
	}
	if inst.err != nil {
		t.Fatalf("concurrent change: %v", inst.err)
	}
	if n := tg.sent.status(409); n != 1 {
		t.Errorf("got %d answers 409, want 1 (then a retry)", n)
	}
	serves(t, next, "green")
}
