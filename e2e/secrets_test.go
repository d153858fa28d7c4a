package e2e

import (
	"bytes"
	"os"
	"strings"
	"testing"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// TestNoKeyMaterialLeaks drives the certificate error paths (a key that
// does not match its certificate) and the happy path, then searches the
// operator's log, the events and every status for the private keys.
func TestNoKeyMaterialLeaks(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	serviceWithBackend(t, ns, "app")
	good := tlsSecret(t, ns, "good", "good.example")
	mismatched := certData(t, "bad.example")
	mismatched["tls.key"] = certData(t, "other.example")["tls.key"]
	bad := tlsSecret(t, ns, "bad", "placeholder.example")
	bad.Data = mismatched
	if err := cluster.client.Update(ctxFor(t), bad); err != nil {
		t.Fatal(err)
	}
	create(t, tlsContext(ns, "good", "good"), tlsContext(ns, "bad", "bad"),
		mapping(ns, "good", v1alpha1.TCPMappingSpec{Port: 3400, TLS: "good", Service: "app"}),
		mapping(ns, "bad", v1alpha1.TCPMappingSpec{Port: 3401, TLS: "bad", Service: "app"}),
	)
	condition(t, ns, "good", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	c := condition(t, ns, "bad", v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonInvalidCertificate {
		t.Errorf("bad: %s: %s, want InvalidCertificate", c.Reason, c.Message)
	}
	routesTo(t, addr(ip, 3400), "good.example", "app")

	// The base64 body lines of each private key.
	var keyLines []string
	for _, d := range [][]byte{good.Data["tls.key"], mismatched["tls.key"]} {
		for _, l := range strings.Split(string(d), "\n") {
			if len(l) > 20 && !strings.HasPrefix(l, "-----") {
				keyLines = append(keyLines, l)
			}
		}
	}
	var haystack bytes.Buffer
	log, err := os.ReadFile(bed.opLog)
	if err != nil {
		t.Fatal(err)
	}
	haystack.Write(log)
	var events eventsv1.EventList
	if err := cluster.client.List(ctxFor(t), &events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		haystack.WriteString(e.Note + "\n")
	}
	var mappings v1alpha1.TCPMappingList
	if err := cluster.client.List(ctxFor(t), &mappings, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, m := range mappings.Items {
		for _, c := range m.Status.Conditions {
			haystack.WriteString(c.Message + "\n")
		}
	}
	var contexts v1alpha1.TLSContextList
	if err := cluster.client.List(ctxFor(t), &contexts, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, c := range contexts.Items {
		for _, cond := range c.Status.Conditions {
			haystack.WriteString(cond.Message + "\n")
		}
	}
	if len(events.Items) == 0 {
		t.Error("no events to search: the rejection should have one")
	}
	for _, l := range keyLines {
		if strings.Contains(haystack.String(), l) {
			t.Fatalf("private key material found in the operator's log, events or status")
		}
	}
	if strings.Contains(haystack.String(), "PRIVATE KEY") {
		t.Error("a PEM private key header appears in the operator's log, events or status")
	}
}
