package apply

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/haproxytech/client-native/v5/models"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
)

// storeCert is one file to create or replace.
type storeCert struct {
	cert    model.Certificate
	digest  string
	replace bool
}

// certPlan is what to do with certificate files.
type certPlan struct {
	store  []storeCert
	remove []string
}

// needsReload says whether the replaced files reach HAProxy only through
// a reload: always on an API that only writes the file, and for CA
// bundles and CRLs, which a certificate swap does not cover.
func (p certPlan) needsReload(runtimeSwap bool) bool {
	for _, c := range p.store {
		if !c.replace {
			continue
		}
		if !runtimeSwap || strings.HasSuffix(c.cert.File, ".ca.pem") || strings.HasSuffix(c.cert.File, ".crl.pem") {
			return true
		}
	}
	return false
}

func contentDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// owned says whether the operator may delete a stored file it does not
// remember storing: only names carrying its prefix.
func owned(name string) bool { return strings.HasPrefix(name, model.Prefix) }

// planCertificates decides which files to store and delete. A file it
// stored is compared by the digest it remembers; one it does not
// remember, by what the API says of the stored file.
func (st *instanceState) planCertificates(ctx context.Context, inst Instance, want []model.Certificate) (certPlan, error) {
	var plan certPlan
	var stored map[string]*models.SslCertificate
	list := func() error {
		if stored != nil {
			return nil
		}
		all, err := inst.Certificates(ctx)
		if err != nil {
			return fmt.Errorf("list certificates: %w", err)
		}
		stored = map[string]*models.SslCertificate{}
		for _, c := range all {
			if c != nil {
				stored[c.StorageName] = c
			}
		}
		return nil
	}
	if !st.certsChecked && (len(want) > 0 || len(st.certs) > 0) {
		// The instance may have lost files (a new instance at the same
		// address): keep only the remembered ones it still has.
		if err := list(); err != nil {
			return plan, err
		}
		for name := range st.certs {
			if stored[name] == nil {
				delete(st.certs, name)
			}
		}
	}
	keep := map[string]bool{}
	for _, c := range want {
		keep[c.File] = true
		if c.Keep {
			// Its Secret went bad: what the instance stores keeps serving.
			// An instance without the file refuses the configuration,
			// which names the file.
			continue
		}
		d := contentDigest(c.PEM.Reveal())
		if have, ok := st.certs[c.File]; ok {
			if have != d {
				plan.store = append(plan.store, storeCert{cert: c, digest: d, replace: true})
			}
			continue
		}
		if err := list(); err != nil {
			return plan, err
		}
		s, exists := stored[c.File]
		switch {
		case !exists:
			plan.store = append(plan.store, storeCert{cert: c, digest: d})
		case sameCertificate(ctx, inst, s, c.PEM.Reveal()):
			st.certs[c.File] = d
		default:
			plan.store = append(plan.store, storeCert{cert: c, digest: d, replace: true})
		}
	}
	for name := range st.certs {
		if !keep[name] {
			plan.remove = append(plan.remove, name)
		}
	}
	for name := range stored {
		if !keep[name] && owned(name) && st.certs[name] == "" {
			plan.remove = append(plan.remove, name)
		}
	}
	sort.Strings(plan.remove)
	return plan, nil
}

// sameCertificate reports whether the stored file s holds the leaf
// certificate of bundle, from what the API tells: a fingerprint when it
// gives one, else expiry, serial and subject. When it tells too little,
// the answer is no and the file is uploaded once more.
func sameCertificate(ctx context.Context, inst Instance, s *models.SslCertificate, bundle []byte) bool {
	leaf := leafCertificate(bundle)
	if leaf == nil {
		return false
	}
	fp := sha256.Sum256(leaf.Raw)
	if s.Sha256FingerPrint != "" {
		return sameHex(s.Sha256FingerPrint, hex.EncodeToString(fp[:]))
	}
	one, err := inst.Certificate(ctx, s.StorageName)
	if err != nil {
		return false
	}
	if one.Sha256FingerPrint != "" {
		return sameHex(one.Sha256FingerPrint, hex.EncodeToString(fp[:]))
	}
	if one.NotAfter == nil || one.Serial == "" || one.Subject == "" {
		return false
	}
	serial, ok := new(big.Int).SetString(strings.ReplaceAll(one.Serial, ":", ""), 16)
	return ok && serial.Cmp(leaf.SerialNumber) == 0 &&
		time.Time(*one.NotAfter).Equal(leaf.NotAfter) &&
		sameSubject(one.Subject, leaf)
}

func sameHex(a, b string) bool {
	return strings.EqualFold(strings.ReplaceAll(a, ":", ""), strings.ReplaceAll(b, ":", ""))
}

// sameSubject accepts the subject as Go prints it or as its common name.
func sameSubject(s string, c *x509.Certificate) bool {
	return s == c.Subject.String() || s == c.Subject.CommonName || s == "CN="+c.Subject.CommonName
}

// leafCertificate is the first certificate of a PEM bundle.
func leafCertificate(bundle []byte) *x509.Certificate {
	for {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			return nil
		}
		if block.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil
			}
			return c
		}
	}
}
