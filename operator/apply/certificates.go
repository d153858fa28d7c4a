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

// store is where the API keeps a file.
type store int

const (
	// sslStore is storage/ssl_certificates.
	sslStore store = iota
	// generalStore is storage/general: the official API's certificate
	// storage refuses a file without a private key (a CA bundle, a CRL),
	// its general storage takes any content.
	generalStore
)

func (s store) String() string {
	if s == generalStore {
		return "general file"
	}
	return "certificate"
}

// fileKey names a stored file.
type fileKey struct {
	store store
	name  string
}

// storeCert is one file to create or replace.
type storeCert struct {
	cert model.Certificate
	// key is where it goes and under which name.
	key     fileKey
	digest  string
	replace bool
}

// certPlan is what to do with certificate files.
type certPlan struct {
	store  []storeCert
	remove []fileKey
}

// caOrCRL says whether c is a CA bundle or a CRL (no private key).
func caOrCRL(c model.Certificate) bool {
	switch c.Kind {
	case model.CertificateKindCA, model.CertificateKindCRL:
		return true
	case model.CertificateKindCert:
		return false
	}
	return strings.HasSuffix(c.File, ".ca.pem") || strings.HasSuffix(c.File, ".crl.pem")
}

// needsReload says whether the replaced files reach HAProxy only through
// a reload: always on an API that only writes the file, and for CA
// bundles and CRLs, which a certificate swap does not cover.
func (p certPlan) needsReload(runtimeSwap bool) bool {
	for _, c := range p.store {
		if c.replace && (!runtimeSwap || c.key.store == generalStore || caOrCRL(c.cert)) {
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

// keyOf is where c goes on this instance, and under which name.
func (st *instanceState) keyOf(c model.Certificate) fileKey {
	k := fileKey{sslStore, c.File}
	if st.generalStorage && caOrCRL(c) {
		k.store = generalStore
	}
	if st.literal {
		k.name = StorageName(c.File)
	}
	return k
}

// planCertificates decides which files to store and delete. A file it
// stored is compared by the digest it remembers; one it does not
// remember, by what the API says of the stored file. Listings also tell
// where the API keeps each kind of file.
func (st *instanceState) planCertificates(ctx context.Context, inst Instance, want []model.Certificate) (certPlan, error) {
	var plan certPlan
	// lists are the storages' listings by name; a certificate's entry is
	// what the API said of it, a general file's is nil.
	lists := map[store]map[string]*models.SslCertificate{}
	list := func(s store) (map[string]*models.SslCertificate, error) {
		if l, ok := lists[s]; ok {
			return l, nil
		}
		l := map[string]*models.SslCertificate{}
		if s == generalStore {
			all, err := inst.GeneralFiles(ctx)
			if err != nil {
				return nil, fmt.Errorf("list general files: %w", err)
			}
			for _, f := range all {
				if f != nil {
					l[f.StorageName] = nil
					st.learn(generalStore, f.File)
				}
			}
		} else {
			all, err := inst.Certificates(ctx)
			if err != nil {
				return nil, fmt.Errorf("list certificates: %w", err)
			}
			for _, c := range all {
				if c != nil {
					l[c.StorageName] = c
					st.learn(sslStore, c.File)
				}
			}
		}
		lists[s] = l
		return l, nil
	}
	used := map[store]bool{}
	for _, c := range want {
		used[st.keyOf(c).store] = true
	}
	for k := range st.certs {
		used[k.store] = true
	}
	if !st.certsChecked {
		// The instance may have lost files (a new instance at the same
		// address): keep only the remembered ones it still has.
		for s := range used {
			l, err := list(s)
			if err != nil {
				return plan, err
			}
			for k := range st.certs {
				if _, ok := l[k.name]; !ok && k.store == s {
					delete(st.certs, k)
				}
			}
		}
	}
	keep := map[fileKey]bool{}
	for _, c := range want {
		k := st.keyOf(c)
		keep[k] = true
		if c.Keep {
			// Its Secret went bad: what the instance stores keeps serving.
			// An instance without the file refuses the configuration,
			// which names the file.
			continue
		}
		d := contentDigest(c.PEM.Reveal())
		if have, ok := st.certs[k]; ok {
			if have != d {
				plan.store = append(plan.store, storeCert{cert: c, key: k, digest: d, replace: true})
			}
			continue
		}
		l, err := list(k.store)
		if err != nil {
			return plan, err
		}
		s, exists := l[k.name]
		switch {
		case !exists:
			plan.store = append(plan.store, storeCert{cert: c, key: k, digest: d})
		case k.store == sslStore && sameCertificate(ctx, inst, s, c.PEM.Reveal()):
			st.certs[k] = d
		case k.store == generalStore && sameGeneralFile(ctx, inst, k.name, d):
			st.certs[k] = d
		default:
			plan.store = append(plan.store, storeCert{cert: c, key: k, digest: d, replace: true})
		}
	}
	for k := range st.certs {
		if !keep[k] {
			plan.remove = append(plan.remove, k)
		}
	}
	for s, l := range lists {
		for name := range l {
			k := fileKey{s, name}
			if !keep[k] && owned(name) && st.certs[k] == "" {
				plan.remove = append(plan.remove, k)
			}
		}
	}
	sort.Slice(plan.remove, func(i, j int) bool {
		a, b := plan.remove[i], plan.remove[j]
		return a.store < b.store || (a.store == b.store && a.name < b.name)
	})
	return plan, nil
}

// sameGeneralFile compares a stored general file with a digest: the API
// serves its content.
func sameGeneralFile(ctx context.Context, inst Instance, name, digest string) bool {
	b, err := inst.GeneralFile(ctx, name)
	return err == nil && contentDigest(b) == digest
}

// sameCertificate reports whether the stored file s holds bundle, from
// what the API tells: a fingerprint of the leaf when it gives one; else
// serial, expiry and subject of the leaf; else (the official API v2.9,
// which fills none of these) the file's size and the bundle's validity
// as it computes it, the earliest not_after and the latest not_before, to
// the second. A renewed certificate has another validity, so these tell
// a rotation apart. When the API tells too little, the answer is no and
// the file is uploaded once more.
func sameCertificate(ctx context.Context, inst Instance, s *models.SslCertificate, bundle []byte) bool {
	certs := bundleCertificates(bundle)
	if len(certs) == 0 {
		return false
	}
	leaf := certs[0]
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
	if one.NotAfter != nil && one.Serial != "" && one.Subject != "" {
		serial, ok := new(big.Int).SetString(strings.ReplaceAll(one.Serial, ":", ""), 16)
		return ok && serial.Cmp(leaf.SerialNumber) == 0 &&
			time.Time(*one.NotAfter).Equal(leaf.NotAfter) &&
			sameSubject(one.Subject, leaf)
	}
	if one.NotAfter == nil || one.NotBefore == nil || one.Size == nil {
		return false
	}
	notAfter, notBefore := certs[0].NotAfter, certs[0].NotBefore
	for _, c := range certs[1:] {
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
		if c.NotBefore.After(notBefore) {
			notBefore = c.NotBefore
		}
	}
	return *one.Size == int64(len(bundle)) &&
		time.Time(*one.NotAfter).Truncate(time.Second).Equal(notAfter) &&
		time.Time(*one.NotBefore).Truncate(time.Second).Equal(notBefore)
}

func sameHex(a, b string) bool {
	return strings.EqualFold(strings.ReplaceAll(a, ":", ""), strings.ReplaceAll(b, ":", ""))
}

// sameSubject accepts the subject as Go prints it or as its common name.
func sameSubject(s string, c *x509.Certificate) bool {
	return s == c.Subject.String() || s == c.Subject.CommonName || s == "CN="+c.Subject.CommonName
}

// bundleCertificates are the certificates of a PEM bundle, leaf first;
// nil when one does not parse.
func bundleCertificates(bundle []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			return out
		}
		if block.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil
			}
			out = append(out, c)
		}
	}
}
