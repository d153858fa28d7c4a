package translate

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
)

// contextInfo is a TLSContext resolved to what a bind needs.
type contextInfo struct {
	ctx *v1alpha1.TLSContext
	key string
	// spec is the generation in effect: the current one, or the last
	// accepted one while the current one is rejected.
	spec *v1alpha1.TLSContextSpec
	// inEffect is the generation of spec.
	inEffect int64
	// accepted is the verdict on the current generation; rejected is set
	// when no generation can be used.
	accepted Condition
	rejected bool
	resolved Condition
	bind     model.TLSBind
	certPEM  model.PrivateBytes
	// keepStored: the certificate Secret is missing or unusable, but the
	// TLSContext was accepted before, so the file the instances stored
	// then keeps serving (last known good).
	keepStored bool
	caPEM      model.PrivateBytes
	crlPEM     model.PrivateBytes
	notAfter   *time.Time
	dnsNames   []string
}

var tlsVersions = map[v1alpha1.TLSVersion]string{
	"v1.0": "TLSv1.0",
	"v1.1": "TLSv1.1",
	"v1.2": "TLSv1.2",
	"v1.3": "TLSv1.3",
}

// context resolves the TLSContext namespace/name once per translation.
func (t *translation) context(namespace, name string) *contextInfo {
	k := key(namespace, name)
	if ci, seen := t.contexts[k]; seen {
		return ci
	}
	ctx := t.idx.contexts[k]
	if ctx == nil {
		t.contexts[k] = nil
		return nil
	}
	ci := &contextInfo{ctx: ctx, key: k, spec: &ctx.Spec, inEffect: ctx.Generation,
		accepted: ok(v1alpha1.ReasonAccepted, "settings are valid")}
	if rejection := t.contextRejection(ctx, &ctx.Spec, ctx.Generation); rejection != nil {
		ci.accepted = *rejection
		if prev := ctx.Status.LastAccepted; prev != nil && prev.Generation < ctx.Generation &&
			t.contextRejection(ctx, &prev.Spec, prev.Generation) == nil {
			// The current generation's Secrets still count: fixing them
			// must trigger a new translation.
			t.referenceContextSecrets(ctx.Namespace, &ctx.Spec)
			ci.spec, ci.inEffect = &prev.Spec, prev.Generation
			ci.accepted = fail(v1alpha1.ReasonPreviousGenerationInEffect,
				previousInEffect(ctx.Generation, *rejection, prev.Generation))
		} else {
			ci.rejected, ci.inEffect = true, 0
		}
	}
	ci.resolved = t.resolveContext(ci)
	t.contexts[k] = ci
	return ci
}

// contextRejection is why one generation of a TLSContext cannot be used:
// settings HAProxy could not load, or an exclusion; nil when it can.
func (t *translation) contextRejection(ctx *v1alpha1.TLSContext, spec *v1alpha1.TLSContextSpec, generation int64) *Condition {
	if bad := checkTLSContext(ctx.Namespace, ctx.Name, spec); bad != "" {
		c := fail(v1alpha1.ReasonInvalidTLSSettings, fmt.Sprintf("TLSContext %s/%s: %s", ctx.Namespace, ctx.Name, bad))
		return &c
	}
	if ex := t.excluded(RefTLSContext+"/"+key(ctx.Namespace, ctx.Name), generation); ex != nil {
		c := fail(ex.Reason, ex.Message)
		return &c
	}
	return nil
}

// previousInEffect says why generation current is rejected and which one
// serves instead.
func previousInEffect(current int64, why Condition, previous int64) string {
	return fmt.Sprintf("generation %d is rejected (%s: %s); generation %d is still in effect",
		current, why.Reason, why.Message, previous)
}

// referenceContextSecrets records the Secrets a TLSContext spec names and
// may use; one in another namespace that no grant opens is not read, so it
// is not a reference (the grants of its namespace are).
func (t *translation) referenceContextSecrets(namespace string, spec *v1alpha1.TLSContextSpec) {
	for _, ref := range t.policy.contextSecretRefs(namespace, spec) {
		if t.permit(ref) == nil {
			t.reference(RefSecret, key(ref.ToNamespace, ref.ToName))
		}
	}
}

func (t *translation) resolveContext(ci *contextInfo) Condition {
	ctx := ci.ctx
	spec := *ci.spec
	// Every Secret is named before any is looked at, so the reader of
	// References fetches all of them at once.
	t.referenceContextSecrets(ctx.Namespace, ci.spec)
	// Consent first: a Secret of another namespace that is not granted is
	// never read, and the certificate stored for an earlier generation
	// does not keep serving either, so revoking a grant stops the use.
	for _, ref := range t.policy.contextSecretRefs(ctx.Namespace, ci.spec) {
		if denied := t.permit(ref); denied != nil {
			denied.Message = fmt.Sprintf("TLSContext %s: %s", ci.key, denied.Message)
			return *denied
		}
	}
	ns, name := splitRef(spec.Secret, ctx.Namespace)
	certificate := t.loadCertificate(ci, ns, name)
	if !certificate.Status {
		if ctx.Status.LastAccepted == nil {
			return certificate
		}
		ci.keepStored = true
		certificate.Message += "; the certificate HAProxy loaded before keeps serving until the Secret holds a valid one"
	}

	b := model.TLSBind{
		Certificate: model.CertificateFile(ctx.Namespace, ctx.Name),
		ALPN:        spec.ALPNProtocols,
		MinVersion:  tlsVersions[spec.MinTLSVersion],
		MaxVersion:  tlsVersions[spec.MaxTLSVersion],
		Curves:      spec.ECDHCurves,
	}
	for _, c := range spec.CipherSuites {
		if strings.HasPrefix(c, "TLS_") {
			b.CipherSuites = append(b.CipherSuites, c)
		} else {
			b.Ciphers = append(b.Ciphers, c)
		}
	}

	if spec.CASecret != "" {
		cns, cname := splitRef(spec.CASecret, ctx.Namespace)
		ca := t.idx.secrets[key(cns, cname)]
		if ca == nil {
			return fail(v1alpha1.ReasonSecretNotFound, fmt.Sprintf("TLSContext %s: CA Secret %s/%s not found", ci.key, cns, cname))
		}
		bundle := ca.Data["ca.crt"]
		if n, err := certificates(bundle); err != nil || n == 0 {
			why := "no certificate"
			if err != nil {
				why = err.Error()
			}
			return fail(v1alpha1.ReasonInvalidCertificate,
				fmt.Sprintf("TLSContext %s: Secret %s/%s needs ca.crt with PEM certificates only (%s)", ci.key, cns, cname, why))
		}
		ci.caPEM = append([]byte(nil), bundle...)
		b.CAFile = model.CAFile(ctx.Namespace, ctx.Name)
		if crl, has := ca.Data["ca.crl"]; has {
			if n, err := revocationLists(crl); err != nil || n == 0 {
				why := "no revocation list"
				if err != nil {
					why = err.Error()
				}
				return fail(v1alpha1.ReasonInvalidCertificate,
					fmt.Sprintf("TLSContext %s: Secret %s/%s: ca.crl must hold PEM revocation lists only (%s)", ci.key, cns, cname, why))
			}
			ci.crlPEM = append([]byte(nil), crl...)
			b.CRLFile = model.CRLFile(ctx.Namespace, ctx.Name)
		}
		b.Verify = "optional"
		if spec.CertRequired != nil && *spec.CertRequired {
			b.Verify = "required"
		}
	}
	ci.bind = b
	if ci.keepStored {
		return certificate
	}
	msg := fmt.Sprintf("certificate from Secret %s/%s is valid until %s", ns, name, ci.notAfter.Format(time.RFC3339))
	if b.CAFile != "" {
		cns, cname := splitRef(spec.CASecret, ctx.Namespace)
		msg += fmt.Sprintf("; client certificates are verified against Secret %s/%s", cns, cname)
	}
	return ok(v1alpha1.ReasonResolved, msg)
}

// loadCertificate reads the certificate and key of Secret ns/name into ci.
func (t *translation) loadCertificate(ci *contextInfo, ns, name string) Condition {
	secret := t.idx.secrets[key(ns, name)]
	if secret == nil {
		msg := fmt.Sprintf("TLSContext %s: Secret %s/%s not found", ci.key, ns, name)
		if spec := ci.spec; spec.CASecret != "" {
			cns, cname := splitRef(spec.CASecret, ci.ctx.Namespace)
			if t.idx.secrets[key(cns, cname)] == nil {
				msg += fmt.Sprintf(", nor CA Secret %s/%s", cns, cname)
			}
		}
		return fail(v1alpha1.ReasonSecretNotFound, msg)
	}
	crt, keyPEM := secret.Data["tls.crt"], secret.Data["tls.key"]
	if len(crt) == 0 || len(keyPEM) == 0 {
		return fail(v1alpha1.ReasonInvalidCertificate,
			fmt.Sprintf("TLSContext %s: Secret %s/%s needs both tls.crt and tls.key", ci.key, ns, name))
	}
	// HAProxy loads the whole chain: every block must be a certificate
	// it can read, not only the leaf crypto/tls looks at.
	if _, err := certificates(crt); err != nil {
		return fail(v1alpha1.ReasonInvalidCertificate,
			fmt.Sprintf("TLSContext %s: Secret %s/%s: tls.crt: %v", ci.key, ns, name, err))
	}
	pair, err := tls.X509KeyPair(crt, keyPEM)
	if err != nil {
		// crypto/tls errors describe the problem without quoting key bytes.
		return fail(v1alpha1.ReasonInvalidCertificate,
			fmt.Sprintf("TLSContext %s: Secret %s/%s: %v", ci.key, ns, name, err))
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fail(v1alpha1.ReasonInvalidCertificate,
			fmt.Sprintf("TLSContext %s: Secret %s/%s: %v", ci.key, ns, name, err))
	}
	notAfter := leaf.NotAfter.UTC()
	ci.notAfter = &notAfter
	ci.dnsNames = append([]string(nil), leaf.DNSNames...)

	pemFile := append([]byte(nil), crt...)
	if !bytes.HasSuffix(pemFile, []byte("\n")) {
		pemFile = append(pemFile, '\n')
	}
	pemFile = append(pemFile, keyPEM...)
	ci.certPEM = pemFile

	return ok(v1alpha1.ReasonResolved, "")
}

// pemBlocks walks every PEM block of data. pem.Decode skips a block it
// cannot decode; counting the BEGIN lines catches it, so a damaged block
// is an error rather than a silently shorter chain.
func pemBlocks(data []byte) ([]*pem.Block, error) {
	var blocks []*pem.Block
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		blocks = append(blocks, block)
	}
	if begins := bytes.Count(data, []byte("-----BEGIN ")); begins != len(blocks) {
		return nil, fmt.Errorf("%d of %d PEM blocks do not decode", begins-len(blocks), begins)
	}
	return blocks, nil
}

// certificates checks that every PEM block of data is an X.509
// certificate and counts them.
func certificates(data []byte) (int, error) {
	blocks, err := pemBlocks(data)
	if err != nil {
		return 0, err
	}
	for i, b := range blocks {
		if b.Type != "CERTIFICATE" {
			return 0, fmt.Errorf("PEM block %d is a %s, not a CERTIFICATE", i+1, b.Type)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return 0, fmt.Errorf("PEM block %d: %w", i+1, err)
		}
	}
	return len(blocks), nil
}

// revocationLists checks that every PEM block of data is an X.509 CRL and
// counts them.
func revocationLists(data []byte) (int, error) {
	blocks, err := pemBlocks(data)
	if err != nil {
		return 0, err
	}
	for i, b := range blocks {
		if b.Type != "X509 CRL" {
			return 0, fmt.Errorf("PEM block %d is a %s, not an X509 CRL", i+1, b.Type)
		}
		if _, err := x509.ParseRevocationList(b.Bytes); err != nil {
			return 0, fmt.Errorf("PEM block %d: %w", i+1, err)
		}
	}
	return len(blocks), nil
}

// hostCovered reports whether a TLSContext's hosts cover a mapping's host;
// a wildcard covers one label, and a wildcard host only the same wildcard.
func hostCovered(hosts []v1alpha1.Hostname, host string) bool {
	for _, h := range hosts {
		hs := string(h)
		if hs == host {
			return true
		}
		if suffix, isWild := strings.CutPrefix(hs, "*"); isWild && !strings.HasPrefix(host, "*") {
			if first, rest, found := strings.Cut(host, "."); found && first != "" && "."+rest == suffix {
				return true
			}
		}
	}
	return false
}

// contextResults gives a verdict on every TLSContext this HAProxy serves or
// that a served mapping references.
func (t *translation) contextResults() {
	for i := range t.idx.s.TLSContexts {
		ctx := &t.idx.s.TLSContexts[i]
		if ctx.DeletionTimestamp == nil && t.idx.selects(t.hap, ctx) {
			t.context(ctx.Namespace, ctx.Name)
		}
	}
	for _, ci := range t.contexts {
		if ci == nil {
			continue
		}
		t.result.TLSContexts = append(t.result.TLSContexts, TLSContextResult{
			Namespace:          ci.ctx.Namespace,
			Name:               ci.ctx.Name,
			Generation:         ci.ctx.Generation,
			InEffectGeneration: ci.inEffect,
			Accepted:           ci.accepted,
			ResolvedRefs:       ci.resolved,
			NotAfter:           ci.notAfter,
			DNSNames:           ci.dnsNames,
		})
	}
	sort.Slice(t.result.TLSContexts, func(i, j int) bool {
		a, b := t.result.TLSContexts[i], t.result.TLSContexts[j]
		return key(a.Namespace, a.Name) < key(b.Namespace, b.Name)
	})
}
