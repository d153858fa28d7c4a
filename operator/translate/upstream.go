package translate

import (
	"crypto/tls"
	"fmt"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
)

// upstreamTLS is how a mapping's servers are reached over TLS, resolved:
// the settings of its server lines and the files they load.
type upstreamTLS struct {
	verify     string
	caFile     string
	verifyHost string
	sni        string
	clientCert string
	// files are the CA bundle and client certificate to store, with PEM.
	files []model.Certificate
	// verified is the mapping's UpstreamTLSVerified verdict.
	verified Condition
}

// upstreamSecretRefs are the references of a mapping spec's upstreamTLS
// to Secrets: the CA bundle, then the client certificate.
func upstreamSecretRefs(namespace string, spec *v1alpha1.TCPMappingSpec) []CrossRef {
	u := spec.UpstreamTLS
	if u == nil {
		return nil
	}
	var out []CrossRef
	for _, n := range []string{u.CASecret, u.ClientCertificateSecret} {
		if n != "" {
			ns, name := splitRef(n, namespace)
			out = append(out, CrossRef{FromKind: RefTCPMapping, FromNamespace: namespace, ToGroup: groupCore, ToKind: kindSec, ToNamespace: ns, ToName: name})
		}
	}
	return out
}

// checkUpstreamTLS refuses upstreamTLS fields the API server would have
// refused, and a verified connection to an IP address without a name to
// verify; ref is the parsed service.
func checkUpstreamTLS(spec *v1alpha1.TCPMappingSpec, ref serviceRef) string {
	u := spec.UpstreamTLS
	if u == nil {
		return ""
	}
	switch {
	case !ref.TLS:
		return fmt.Sprintf("spec.upstreamTLS needs an https:// service, not %q", spec.Service)
	case u.CASecret != "" && (len(u.CASecret) > 253 || !refName.MatchString(u.CASecret)):
		return fmt.Sprintf("spec.upstreamTLS.caSecret %q is not name or name.namespace", u.CASecret)
	case u.ClientCertificateSecret != "" && (len(u.ClientCertificateSecret) > 253 || !refName.MatchString(u.ClientCertificateSecret)):
		return fmt.Sprintf("spec.upstreamTLS.clientCertificateSecret %q is not name or name.namespace", u.ClientCertificateSecret)
	case u.ServerName != "" && (len(u.ServerName) > 253 || !objectName.MatchString(u.ServerName)):
		return fmt.Sprintf("spec.upstreamTLS.serverName %q is not a lowercase DNS name", u.ServerName)
	case u.InsecureSkipVerify && u.CASecret != "":
		return "spec.upstreamTLS.insecureSkipVerify cannot be combined with caSecret: nothing would be verified against it"
	}
	return ""
}

// checkUpstreamName refuses a verified https:// service given as an IP
// address with no serverName: the certificate would be checked for no
// name at all.
func checkUpstreamName(spec *v1alpha1.TCPMappingSpec, ref serviceRef) string {
	if !ref.TLS || !ref.IP {
		return ""
	}
	if u := spec.UpstreamTLS; u != nil && (u.ServerName != "" || u.InsecureSkipVerify) {
		return ""
	}
	return fmt.Sprintf("spec.upstreamTLS.serverName is needed: service %q is an IP address, and the upstream's certificate is verified for a name (or set spec.upstreamTLS.insecureSkipVerify)", spec.Service)
}

// resolveUpstream reads a mapping's upstream TLS settings and Secrets. It
// is called for https:// services only; a failed Condition is the
// mapping's ResolvedRefs.
func (t *translation) resolveUpstream(namespace string, spec *v1alpha1.TCPMappingSpec, ref serviceRef) (*upstreamTLS, Condition) {
	u := spec.UpstreamTLS
	if u == nil {
		u = &v1alpha1.UpstreamTLS{}
	}
	name := u.ServerName
	if name == "" && !ref.IP {
		name = ref.Name
	}
	up := &upstreamTLS{sni: name}
	refs := upstreamSecretRefs(namespace, spec)
	for _, r := range refs {
		if t.permit(r) == nil {
			t.reference(RefSecret, key(r.ToNamespace, r.ToName))
		}
	}
	for _, r := range refs {
		if denied := t.permit(r); denied != nil {
			denied.Message = "spec.upstreamTLS: " + denied.Message
			return nil, *denied
		}
	}
	if u.InsecureSkipVerify {
		up.verify = model.VerifyNone
		up.verified = fail(v1alpha1.ReasonInsecureSkipVerify,
			"spec.upstreamTLS.insecureSkipVerify is set: the connection to the upstream is encrypted, but its certificate is not verified")
	} else {
		up.verify, up.verifyHost = model.VerifyRequired, name
		up.caFile = model.SystemCAFile
		against := "the system's certificate authorities"
		if u.CASecret != "" {
			ns, sname := splitRef(u.CASecret, namespace)
			s := t.idx.secrets[key(ns, sname)]
			if s == nil {
				return nil, fail(v1alpha1.ReasonSecretNotFound, fmt.Sprintf("spec.upstreamTLS.caSecret: Secret %s/%s not found", ns, sname))
			}
			bundle := s.Data["ca.crt"]
			if n, err := certificates(bundle); err != nil || n == 0 {
				why := "no certificate"
				if err != nil {
					why = err.Error()
				}
				return nil, fail(v1alpha1.ReasonInvalidCertificate,
					fmt.Sprintf("spec.upstreamTLS.caSecret: Secret %s/%s needs ca.crt with PEM certificates only (%s)", ns, sname, why))
			}
			up.caFile = model.UpstreamCAFile(ns, sname)
			up.files = append(up.files, model.Certificate{File: up.caFile, Kind: model.CertificateKindCA, PEM: append(model.PrivateBytes(nil), bundle...)})
			against = fmt.Sprintf("Secret %s/%s", ns, sname)
		}
		up.verified = ok(v1alpha1.ReasonVerified,
			fmt.Sprintf("the upstream's certificate is verified against %s for the name %s", against, name))
	}

	if u.ClientCertificateSecret != "" {
		ns, sname := splitRef(u.ClientCertificateSecret, namespace)
		s := t.idx.secrets[key(ns, sname)]
		if s == nil {
			return nil, fail(v1alpha1.ReasonSecretNotFound, fmt.Sprintf("spec.upstreamTLS.clientCertificateSecret: Secret %s/%s not found", ns, sname))
		}
		crt, keyPEM := s.Data["tls.crt"], s.Data["tls.key"]
		if len(crt) == 0 || len(keyPEM) == 0 {
			return nil, fail(v1alpha1.ReasonInvalidCertificate,
				fmt.Sprintf("spec.upstreamTLS.clientCertificateSecret: Secret %s/%s needs both tls.crt and tls.key", ns, sname))
		}
		if _, err := certificates(crt); err != nil {
			return nil, fail(v1alpha1.ReasonInvalidCertificate,
				fmt.Sprintf("spec.upstreamTLS.clientCertificateSecret: Secret %s/%s: tls.crt: %v", ns, sname, err))
		}
		if _, err := tls.X509KeyPair(crt, keyPEM); err != nil {
			// crypto/tls errors describe the problem without quoting key bytes.
			return nil, fail(v1alpha1.ReasonInvalidCertificate,
				fmt.Sprintf("spec.upstreamTLS.clientCertificateSecret: Secret %s/%s: %v", ns, sname, err))
		}
		pemFile := append(model.PrivateBytes(nil), crt...)
		if pemFile[len(pemFile)-1] != '\n' {
			pemFile = append(pemFile, '\n')
		}
		pemFile = append(pemFile, keyPEM...)
		up.clientCert = model.UpstreamCertificateFile(ns, sname)
		up.files = append(up.files, model.Certificate{File: up.clientCert, Kind: model.CertificateKindCert, PEM: pemFile})
	}
	return up, ok(v1alpha1.ReasonResolved, "")
}

// addUpstreamFiles adds a mapping's upstream files to the configuration;
// mappings naming the same Secret share its file.
func (t *translation) addUpstreamFiles(c *candidate) {
	if c.upstream == nil {
		return
	}
	cfg := &t.result.Config
	ref := RefTCPMapping + "/" + c.key
next:
	for _, f := range c.upstream.files {
		for i := range cfg.Certificates {
			if cfg.Certificates[i].File == f.File {
				cfg.Certificates[i].Sources = sources(cfg.Certificates[i].Sources, ref)
				continue next
			}
		}
		f.Sources = []string{ref}
		cfg.Certificates = append(cfg.Certificates, f)
	}
}
