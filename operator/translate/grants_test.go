package translate_test

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// grant is a ReferenceGrant in namespace ns from kind in fromNS to the
// given target (toName "" for every name).
func grant(ns, kind, fromNS, toGroup, toKind, toName string) gatewayv1beta1.ReferenceGrant {
	to := gatewayv1beta1.ReferenceGrantTo{Group: gatewayv1.Group(toGroup), Kind: gatewayv1.Kind(toKind)}
	if toName != "" {
		to.Name = ptr.To(gatewayv1.ObjectName(toName))
	}
	return gatewayv1beta1.ReferenceGrant{
		ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: ns},
		Spec: gatewayv1beta1.ReferenceGrantSpec{
			From: []gatewayv1beta1.ReferenceGrantFrom{{Group: gatewayv1.Group(v1alpha1.GroupVersion.Group), Kind: gatewayv1.Kind(kind), Namespace: gatewayv1.Namespace(fromNS)}},
			To:   []gatewayv1beta1.ReferenceGrantTo{to},
		},
	}
}

func TestPermitted(t *testing.T) {
	secret := translate.CrossRef{FromKind: "TLSContext", FromNamespace: "attacker", ToKind: "Secret", ToNamespace: "victim", ToName: "bank-cert"}
	service := translate.CrossRef{FromKind: "TCPMapping", FromNamespace: "attacker", ToKind: "Service", ToNamespace: "victim", ToName: "vault"}
	context := translate.CrossRef{FromKind: "TCPMapping", FromNamespace: "attacker", ToGroup: "haproxy-operator.io", ToKind: "TLSContext", ToNamespace: "victim", ToName: "site"}
	otherGroup := grant("victim", "TLSContext", "attacker", "", "Secret", "")
	otherGroup.Spec.From[0].Group = "gateway.networking.k8s.io"
	deleting := grant("victim", "TLSContext", "attacker", "", "Secret", "")
	deleting.DeletionTimestamp = &metav1.Time{}
	twoEntries := grant("victim", "TCPMapping", "someone", "", "Service", "")
	twoEntries.Spec.From = append(twoEntries.Spec.From, gatewayv1beta1.ReferenceGrantFrom{Group: "haproxy-operator.io", Kind: "TCPMapping", Namespace: "attacker"})

	for name, tc := range map[string]struct {
		grants []gatewayv1beta1.ReferenceGrant
		ref    translate.CrossRef
		want   bool
	}{
		"no grant permits nothing":                         {nil, secret, false},
		"a grant for every Secret permits one":             {[]gatewayv1beta1.ReferenceGrant{grant("victim", "TLSContext", "attacker", "", "Secret", "")}, secret, true},
		"a grant naming the Secret permits it":             {[]gatewayv1beta1.ReferenceGrant{grant("victim", "TLSContext", "attacker", "", "Secret", "bank-cert")}, secret, true},
		"a grant naming another Secret does not":           {[]gatewayv1beta1.ReferenceGrant{grant("victim", "TLSContext", "attacker", "", "Secret", "other")}, secret, false},
		"a grant in the referrer's namespace does not":     {[]gatewayv1beta1.ReferenceGrant{grant("attacker", "TLSContext", "attacker", "", "Secret", "")}, secret, false},
		"a grant for another namespace does not":           {[]gatewayv1beta1.ReferenceGrant{grant("victim", "TLSContext", "friend", "", "Secret", "")}, secret, false},
		"a grant to TCPMappings does not cover TLSContext": {[]gatewayv1beta1.ReferenceGrant{grant("victim", "TCPMapping", "attacker", "", "Secret", "")}, secret, false},
		"a grant of Services does not cover Secrets":       {[]gatewayv1beta1.ReferenceGrant{grant("victim", "TLSContext", "attacker", "", "Service", "")}, secret, false},
		"a grant from another API group does not":          {[]gatewayv1beta1.ReferenceGrant{otherGroup}, secret, false},
		"a grant being deleted does not":                   {[]gatewayv1beta1.ReferenceGrant{deleting}, secret, false},
		"any from entry may match":                         {[]gatewayv1beta1.ReferenceGrant{twoEntries}, service, true},
		"a grant of core TLSContext does not cover ours":   {[]gatewayv1beta1.ReferenceGrant{grant("victim", "TCPMapping", "attacker", "", "TLSContext", "")}, context, false},
		"a grant of our TLSContexts permits one":           {[]gatewayv1beta1.ReferenceGrant{grant("victim", "TCPMapping", "attacker", "haproxy-operator.io", "TLSContext", "site")}, context, true},
	} {
		t.Run(name, func(t *testing.T) {
			if got := translate.Permitted(tc.grants, tc.ref); got != tc.want {
				t.Errorf("Permitted = %v, want %v", got, tc.want)
			}
		})
	}
}

// theft is namespace attacker naming default's certificate Secret (through
// its TLSContext) and Service qotm, as in the issue.
func theft(t *testing.T) (s snapshot.Snapshot) {
	t.Helper()
	s = cluster(t)
	s.Namespaces = append(s.Namespaces, corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "attacker", Labels: map[string]string{corev1.LabelMetadataName: "attacker"}}})
	s.HAProxy.Spec.NamespaceSelector = &metav1.LabelSelector{}
	steal := tlsContext("steal", 1, v1alpha1.TLSContextSpec{Secret: "some-context-cert.default"})
	steal.Namespace = "attacker"
	s.TLSContexts = []v1alpha1.TLSContext{steal}
	m := mapping("steal", 0, 1, v1alpha1.TCPMappingSpec{Port: 3600, TLS: "steal", Service: "qotm.default"})
	m.Namespace = "attacker"
	vault := mapping("vault", 1, 1, v1alpha1.TCPMappingSpec{Port: 3601, Service: "qotm.default"})
	vault.Namespace = "attacker"
	s.TCPMappings = []*v1alpha1.TCPMapping{&m, &vault}
	return s
}

// TestRefNotPermittedTellsNothingOfTheTarget: whatever the victim's
// certificate holds, the attacker's results carry none of it, and the
// configuration serves neither the certificate nor the Service.
func TestRefNotPermittedTellsNothingOfTheTarget(t *testing.T) {
	for name, mutate := range map[string]func(*snapshot.Snapshot){
		"no grant":                  func(*snapshot.Snapshot) {},
		"no ReferenceGrant CRD":     func(s *snapshot.Snapshot) { s.NoReferenceGrantCRD = true },
		"grants, but no CRD to say": func(s *snapshot.Snapshot) { s.NoReferenceGrantCRD = true; s.ReferenceGrants = everyGrant() },
		"accepted before, grant revoked": func(s *snapshot.Snapshot) {
			// Last known good keeps a certificate serving when its Secret
			// breaks; never when consent is withdrawn.
			s.TLSContexts[0].Status.LastAccepted = &v1alpha1.AcceptedTLSContext{Generation: 1, Spec: s.TLSContexts[0].Spec}
			s.TCPMappings[0].Status.LastAccepted = &v1alpha1.AcceptedTCPMapping{Generation: 1, Spec: s.TCPMappings[0].Spec}
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := theft(t)
			mutate(&s)
			res := translate.Translate(s)
			for _, m := range res.Mappings {
				if m.ResolvedRefs.Reason != v1alpha1.ReasonRefNotPermitted || m.Programmable() {
					t.Errorf("mapping %s: ResolvedRefs %+v, programmable %v", m.Name, m.ResolvedRefs, m.Programmable())
				}
			}
			c := findContext(t, res, "steal")
			if c.ResolvedRefs.Reason != v1alpha1.ReasonRefNotPermitted || c.NotAfter != nil || len(c.DNSNames) > 0 {
				t.Errorf("TLSContext: %+v", c)
			}
			if len(res.Config.Certificates) > 0 || len(res.Config.Frontends) > 0 || len(res.Config.Backends) > 0 {
				t.Errorf("configuration serves something: %d certificates, %d frontends, %d backends",
					len(res.Config.Certificates), len(res.Config.Frontends), len(res.Config.Backends))
			}
			out, _ := yaml.Marshal(res)
			for _, leak := range []string{"qotm.example.com", "2126", "endpoint", "port 80"} {
				if strings.Contains(string(out), leak) {
					t.Errorf("result carries %q of the target", leak)
				}
			}
			if names := translate.SecretNames(s); slices.Contains(names, "default/some-context-cert") {
				t.Errorf("SecretNames lists the ungranted Secret: %v", names)
			}
			wantHAProxy := v1alpha1.ReasonReferenceGrantsRead
			if s.NoReferenceGrantCRD {
				wantHAProxy = v1alpha1.ReasonCRDNotInstalled
				if !strings.Contains(res.Mappings[0].ResolvedRefs.Message, "no ReferenceGrant CRD") {
					t.Errorf("mapping message does not say the CRD is missing: %q", res.Mappings[0].ResolvedRefs.Message)
				}
			}
			if res.ReferenceGrants.Reason != wantHAProxy {
				t.Errorf("ReferenceGrants condition %+v, want reason %s", res.ReferenceGrants, wantHAProxy)
			}
		})
	}
}

// everyGrant is default consenting to everything attacker names.
func everyGrant() []gatewayv1beta1.ReferenceGrant {
	return []gatewayv1beta1.ReferenceGrant{
		grant("default", "TLSContext", "attacker", "", "Secret", "some-context-cert"),
		grant("default", "TCPMapping", "attacker", "", "Service", "qotm"),
	}
}

func TestConsentLetsTheReferencesThrough(t *testing.T) {
	for name, mutate := range map[string]func(*snapshot.Snapshot){
		"grants in the target namespace": func(s *snapshot.Snapshot) { s.ReferenceGrants = everyGrant() },
		"AllowAll without any grant":     func(s *snapshot.Snapshot) { s.HAProxy.Spec.CrossNamespaceReferences = v1alpha1.CrossNamespaceAllowAll },
		"AllowAll without the CRD": func(s *snapshot.Snapshot) {
			s.HAProxy.Spec.CrossNamespaceReferences = v1alpha1.CrossNamespaceAllowAll
			s.NoReferenceGrantCRD = true
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := theft(t)
			mutate(&s)
			res := translate.Translate(s)
			for _, m := range res.Mappings {
				if !m.Programmable() {
					t.Errorf("mapping %s: Accepted %+v, ResolvedRefs %+v", m.Name, m.Accepted, m.ResolvedRefs)
				}
			}
			if c := findContext(t, res, "steal"); !c.ResolvedRefs.Status || c.NotAfter == nil {
				t.Errorf("TLSContext: %+v", c)
			}
			if len(res.Config.Certificates) != 1 {
				t.Errorf("%d certificates, want the granted one", len(res.Config.Certificates))
			}
			if !res.ReferenceGrants.Status {
				t.Errorf("ReferenceGrants condition %+v", res.ReferenceGrants)
			}
			if names := translate.SecretNames(s); !slices.Contains(names, "default/some-context-cert") {
				t.Errorf("SecretNames leaves out the granted Secret: %v", names)
			}
		})
	}
}

// TestGrantsOfATargetNamespaceAreADependency: the translation names the
// namespaces whose grants it consulted, so a grant there wakes it.
func TestGrantsOfATargetNamespaceAreADependency(t *testing.T) {
	res := translate.Translate(theft(t))
	if !slices.Contains(res.References, translate.RefReferenceGrant+"/default/"+translate.AnyGrant) {
		t.Errorf("References %v lack the grants of namespace default", res.References)
	}
	if slices.Contains(res.References, translate.RefSecret+"/default/some-context-cert") {
		t.Errorf("References %v name the ungranted Secret", res.References)
	}
}

func TestNamespacesNamedBySpecs(t *testing.T) {
	m := mapping("m", 0, 2, v1alpha1.TCPMappingSpec{Service: "https://db.data.svc.cluster.local:5432", TLS: "site.certs"})
	m.Status.LastAccepted = &v1alpha1.AcceptedTCPMapping{Generation: 1, Spec: v1alpha1.TCPMappingSpec{Service: "qotm.other:8080"}}
	if got, want := translate.MappingNamespaces(&m), []string{"certs", "data", "other"}; !slices.Equal(sorted(got), want) {
		t.Errorf("MappingNamespaces = %v, want %v", got, want)
	}
	local := mapping("l", 0, 1, v1alpha1.TCPMappingSpec{Service: "qotm", TLS: "site"})
	for _, svc := range []string{"qotm.default", "10.0.0.1:80", "[2001:db8::1]:80", "db.example.com:443"} {
		local.Spec.Service = svc
		if got := translate.MappingNamespaces(&local); len(got) > 0 {
			t.Errorf("service %s: MappingNamespaces = %v, want none", svc, got)
		}
	}
	c := tlsContext("c", 2, v1alpha1.TLSContextSpec{Secret: "cert.secrets", CASecret: "ca"})
	c.Status.LastAccepted = &v1alpha1.AcceptedTLSContext{Generation: 1, Spec: v1alpha1.TLSContextSpec{Secret: "cert", CASecret: "ca.cas"}}
	if got, want := translate.ContextNamespaces(&c), []string{"cas", "secrets"}; !slices.Equal(sorted(got), want) {
		t.Errorf("ContextNamespaces = %v, want %v", got, want)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
