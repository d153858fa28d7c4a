package compat_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/apply"
)

// world is the suite's scene: a cleartext mapping, a weighted pair on one
// port, a mapping terminating TLS and one that also requires a client
// certificate of a CA, each relaying to loopback backends.
type world struct {
	*scene
	app, stable, canary          *dataplanetest.Backend
	clear, pair, secure, mutual  port
	serverCA, clientCA           *authority
	client                       tls.Certificate
	secureName, mutualName       string
	secureFile, caFile, certFile string
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{
		scene: newScene(),
		app:   dataplanetest.StartBackend(t, "app", "127.0.0.1"),
		// The weighted pair.
		stable: dataplanetest.StartBackend(t, "stable", "127.0.0.1"),
		canary: dataplanetest.StartBackend(t, "canary", "127.0.0.1"),
		clear:  freePort(t), pair: freePort(t), secure: freePort(t), mutual: freePort(t),
		serverCA:   newAuthority(t, "compat server CA"),
		clientCA:   newAuthority(t, "compat client CA"),
		secureName: "secure.example.com", mutualName: "mutual.example.com",
	}
	w.client = clientCertificate(t, w.clientCA, "client one")
	w.service("app", w.app)
	w.service("stable", w.stable)
	w.service("canary", w.canary)
	w.mapping("clear", int(w.clear), "app", nil, "")
	w.weights(50, 50)
	w.serverSecret(t, "secure-cert", w.serverCA, w.secureName)
	w.tlsContext("secure", "secure-cert", "")
	w.mapping("secure", int(w.secure), "app", nil, "secure")
	w.serverSecret(t, "mutual-cert", w.serverCA, w.mutualName)
	w.secret("clients-ca", corev1.SecretTypeOpaque, map[string][]byte{"ca.crt": w.clientCA.pem})
	w.tlsContext("mutual", "mutual-cert", "clients-ca")
	w.mapping("mutual", int(w.mutual), "app", nil, "mutual")
	return w
}

// weights sets the weighted pair's shares.
func (w *world) weights(stable, canary int32) {
	w.mapping("stable", int(w.pair), "stable", ptr.To(stable), "")
	w.mapping("canary", int(w.pair), "canary", ptr.To(canary), "")
}

// files are the certificate and CA files the world's desired state names,
// by kind.
func files(d apply.Desired) (certs, cas []string) {
	for _, c := range d.Certificates {
		if strings.HasSuffix(c.File, ".ca.pem") || strings.HasSuffix(c.File, ".crl.pem") {
			cas = append(cas, c.File)
		} else {
			certs = append(certs, c.File)
		}
	}
	return certs, cas
}

// servesAll checks every listener of the world with real connections.
func (w *world) servesAll(t testing.TB) {
	t.Helper()
	serves(t, w.clear, "app")
	serves(t, w.pair, "stable", "canary")
	servesTLS(t, w.secure, w.secureName, nil, "app")
	servesTLS(t, w.mutual, w.mutualName, &w.client, "app")
	refusesWithoutClientCertificate(t, w.mutual)
}

func mustApply(t testing.TB, a *apply.Applier, tg *target, d apply.Desired) apply.Outcome {
	t.Helper()
	out, err := applyOnce(a, tg, d)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return out
}

func applyOnce(a *apply.Applier, tg *target, d apply.Desired) (apply.Outcome, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	return a.Apply(ctx, tg.endpoint, tg.client(), d)
}

// serves waits until every connection to p lands on one of names, and
// each of names gets some.
func serves(t testing.TB, p port, names ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	dataplanetest.Eventually(t, 15*time.Second, fmt.Sprintf("%s serves exactly %v", p.addr(), names), func() bool {
		got := dataplanetest.Split(p.addr(), 8*len(names))
		if len(got) != len(names) {
			return false
		}
		for n := range got {
			if !want[n] {
				return false
			}
		}
		return true
	})
}

// greetTLS opens a TLS connection to p (with a client certificate when
// given) and returns the common name HAProxy presented and the greeting
// of the backend behind it.
func greetTLS(p port, clientCert *tls.Certificate) (string, string, error) {
	cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	if clientCert != nil {
		cfg.Certificates = []tls.Certificate{*clientCert}
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", p.addr(), cfg)
	if err != nil {
		return "", "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", "", err
	}
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, strings.TrimSpace(line), nil
}

// servesTLS waits until p presents cn and relays to backend.
func servesTLS(t testing.TB, p port, cn string, clientCert *tls.Certificate, backend string) {
	t.Helper()
	var got, greeting string
	var err error
	dataplanetest.Eventually(t, 15*time.Second, fmt.Sprintf("%s presents %s and relays to %s", p.addr(), cn, backend), func() bool {
		got, greeting, err = greetTLS(p, clientCert)
		return err == nil && got == cn && greeting == backend
	})
}

// refusesWithoutClientCertificate waits until p closes connections that
// present no client certificate, or one of another CA.
func refusesWithoutClientCertificate(t testing.TB, p port, others ...tls.Certificate) {
	t.Helper()
	dataplanetest.Eventually(t, 15*time.Second, p.addr()+" refuses clients without a certificate of its CA", func() bool {
		if _, _, err := greetTLS(p, nil); err == nil {
			return false
		}
		for i := range others {
			if _, _, err := greetTLS(p, &others[i]); err == nil {
				return false
			}
		}
		return true
	})
}

// result logs one measured figure in a form the closing note quotes.
func result(t testing.TB, tg *target, what string, reloads int) {
	t.Helper()
	t.Logf("RESULT %s target=%s reloads=%d", what, tg.kind, reloads)
}

func TestFirstApplyServesEveryKindOfMapping(t *testing.T) {
	tg := startTarget(t)
	w := newWorld(t)
	before := tg.reloadCount(t)
	out := mustApply(t, apply.NewApplier(), tg, w.desired(t))
	if !out.Changed || !out.Reloaded {
		t.Errorf("first apply: %+v, want a change with a reload", out)
	}
	certs, cas := files(w.desired(t))
	if len(out.Certificates) != len(certs)+len(cas) || len(cas) != 1 {
		t.Errorf("first apply stored %v, want the certificates %v and the CA bundle %v", out.Certificates, certs, cas)
	}
	w.servesAll(t)
	result(t, tg, "first-apply", tg.reloadCount(t)-before)
}

func TestStructuralChangeReloadsOnce(t *testing.T) {
	tg := startTarget(t)
	a := apply.NewApplier()
	w := newWorld(t)
	mustApply(t, a, tg, w.desired(t))
	w.servesAll(t)
	before := tg.reloadCount(t)

	extra := freePort(t)
	w.mapping("extra", int(extra), "app", nil, "")
	out := mustApply(t, a, tg, w.desired(t))
	if !out.Changed || !out.Reloaded {
		t.Errorf("new port: %+v, want a change with a reload", out)
	}
	serves(t, extra, "app")
	w.servesAll(t)
	n := tg.reloadCount(t) - before
	result(t, tg, "structural", n)
	if n != 1 {
		t.Errorf("a new port reloaded HAProxy %d times, want 1", n)
	}
}

func TestWeightChangeNeedsNoReload(t *testing.T) {
	tg := startTarget(t)
	a := apply.NewApplier()
	w := newWorld(t)
	w.weights(100, 0)
	mustApply(t, a, tg, w.desired(t))
	serves(t, w.pair, "stable")
	before := tg.reloadCount(t)

	for _, step := range []struct {
		stable, canary int32
		serving        []string
		applier        *apply.Applier
	}{
		{0, 100, []string{"canary"}, a},
		{50, 50, []string{"stable", "canary"}, a},
		// An operator that restarted remembers nothing: it reads what the
		// API stored and still finds the change runtime-only.
		{100, 0, []string{"stable"}, apply.NewApplier()},
	} {
		w.weights(step.stable, step.canary)
		out := mustApply(t, step.applier, tg, w.desired(t))
		if out.Reloaded || len(out.MapChanges) == 0 {
			t.Errorf("weights %d/%d: %+v, want map entry changes and no reload", step.stable, step.canary, out)
		}
		serves(t, w.pair, step.serving...)
	}
	n := tg.reloadCount(t) - before
	result(t, tg, "weight", n)
	if n != 0 {
		t.Errorf("weight changes reloaded HAProxy %d times, want 0", n)
	}
	serves(t, w.clear, "app")
	servesTLS(t, w.mutual, w.mutualName, &w.client, "app")
}

func TestEndpointChangeNeedsNoReload(t *testing.T) {
	tg := startTarget(t)
	a := apply.NewApplier()
	w := newWorld(t)
	var pods []*dataplanetest.Backend
	for i := 0; i < 4; i++ {
		pods = append(pods, dataplanetest.StartBackend(t, fmt.Sprintf("pod-%d", i), "127.0.0.1"))
	}
	w.service("app", pods[0])
	mustApply(t, a, tg, w.desired(t))
	serves(t, w.clear, "pod-0")
	before := tg.reloadCount(t)

	for _, step := range [][]*dataplanetest.Backend{
		{pods[0], pods[1], pods[2]}, // scale out: servers added
		{pods[3], pods[1]},          // one added, two retired
		{pods[2]},
	} {
		w.service("app", step...)
		out := mustApply(t, a, tg, w.desired(t))
		if out.Reloaded || len(out.Actions)+len(out.ServersAdded) == 0 {
			t.Errorf("%d endpoints: %+v, want runtime changes and no reload", len(step), out)
		}
		var names []string
		for _, p := range step {
			names = append(names, p.Name)
		}
		serves(t, w.clear, names...)
		// The TLS listeners relay to the same Service.
		servesTLS(t, w.secure, w.secureName, nil, names[0])
	}
	n := tg.reloadCount(t) - before
	result(t, tg, "endpoint", n)
	if n != 0 {
		t.Errorf("endpoint changes reloaded HAProxy %d times, want 0", n)
	}
}

func TestNoOpApplySendsNothing(t *testing.T) {
	tg := startTarget(t)
	a := apply.NewApplier()
	w := newWorld(t)
	d := w.desired(t)
	mustApply(t, a, tg, d)
	w.servesAll(t)
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
		n, sent := tg.sent.changes()
		if n != 0 {
			t.Errorf("%s: sent %d requests other than GET: %v", c.name, n, sent)
		}
		t.Logf("%s: %d requests, all GET", c.name, tg.sent.total())
	}
	n := tg.reloadCount(t) - before
	result(t, tg, "no-op", n)
	if n != 0 {
		t.Errorf("no-op applies reloaded HAProxy %d times, want 0", n)
	}
	w.servesAll(t)
}

// stored lists the files the instance stores: certificates and, where
// the API has one, the general storage.
func stored(t testing.TB, tg *target) map[string]bool {
	t.Helper()
	ctx := context.Background()
	list, err := tg.sideClient().Certificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, c := range list {
		out[c.StorageName] = true
	}
	general, err := tg.sideClient().GeneralFiles(ctx)
	var apiErr *client.APIError
	if err != nil && !(errors.As(err, &apiErr) && apiErr.Status == 404) {
		t.Fatal(err)
	}
	for _, f := range general {
		out[f.StorageName] = true
	}
	return out
}

// isStored says whether the configuration's file is among the stored
// ones, under its own name (this project's dataplane) or the name the
// applier stores it under elsewhere.
func isStored(have map[string]bool, file string) bool {
	return have[file] || have[apply.StorageName(file)]
}

func TestCertificateCreateRotateDelete(t *testing.T) {
	tg := startTarget(t)
	a := apply.NewApplier()
	w := newWorld(t)

	// Create: the world's certificates and CA bundle.
	d := w.desired(t)
	out := mustApply(t, a, tg, d)
	certs, cas := files(d)
	have := stored(t, tg)
	for _, f := range append(certs, cas...) {
		if !isStored(have, f) {
			t.Errorf("create: %s not stored (stored: %v)", f, have)
		}
	}
	w.servesAll(t)
	t.Logf("create: stored %v", out.Certificates)

	// Rotate the server certificate: same file, new content.
	before := tg.reloadCount(t)
	w.secureName = "rotated.example.com"
	w.serverSecret(t, "secure-cert", w.serverCA, w.secureName)
	out = mustApply(t, a, tg, w.desired(t))
	if len(out.Certificates) != 1 {
		t.Errorf("rotate: %+v, want one certificate replaced", out)
	}
	servesTLS(t, w.secure, w.secureName, nil, "app")
	result(t, tg, "certificate-rotate", tg.reloadCount(t)-before)

	// Rotate the client CA: only clients of the new CA get in.
	before = tg.reloadCount(t)
	old := w.client
	w.clientCA = newAuthority(t, "compat client CA two")
	w.client = clientCertificate(t, w.clientCA, "client two")
	w.secret("clients-ca", corev1.SecretTypeOpaque, map[string][]byte{"ca.crt": w.clientCA.pem})
	out = mustApply(t, a, tg, w.desired(t))
	if len(out.Certificates) != 1 {
		t.Errorf("CA rotation: %+v, want one file replaced", out)
	}
	servesTLS(t, w.mutual, w.mutualName, &w.client, "app")
	refusesWithoutClientCertificate(t, w.mutual, old)
	result(t, tg, "ca-rotate", tg.reloadCount(t)-before)

	// Unchanged: nothing sent.
	tg.sent.reset()
	out = mustApply(t, a, tg, w.desired(t))
	if out.Changed {
		t.Errorf("unchanged certificates: %+v, want nothing done", out)
	}
	if n, sent := tg.sent.changes(); n != 0 {
		t.Errorf("unchanged certificates: sent %v", sent)
	}

	// Delete: the TLS listeners go, and their files with them.
	w.removeMapping("secure")
	w.removeMapping("mutual")
	w.snap.TLSContexts = nil
	mustApply(t, a, tg, w.desired(t))
	have = stored(t, tg)
	for _, f := range append(certs, cas...) {
		if isStored(have, f) {
			t.Errorf("delete: %s still stored after its listener went", f)
		}
	}
	serves(t, w.clear, "app")
	serves(t, w.pair, "stable", "canary")
}

func TestRefusedConfigurationKeepsTheOldOneServing(t *testing.T) {
	tg := startTarget(t)
	a := apply.NewApplier()
	w := newWorld(t)
	mustApply(t, a, tg, w.desired(t))
	w.servesAll(t)

	t.Run("refused by the check", func(t *testing.T) {
		w.mapping("extra", int(freePort(t)), "app", nil, "")
		defer w.removeMapping("extra")
		bad := w.desired(t)
		bad.Config = append(bad.Config, []byte("    no-such-keyword here\n")...)
		before := tg.reloadCount(t)
		_, err := applyOnce(a, tg, bad)
		var refused *apply.RefusedError
		if !errors.As(err, &refused) || refused.Stage != apply.StageValidate || len(refused.Lines) == 0 {
			t.Fatalf("apply of an invalid configuration: %v, want a *RefusedError at validate with HAProxy's lines", err)
		}
		t.Logf("refused: %v", refused)
		w.servesAll(t)
		result(t, tg, "refused-check", tg.reloadCount(t)-before)
	})

	t.Run("refused by the reload", func(t *testing.T) {
		// haproxy -c does not bind; the reload cannot bind a port held
		// here.
		held, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		w.mapping("taken", held.Addr().(*net.TCPAddr).Port, "app", nil, "")
		defer w.removeMapping("taken")
		_, err = applyOnce(a, tg, w.desired(t))
		var refused *apply.RefusedError
		if !errors.As(err, &refused) || refused.Stage != apply.StageReload {
			t.Fatalf("apply of a configuration that cannot bind: %v, want a *RefusedError at reload", err)
		}
		t.Logf("refused: %v", refused)
		w.servesAll(t)
	})

	// The applier recovers: the good configuration applies again.
	other := dataplanetest.StartBackend(t, "other", "127.0.0.1")
	w.service("app", other)
	mustApply(t, a, tg, w.desired(t))
	serves(t, w.clear, "other")
	servesTLS(t, w.mutual, w.mutualName, &w.client, "other")
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
	w := newWorld(t)
	mustApply(t, a, tg, w.desired(t))
	w.servesAll(t)

	green := dataplanetest.StartBackend(t, "green", "127.0.0.1")
	w.service("app", green)
	tg.sent.reset()
	inst := &racing{Client: tg.client(), side: tg.sideClient()}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := a.Apply(ctx, tg.endpoint, inst, w.desired(t)); err != nil {
		t.Fatalf("apply against a concurrent change: %v", err)
	}
	if inst.err != nil {
		t.Fatalf("concurrent change: %v", inst.err)
	}
	if n := tg.sent.status(409); n != 1 {
		t.Errorf("got %d answers 409, want 1 (then a retry)", n)
	}
	serves(t, w.clear, "green")
}
