package apply_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-openapi/strfmt"
	parser "github.com/haproxytech/client-native/v5/config-parser"
	"github.com/haproxytech/client-native/v5/config-parser/options"
	"github.com/haproxytech/client-native/v5/models"
	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/apply"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/render"
)

// recorder is a recording fake of the Data Plane API for the applier's
// decisions. Like the official API it stores client-native's
// re-serialisation and, unless ours is set, lists certificates without a
// fingerprint and has no runtime certificate swap.
type recorder struct {
	ours    bool
	version int64
	stored  string
	certs   map[string][]byte
	// validated is the last text validated.
	validated string
	// general is storage/general; nil: the API has none.
	general  map[string][]byte
	calls    []string
	conflict int // answer this many pushes with 409
	refuse   error
}

func (r *recorder) call(format string, args ...any) {
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
}

func (r *recorder) Info(context.Context) (*models.Info, error) {
	v := "v2.9.18 2c7da7d"
	if r.ours {
		v = "v2-haproxy-tcp-operator"
	}
	return &models.Info{API: &models.InfoAPI{Version: v}}, nil
}

func (r *recorder) Version(context.Context) (int64, error) { return r.version, nil }

func (r *recorder) RawConfiguration(context.Context) (string, int64, error) {
	r.call("GET raw")
	return r.stored, r.version, nil
}

func (r *recorder) PushConfiguration(_ context.Context, cfg []byte, p client.Push) (client.PushResult, error) {
	what := "reload"
	if p.SkipReload {
		what = fmt.Sprintf("runtime %d actions", len(p.Actions))
	}
	r.call("POST raw %s", what)
	if r.conflict > 0 {
		r.conflict--
		r.version++ // someone else's change
		return client.PushResult{}, fmt.Errorf("%w: version mismatch", client.ErrVersionConflict)
	}
	if p.Version != r.version {
		return client.PushResult{}, fmt.Errorf("%w: pushed against %d, at %d", client.ErrVersionConflict, p.Version, r.version)
	}
	if r.refuse != nil {
		return client.PushResult{}, r.refuse
	}
	pp, err := parser.New(options.String(string(cfg)))
	if err != nil {
		return client.PushResult{}, err
	}
	r.version++
	r.stored = fmt.Sprintf("# _md5hash=x\n# _version=%d\n", r.version) + pp.String()
	// The official API sends no Configuration-Version on a push.
	return client.PushResult{Status: http.StatusCreated}, nil
}

func (r *recorder) Validate(_ context.Context, cfg []byte) error {
	r.validated = string(cfg)
	return r.refuse
}

func (r *recorder) WaitReload(context.Context, string) error { return nil }

func (r *recorder) Certificates(context.Context) (models.SslCertificates, error) {
	var out models.SslCertificates
	for name := range r.certs {
		out = append(out, &models.SslCertificate{StorageName: name})
	}
	return out, nil
}

func (r *recorder) Certificate(_ context.Context, name string) (*models.SslCertificate, error) {
	if _, ok := r.certs[name]; !ok {
		return nil, &client.APIError{Status: 404}
	}
	// As the official API: size and the bundle's validity, no
	// fingerprint, serial or subject.
	c := &models.SslCertificate{StorageName: name, Size: ptr.To(int64(len(r.certs[name])))}
	if block, _ := pem.Decode(r.certs[name]); block != nil {
		if x, err := x509.ParseCertificate(block.Bytes); err == nil {
			na, nb := strfmt.DateTime(x.NotAfter), strfmt.DateTime(x.NotBefore)
			c.NotAfter, c.NotBefore = &na, &nb
		}
	}
	return c, nil
}

func (r *recorder) StoreCertificate(_ context.Context, name string, pem []byte, replace bool) (client.Stored, error) {
	if replace {
		r.call("PUT %s", name)
	} else {
		r.call("POST %s", name)
	}
	r.certs[name] = pem
	return client.Stored{File: "/etc/haproxy/ssl/" + name}, nil
}

// GeneralFiles answers 404 unless the recorder has general storage, as
// this project's dataplane does.
func (r *recorder) GeneralFiles(context.Context) (models.GeneralFiles, error) {
	if r.general == nil {
		return nil, &client.APIError{Status: http.StatusNotFound, Message: "not found"}
	}
	var out models.GeneralFiles
	for name := range r.general {
		out = append(out, &models.GeneralFile{StorageName: name, File: "/etc/haproxy/general/" + name})
	}
	return out, nil
}

func (r *recorder) GeneralFile(_ context.Context, name string) ([]byte, error) {
	b, ok := r.general[name]
	if !ok {
		return nil, &client.APIError{Status: http.StatusNotFound}
	}
	return b, nil
}

func (r *recorder) StoreGeneralFile(_ context.Context, name string, content []byte, replace bool) (client.Stored, error) {
	if replace {
		r.call("PUT general %s", name)
	} else {
		r.call("POST general %s", name)
	}
	r.general[name] = content
	return client.Stored{File: "/etc/haproxy/general/" + name}, nil
}

func (r *recorder) DeleteGeneralFile(_ context.Context, name string) error {
	r.call("DELETE general %s", name)
	delete(r.general, name)
	return nil
}

func (r *recorder) DeleteCertificate(_ context.Context, name string) error {
	r.call("DELETE %s", name)
	delete(r.certs, name)
	return nil
}

func (r *recorder) take() []string {
	c := r.calls
	r.calls = nil
	return c
}

func relay(weights ...int32) model.Config {
	be := model.Backend{Name: "tcpm-be-2222"}
	for i, w := range weights {
		be.Servers = append(be.Servers, model.Server{Name: fmt.Sprintf("default:a:%d", i+1), Address: fmt.Sprintf("10.0.0.%d", i+1), Port: 80, Weight: w})
	}
	return model.Config{
		Name:      "default/haproxy",
		Frontends: []*model.Frontend{{Name: "tcpm-fe-2222", Bind: model.Bind{Port: 2222}, DefaultBackend: be.Name}},
		Backends:  []*model.Backend{&be},
	}
}

func want(t *testing.T, m model.Config) apply.Desired {
	t.Helper()
	text, err := render.Config(m)
	if err != nil {
		t.Fatal(err)
	}
	return apply.Desired{Config: text, Model: m}
}

func run(t *testing.T, a *apply.Applier, r *recorder, d apply.Desired) apply.Outcome {
	t.Helper()
	out, err := a.Apply(context.Background(), "http://instance", r, d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func same(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: sent %q, want %q", what, got, want)
	}
}

func TestAnUnchangedInstanceCostsOneVersionCheck(t *testing.T) {
	r := &recorder{version: 1, certs: map[string][]byte{}}
	a := apply.NewApplier()
	run(t, a, r, want(t, relay(100, 0)))
	same(t, "first apply", r.take(), "GET raw", "POST raw reload")

	out := run(t, a, r, want(t, relay(100, 0)))
	same(t, "same again", r.take())
	if out.Changed {
		t.Errorf("same again: %+v", out)
	}

	out = run(t, a, r, want(t, relay(0, 100)))
	same(t, "weights", r.take(), "POST raw runtime 2 actions")
	if out.Reloaded || len(out.Actions) != 2 {
		t.Errorf("weights: %+v", out)
	}

	two := relay(0, 100)
	two.Frontends = append(two.Frontends, &model.Frontend{Name: "tcpm-fe-3333", Bind: model.Bind{Port: 3333}, DefaultBackend: "tcpm-be-2222"})
	out = run(t, a, r, want(t, two))
	same(t, "new port", r.take(), "POST raw reload")
	if !out.Reloaded {
		t.Errorf("new port: %+v", out)
	}
}

// TestAHeldReloadSendsNothing: with HoldReload a change of structure
// sends nothing and says so, a weight change still goes out at runtime,
// and an instance the applier knows nothing of is brought up to date.
func TestAHeldReloadSendsNothing(t *testing.T) {
	for _, ours := range []bool{false, true} {
		t.Run(fmt.Sprintf("ours=%v", ours), func(t *testing.T) {
			r := &recorder{ours: ours, version: 1, certs: map[string][]byte{}}
			a := apply.NewApplier()
			run(t, a, r, want(t, relay(100, 0)))
			r.take()
			held := func(m model.Config) apply.Desired {
				d := want(t, m)
				d.HoldReload = true
				return d
			}

			out := run(t, a, r, held(relay(0, 100)))
			same(t, "weights", r.take(), "POST raw runtime 2 actions")
			if out.Held || out.Reloaded {
				t.Errorf("weights: %+v", out)
			}

			two := relay(0, 100)
			two.Frontends = append(two.Frontends, &model.Frontend{Name: "tcpm-fe-3333", Bind: model.Bind{Port: 3333}, DefaultBackend: "tcpm-be-2222"})
			out = run(t, a, r, held(two))
			same(t, "new port, held", r.take())
			if !out.Held || out.Changed || out.Reloaded {
				t.Errorf("new port, held: %+v", out)
			}
			out = run(t, a, r, held(relay(0, 100)))
			same(t, "back to what runs, held", r.take())
			if out.Held || out.Changed {
				t.Errorf("back to what runs, held: %+v", out)
			}

			out = run(t, a, r, want(t, two))
			same(t, "new port", r.take(), "POST raw reload")
			if out.Held || !out.Reloaded {
				t.Errorf("new port: %+v", out)
			}

			// Someone else changed the instance: what runs is read again,
			// and what it needs goes out.
			r.version++
			out = run(t, a, r, held(relay(0, 100)))
			if out.Held || !out.Reloaded {
				t.Errorf("version moved, held: %+v (sent %q)", out, r.take())
			}
			r.take()

			// A restarted operator knows nothing of what runs.
			r.stored, r.version = "", r.version+1
			out = run(t, apply.NewApplier(), r, held(relay(0, 100)))
			if out.Held || !out.Reloaded {
				t.Errorf("unknown instance, held: %+v (sent %q)", out, r.take())
			}
		})
	}
}

// TestDerivedRevisionsChangeWhatRuns: a revision derived from the last
// one takes its digest over; what the instance runs is remembered apart
// from it, so each weight change, after a reload or after another weight
// change, still finds what differs from what runs.
func TestDerivedRevisionsChangeWhatRuns(t *testing.T) {
	r := &recorder{version: 1, certs: map[string][]byte{}}
	a := apply.NewApplier()
	revision := func(rev uint64, m model.Config) apply.Desired {
		d := want(t, m)
		d.Revision = rev
		if rev > 1 {
			d.Since, d.Changed = rev-1, []string{"tcpm-be-2222"}
		}
		return d
	}
	run(t, a, r, revision(1, relay(100, 0)))
	same(t, "first apply", r.take(), "GET raw", "POST raw reload")
	for rev, weights := range [][2]int32{2: {0, 100}, 3: {100, 0}, 4: {50, 50}} {
		if rev < 2 {
			continue
		}
		out := run(t, a, r, revision(uint64(rev), relay(weights[0], weights[1])))
		same(t, fmt.Sprintf("revision %d", rev), r.take(), "POST raw runtime 2 actions")
		if out.Reloaded || len(out.Actions) != 2 {
			t.Errorf("revision %d: %+v", rev, out)
		}
	}
}

func TestARestartedOperatorComparesTheStoredTextByMeaning(t *testing.T) {
	r := &recorder{version: 1, certs: map[string][]byte{}}
	run(t, apply.NewApplier(), r, want(t, relay(100, 0)))
	r.take()

	out := run(t, apply.NewApplier(), r, want(t, relay(100, 0)))
	same(t, "same text after a restart", r.take(), "GET raw")
	if out.Changed {
		t.Errorf("same text after a restart: %+v", out)
	}
	run(t, apply.NewApplier(), r, want(t, relay(30, 70)))
	same(t, "weights after a restart", r.take(), "GET raw", "POST raw runtime 2 actions")
}

func TestAVersionMovedUnderTheApplierIsReadAgain(t *testing.T) {
	r := &recorder{version: 1, certs: map[string][]byte{}}
	a := apply.NewApplier()
	run(t, a, r, want(t, relay(100, 0)))
	r.take()
	r.version += 3 // another writer stored the same text
	run(t, a, r, want(t, relay(100, 0)))
	same(t, "after another writer", r.take(), "GET raw")
}

func TestAConflictIsReplannedAndRetried(t *testing.T) {
	r := &recorder{version: 1, certs: map[string][]byte{}}
	a := apply.NewApplier()
	run(t, a, r, want(t, relay(100, 0)))
	r.take()
	r.conflict = 1
	run(t, a, r, want(t, relay(0, 100)))
	same(t, "conflict", r.take(), "POST raw runtime 2 actions", "GET raw", "POST raw runtime 2 actions")

	r.conflict = 10
	_, err := a.Apply(context.Background(), "http://instance", r, want(t, relay(50, 50)))
	if !errors.Is(err, client.ErrVersionConflict) {
		t.Errorf("endless conflicts: %v, want the conflict after a bounded number of tries", err)
	}
}

func TestARefusalIsTyped(t *testing.T) {
	r := &recorder{version: 1, certs: map[string][]byte{}, refuse: &client.APIError{Status: 400, Message: "[NOTICE] x\n[ALERT] (1) : config : parsing [haproxy.cfg:12] : unknown keyword 'bogus'\n"}}
	_, err := apply.NewApplier().Apply(context.Background(), "http://instance", r, want(t, relay(100)))
	var refused *apply.RefusedError
	if !errors.As(err, &refused) || refused.Stage != apply.StageValidate || len(refused.Lines) != 1 || !strings.Contains(refused.Lines[0], "bogus") {
		t.Errorf("refused push: %#v", err)
	}
	r.refuse = &client.APIError{Status: 400, Message: "Reload failed: exit status 1, [ALERT] (2) : Starting frontend tcpm-fe-2222: cannot bind socket"}
	_, err = apply.NewApplier().Apply(context.Background(), "http://instance", r, want(t, relay(100)))
	if !errors.As(err, &refused) || refused.Stage != apply.StageReload {
		t.Errorf("failed reload: %#v", err)
	}
	if err := apply.Validate(context.Background(), r, []byte("x")); !errors.As(err, &refused) {
		t.Errorf("Validate: %v, want a *RefusedError", err)
	}
}

func certPEM(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func withCert(t *testing.T, m model.Config, file string, pemBytes []byte) apply.Desired {
	m.Frontends[0].Bind.TLS = &model.TLSBind{Certificate: file}
	m.Certificates = []model.Certificate{{File: file, PEM: pemBytes}}
	return want(t, m)
}

func TestCertificates(t *testing.T) {
	first, second := certPEM(t, "first"), certPEM(t, "second")
	for _, c := range []struct {
		name string
		ours bool
		// rotation is what replacing a certificate sends.
		rotation []string
	}{
		{"official API: a replaced file needs a reload", false, []string{"PUT default_app.pem", "POST raw reload"}},
		{"our dataplane swaps it at runtime", true, []string{"PUT default_app.pem"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &recorder{ours: c.ours, version: 1, certs: map[string][]byte{"other.pem": []byte("not ours"), "tcpm-old.pem": []byte("ours, left over")}}
			a := apply.NewApplier()
			run(t, a, r, withCert(t, relay(100), "default_app.pem", first))
			same(t, "create", r.take(), "POST default_app.pem", "GET raw", "POST raw reload", "DELETE tcpm-old.pem")

			run(t, a, r, withCert(t, relay(100), "default_app.pem", first))
			same(t, "unchanged", r.take())

			out := run(t, a, r, withCert(t, relay(100), "default_app.pem", second))
			same(t, "rotate", r.take(), c.rotation...)
			if len(out.Certificates) != 1 {
				t.Errorf("rotate: %+v", out)
			}

			// A restarted operator recognises the stored file by what the
			// API tells of it (the official API: size and validity).
			b := apply.NewApplier()
			run(t, b, r, withCert(t, relay(100), "default_app.pem", second))
			same(t, "unchanged after a restart", r.take(), "GET raw")

			// A file whose size or validity differs is uploaded again.
			r.certs["default_app.pem"] = append(r.certs["default_app.pem"], '\n')
			run(t, apply.NewApplier(), r, withCert(t, relay(100), "default_app.pem", second))
			got := r.take()
			if len(got) == 0 || got[0] != "PUT default_app.pem" {
				t.Errorf("a different stored file after a restart: sent %q, want it replaced", got)
			}
			b = apply.NewApplier()
			run(t, b, r, withCert(t, relay(100), "default_app.pem", second))
			r.take()
			run(t, b, r, want(t, relay(100)))
			same(t, "delete", r.take(), "POST raw reload", "DELETE default_app.pem")
			if _, ok := r.certs["other.pem"]; !ok {
				t.Error("a file the operator does not own was deleted")
			}
		})
	}
}

// mutualTLS is relay with TLS termination and client certificate
// verification: a certificate, a CA bundle and a CRL.
func mutualTLS(t *testing.T, certPEM, caPEM []byte) apply.Desired {
	m := relay(100)
	m.Frontends[0].Bind.TLS = &model.TLSBind{Certificate: "default_app.pem", CAFile: "default_app.ca.pem", CRLFile: "default_app.crl.pem", Verify: "required"}
	m.Certificates = []model.Certificate{
		{File: "default_app.ca.pem", Kind: model.CertificateKindCA, PEM: caPEM},
		{File: "default_app.crl.pem", Kind: model.CertificateKindCRL, PEM: []byte("crl")},
		{File: "default_app.pem", Kind: model.CertificateKindCert, PEM: certPEM},
	}
	return want(t, m)
}

func TestAnAPIThatReadsPathsLiterallyGetsTheInstancesDirectories(t *testing.T) {
	r := &recorder{version: 1, certs: map[string][]byte{}, general: map[string][]byte{},
		stored: "global\n    stats socket /run/haproxy/admin.sock mode 660 level admin\n"}
	a := apply.NewApplier()
	cert := certPEM(t, "app")
	d := mutualTLS(t, cert, []byte("ca one"))
	run(t, a, r, d)
	same(t, "first apply", r.take(), "POST general default_app_2eca.pem", "POST general default_app_2ecrl.pem", "POST default_app.pem", "GET raw", "POST raw reload")
	for _, line := range []string{
		"presetenv TCPM_RUN_DIR /run/haproxy",
		"crt-base /etc/haproxy/ssl",
		"ca-base /etc/haproxy/general",
		"stats socket /run/haproxy/haproxy.sock mode 600",
		"ssl crt default_app.pem ca-file default_app_2eca.pem crl-file default_app_2ecrl.pem verify required",
	} {
		if !strings.Contains(r.stored, line) {
			t.Errorf("stored configuration lacks %q:\n%s", line, r.stored)
		}
	}
	if strings.Contains(r.stored, "${TCPM_RUN_DIR}") || strings.Contains(r.stored, "${TCPM_CERT_DIR}") {
		t.Errorf("stored configuration still names directories by variable:\n%s", r.stored)
	}
	if _, ok := r.certs["default_app_2eca.pem"]; ok {
		t.Error("the CA bundle went to the certificate storage, which refuses files without a key")
	}

	run(t, a, r, d)
	same(t, "same again", r.take())
	run(t, apply.NewApplier(), r, d)
	same(t, "same after an operator restart", r.take(), "GET raw")

	run(t, a, r, mutualTLS(t, cert, []byte("ca two")))
	same(t, "CA rotated", r.take(), "PUT general default_app_2eca.pem", "POST raw reload")

	run(t, a, r, want(t, relay(100)))
	same(t, "TLS removed", r.take(), "POST raw reload", "DELETE default_app.pem", "DELETE general default_app_2eca.pem", "DELETE general default_app_2ecrl.pem")
}

func TestValidationOfACandidateUsesTheInstancesPathsAndNamesTheConfigurationsFiles(t *testing.T) {
	r := &recorder{version: 1, certs: map[string][]byte{}, general: map[string][]byte{},
		stored: "global\n    stats socket /run/haproxy/admin.sock mode 660 level admin\n",
		refuse: &client.APIError{Status: 400, Message: `validation error: exit status 1; msg="config Couldn't open the ca-file '/etc/haproxy/general/default_app_2eca.pem'"`}}
	d := mutualTLS(t, certPEM(t, "app"), []byte("ca"))
	err := apply.NewApplier().Validate(context.Background(), "http://instance", r, d.Config)
	var refused *apply.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(strings.Join(refused.Lines, "\n"), "'/etc/haproxy/general/default_app.ca.pem'") {
		t.Errorf("got %v, want a refusal naming the configuration's file default_app.ca.pem", err)
	}
	if !strings.Contains(r.validated, "stats socket /run/haproxy/haproxy.sock") || !strings.Contains(r.validated, "ca-file default_app_2eca.pem") {
		t.Errorf("validated text is not the instance's:\n%s", r.validated)
	}
}

func TestOurDataplaneGetsTheRenderedTextAsIs(t *testing.T) {
	r := &recorder{ours: true, version: 1, certs: map[string][]byte{}}
	d := mutualTLS(t, certPEM(t, "app"), []byte("ca"))
	run(t, apply.NewApplier(), r, d)
	same(t, "first apply", r.take(), "POST default_app.ca.pem", "POST default_app.crl.pem", "POST default_app.pem", "GET raw", "POST raw reload")
	if !strings.Contains(r.stored, "${TCPM_RUN_DIR}/haproxy.sock") {
		t.Errorf("our dataplane expands the directories itself, yet got:\n%s", r.stored)
	}
}

func TestRefusalLinesFromTheOfficialAPI(t *testing.T) {
	r := &recorder{version: 1, certs: map[string][]byte{}, refuse: &client.APIError{Status: 400, Message: `validation error: exit status 1: err transactionId=x; msg="config parsing [haproxy.cfg:42] unknown keyword 'bogus' in 'backend' section"; msg="config Fatal errors found in configuration."`}}
	err := apply.Validate(context.Background(), r, []byte("x"))
	var refused *apply.RefusedError
	if !errors.As(err, &refused) || len(refused.Lines) != 3 || refused.Lines[1] != "config parsing [haproxy.cfg:42] unknown keyword 'bogus' in 'backend' section" {
		t.Errorf("got %#v", err)
	}
}

func TestAFrozenInstanceIsATimeoutNotARefusal(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	c := client.New(srv.URL, "u", "p", nil)
	c.RequestTimeout = 100 * time.Millisecond
	start := time.Now()
	_, err := apply.NewApplier().Apply(context.Background(), srv.URL, c, want(t, relay(100)))
	var refused *apply.RefusedError
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &refused) {
		t.Errorf("got %v; want a deadline exceeded that is no refusal", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a frozen instance held the apply %s", d)
	}
}
