package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestCRDsAreEstablished(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{
		"tcpmappings.haproxy-operator.io",
		"tlscontexts.haproxy-operator.io",
		"haproxies.haproxy-operator.io",
	} {
		var crd apiextensionsv1.CustomResourceDefinition
		c, err := client.New(cluster.cfg, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := apiextensionsv1.AddToScheme(c.Scheme()); err != nil {
			t.Fatal(err)
		}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
			t.Fatalf("CRD %s: %v", name, err)
		}
		established := false
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				established = true
			}
		}
		if !established {
			t.Errorf("CRD %s is not established: %+v", name, crd.Status.Conditions)
		}
	}
}

// TestSeedSamplesAreAccepted applies deploy/samples/ (every example of the
// seed in this API's form) with kubectl and reads each mapping back.
func TestSeedSamplesAreAccepted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, errOut, err := kubectl(ctx, "", "apply", "-f", "../deploy/samples/")
	if err != nil {
		t.Fatalf("kubectl apply -f deploy/samples/: %v\n%s%s", err, out, errOut)
	}
	got, errOut, err := kubectl(ctx, "", "get", "tcpm", "-n", "default", "-o", "name")
	if err != nil {
		t.Fatalf("kubectl get tcpm: %v\n%s", err, errOut)
	}
	for _, name := range []string{"qotm-mapping", "quote-mapping", "quote-mapping-https", "quote-mapping-1", "quote-mapping-2"} {
		if !strings.Contains(got, "tcpmapping.haproxy-operator.io/"+name+"\n") {
			t.Errorf("TCPMapping %s missing after apply; got:\n%s", name, got)
		}
	}
	// The printer columns a user sees.
	table, errOut, err := kubectl(ctx, "", "get", "tcpm", "-n", "default")
	if err != nil {
		t.Fatalf("kubectl get tcpm: %v\n%s", err, errOut)
	}
	header := strings.Fields(strings.SplitN(table, "\n", 2)[0])
	want := []string{"NAME", "PORT", "HOST", "SERVICE", "WEIGHT", "TLS", "ACCEPTED", "PROGRAMMED", "AGE"}
	if strings.Join(header, " ") != strings.Join(want, " ") {
		t.Errorf("kubectl get tcpm columns = %v, want %v", header, want)
	}
}

// refusedNamingTheField applies yaml with kubectl (server-side dry run,
// so every admission step runs and nothing is stored) and fails t unless
// the API server refuses it with a message holding each of want.
func refusedNamingTheField(t *testing.T, yaml string, want ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, errOut, err := kubectl(ctx, yaml, "apply", "--dry-run=server", "-f", "-")
	if err == nil {
		t.Fatalf("kubectl apply accepted it:\n%s\n%s", yaml, out)
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			t.Errorf("error lacks %q:\n%s", w, errOut)
		}
	}
}

// TestBadInputIsRefusedNamingTheField applies invalid resources with
// kubectl; the API server must refuse each with a message naming the field.
func TestBadInputIsRefusedNamingTheField(t *testing.T) {
	mapping := func(spec string) string {
		return "apiVersion: haproxy-operator.io/v1alpha1\nkind: TCPMapping\nmetadata:\n  name: bad\n  namespace: default\nspec:\n" + spec
	}
	tlsContext := func(spec string) string {
		return "apiVersion: haproxy-operator.io/v1alpha1\nkind: TLSContext\nmetadata:\n  name: bad\n  namespace: default\nspec:\n" + spec
	}
	haproxy := func(spec string) string {
		return "apiVersion: haproxy-operator.io/v1alpha1\nkind: HAProxy\nmetadata:\n  name: bad\n  namespace: default\nspec:\n" + spec
	}
	tests := map[string]struct {
		yaml string
		want []string
	}{
		"a public stats page with credentials": {
			haproxy("  stats:\n    public: true\n    authSecret: creds\n"),
			[]string{"spec.stats", "a public stats page takes no authSecret"},
		},
		"an external instance over plain HTTP": {
			haproxy("  externalInstances:\n  - name: vm-1\n    url: http://192.0.2.10:5555\n    credentialsSecret: creds\n"),
			[]string{"spec.externalInstances[0].url", "https://"},
		},
		"a handshake bound that is no duration": {
			haproxy("  timeouts:\n    handshake: soon\n"),
			[]string{"spec.timeouts.handshake"},
		},
		"a cipher list smuggled into one name": {
			tlsContext("  secret: cert\n  cipherSuites: [\"AES128-SHA:ALL\"]\n"),
			[]string{"spec.cipherSuites[0]"},
		},
		"port 0": {
			mapping("  port: 0\n  service: qotm\n"),
			[]string{"spec.port", "greater than or equal to 1"},
		},
		"port 70000": {
			mapping("  port: 70000\n  service: qotm\n"),
			[]string{"spec.port", "less than or equal to 65535"},
		},
		"weight 150": {
			mapping("  port: 2222\n  service: qotm\n  weight: 150\n"),
			[]string{"spec.weight", "less than or equal to 100"},
		},
		"a host with a newline": {
			mapping("  port: 2222\n  service: qotm\n  tls: ctx\n  host: \"host1\\n    bind :80\"\n"),
			[]string{"spec.host", "host must be a lowercase DNS name"},
		},
		"a host that is no DNS name": {
			mapping("  port: 2222\n  service: qotm\n  tls: ctx\n  host: \"not a host!\"\n"),
			[]string{"spec.host", "host must be a lowercase DNS name"},
		},
		"a service with a path": {
			mapping("  port: 2222\n  service: qotm/path\n"),
			[]string{"spec.service", "no path"},
		},
		"a service with another scheme": {
			mapping("  port: 2222\n  service: tcp://qotm\n"),
			[]string{"spec.service", "scheme http or https"},
		},
		"a service port over 65535": {
			mapping("  port: 2222\n  service: qotm:99999\n"),
			[]string{"spec.service", "service port must be between 1 and 65535"},
		},
		"an address that is no IP": {
			mapping("  port: 2222\n  service: qotm\n  address: example.com\n"),
			[]string{"spec.address", "IPv4 or IPv6"},
		},
		"a missing port": {
			mapping("  service: qotm\n"),
			[]string{"spec.port", "Required"},
		},
		"both IP families off": {
			mapping("  port: 2222\n  service: qotm\n  enableIPv4: false\n  enableIPv6: false\n"),
			[]string{"spec", "cannot both be false"},
		},
		"an unknown TLS version": {
			tlsContext("  secret: cert\n  minTLSVersion: v1.4\n"),
			[]string{"spec.minTLSVersion", "Unsupported value", "v1.4"},
		},
		"a minimum version above the maximum": {
			tlsContext("  secret: cert\n  minTLSVersion: v1.3\n  maxTLSVersion: v1.2\n"),
			[]string{"spec", "minTLSVersion must not be above maxTLSVersion"},
		},
		"certRequired without a CA": {
			tlsContext("  secret: cert\n  certRequired: true\n"),
			[]string{"spec", "certRequired needs caSecret"},
		},
		"an ALPN protocol with a space": {
			tlsContext("  secret: cert\n  alpnProtocols: [\"h2 crt /etc/passwd\"]\n"),
			[]string{"spec.alpnProtocols[0]", "should match"},
		},
		"a cipher with a newline": {
			tlsContext("  secret: cert\n  cipherSuites: [\"AES128\\nbind :1\"]\n"),
			[]string{"spec.cipherSuites[0]", "should match"},
		},
		"a secret reference with a slash": {
			tlsContext("  secret: ns/cert\n"),
			[]string{"spec.secret", "name or name.namespace"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { refusedNamingTheField(t, tc.yaml, tc.want...) })
	}
}
