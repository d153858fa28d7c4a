package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// TestConvertedSeedExamplesRouteTraffic converts each example of the seed
// verbatim with the binary's convert command, applies the output with
// kubectl and sends traffic through it.
func TestConvertedSeedExamplesRouteTraffic(t *testing.T) {
	ns := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	service(t, ns, "qotm", map[string]int32{"tcp": 80, "tls": 443})
	service(t, ns, "qotm1", map[string]int32{"tls": 443})
	service(t, ns, "qotm2", map[string]int32{"tls": 443})
	publish(t, ns, "qotm", "tcp", backend(t, "qotm", ""))
	publish(t, ns, "qotm", "tls", backend(t, "qotm-tls", "qotm.upstream"))
	publish(t, ns, "qotm1", "tls", backend(t, "qotm1", "qotm1.upstream"))
	publish(t, ns, "qotm2", "tls", backend(t, "qotm2", "qotm2.upstream"))
	tlsSecret(t, ns, "some-cert", "some-context.example")
	create(t, tlsContext(ns, "some-context", "some-cert"))

	examples := []struct {
		file     string
		mappings []string
		checks   []struct{ sni, want string }
	}{
		{"seed-relay", []string{"qotm-mapping"}, []struct{ sni, want string }{{"", "qotm"}}},
		{"seed-tls", []string{"quote-mapping"}, []struct{ sni, want string }{{"any", "qotm"}}},
		{"seed-https", []string{"quote-mapping"}, []struct{ sni, want string }{{"any", "qotm-tls"}}},
		{"seed-sni", []string{"quote-mapping-1", "quote-mapping-2"}, []struct{ sni, want string }{{"host1", "qotm1"}, {"host2", "qotm2"}}},
	}
	for _, ex := range examples {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		in, err := os.ReadFile("../operator/convert/testdata/" + ex.file + ".in.yaml")
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, bed.binary, "convert", "--namespace", ns)
		cmd.Stdin = bytes.NewReader(in)
		var out, notes bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &notes
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: convert: %v\n%s", ex.file, err, notes.String())
		}
		if _, errOut, err := kubectl(ctx, out.String(), "apply", "-f", "-"); err != nil {
			t.Fatalf("%s: kubectl apply of the converted output: %v\n%s\n%s", ex.file, err, errOut, out.String())
		}
		for _, m := range ex.mappings {
			condition(t, ns, m, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
		}
		for _, c := range ex.checks {
			routesTo(t, addr(ip, 2222), c.sni, c.want)
		}
		// The examples share port 2222: remove this one before the next.
		if _, errOut, err := kubectl(ctx, out.String(), "delete", "-f", "-"); err != nil {
			t.Fatalf("%s: kubectl delete: %v\n%s", ex.file, err, errOut)
		}
		cancel()
	}
}
