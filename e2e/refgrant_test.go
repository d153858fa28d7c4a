package e2e

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// referenceGrant lets objects of fromKind (group haproxy-operator.io) in
// namespace from reference objects of toGroup/toKind (toName, or every
// name when empty) in namespace ns.
func referenceGrant(ns, name, fromKind, from, toGroup, toKind, toName string) *gatewayv1beta1.ReferenceGrant {
	to := gatewayv1beta1.ReferenceGrantTo{Group: gatewayv1.Group(toGroup), Kind: gatewayv1.Kind(toKind)}
	if toName != "" {
		to.Name = ptr.To(gatewayv1.ObjectName(toName))
	}
	return &gatewayv1beta1.ReferenceGrant{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: gatewayv1beta1.ReferenceGrantSpec{
			From: []gatewayv1beta1.ReferenceGrantFrom{{Group: gatewayv1.Group(v1alpha1.GroupVersion.Group), Kind: gatewayv1.Kind(fromKind), Namespace: gatewayv1.Namespace(from)}},
			To:   []gatewayv1beta1.ReferenceGrantTo{to},
		},
	}
}

// heist is the theft: namespace attacker names victim's
// certificate Secret (through its TLSContext steal) and Service vault.
type heist struct {
	attacker, victim, ip string
	// notAfter is the victim certificate's expiry as the operator would
	// print it.
	notAfter string
}

func newHeist(t *testing.T, mutate ...func(*v1alpha1.HAProxy)) heist {
	t.Helper()
	group := "refgrant-" + strconv.FormatInt(time.Now().UnixNano()%1000000, 10)
	h := heist{
		attacker: newNamespace(t, map[string]string{"group": group}),
		victim:   newNamespace(t, map[string]string{"group": group}),
	}
	serve := func(hap *v1alpha1.HAProxy) {
		hap.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"group": group}}
	}
	h.ip = newHAProxy(t, h.attacker, 1, append([]func(*v1alpha1.HAProxy){serve}, mutate...)...)[0]
	cert := tlsSecret(t, h.victim, "bank-cert", "bank.example")
	block, _ := pem.Decode(cert.Data["tls.crt"])
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	h.notAfter = leaf.NotAfter.UTC().Format(time.RFC3339)
	serviceWithBackend(t, h.victim, "vault")
	serviceWithBackend(t, h.attacker, "evil")
	create(t,
		tlsContext(h.attacker, "steal", "bank-cert."+h.victim),
		mapping(h.attacker, "steal", v1alpha1.TCPMappingSpec{Port: 3600, TLS: "steal", Service: "evil"}),
		mapping(h.attacker, "vault", v1alpha1.TCPMappingSpec{Port: 3601, Service: "vault." + h.victim}),
		// The attacker's own mapping: once it runs, the configuration
		// the others are judged by is on the instance.
		mapping(h.attacker, "own", v1alpha1.TCPMappingSpec{Port: 3602, Service: "evil"}),
	)
	return h
}

// refused waits until the attacker's mappings and TLSContext are refused
// with RefNotPermitted, then checks that the ports serve neither the
// victim's certificate nor its Service, and that nothing of the victim's
// certificate or Service reached the attacker's status, events or the
// operator's log.
func (h heist) refused(t *testing.T) {
	t.Helper()
	for _, name := range []string{"steal", "vault"} {
		c := condition(t, h.attacker, name, v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse)
		if c.Reason != v1alpha1.ReasonRefNotPermitted {
			t.Errorf("TCPMapping %s: ResolvedRefs reason %s, want %s (%s)", name, c.Reason, v1alpha1.ReasonRefNotPermitted, c.Message)
		}
	}
	eventually(t, time.Minute, "TLSContext steal refused without certificate details", func() error {
		var ctx v1alpha1.TLSContext
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: h.attacker, Name: "steal"}, &ctx); err != nil {
			return err
		}
		c := meta.FindStatusCondition(ctx.Status.Conditions, v1alpha1.ConditionResolvedRefs)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonRefNotPermitted || ctx.Status.NotAfter != nil || len(ctx.Status.DNSNames) > 0 {
			return fmt.Errorf("status %+v", ctx.Status)
		}
		return nil
	})
	condition(t, h.attacker, "own", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(h.ip, 3602), "", "evil")

	for port, sni := range map[int32]string{3600: "bank.example", 3601: ""} {
		eventually(t, 30*time.Second, fmt.Sprintf("port %d serves nothing of the victim", port), func() error {
			name, subject, err := greeting(addr(h.ip, port), sni)
			if err == nil || subject == "bank.example" || name == "vault" {
				return fmt.Errorf("port %d answered: backend %q, certificate %q, %v", port, name, subject, err)
			}
			return nil
		})
	}
	h.tellsNothing(t)
}

// tellsNothing searches the attacker's statuses and events and the
// operator's log for anything of the victim's certificate or Service.
func (h heist) tellsNothing(t *testing.T) {
	t.Helper()
	var haystack bytes.Buffer
	var mappings v1alpha1.TCPMappingList
	if err := cluster.client.List(ctxFor(t), &mappings, client.InNamespace(h.attacker)); err != nil {
		t.Fatal(err)
	}
	for _, m := range mappings.Items {
		fmt.Fprintf(&haystack, "%+v\n", m.Status)
	}
	var contexts v1alpha1.TLSContextList
	if err := cluster.client.List(ctxFor(t), &contexts, client.InNamespace(h.attacker)); err != nil {
		t.Fatal(err)
	}
	for _, c := range contexts.Items {
		fmt.Fprintf(&haystack, "%+v\n", c.Status)
	}
	var events eventsv1.EventList
	if err := cluster.client.List(ctxFor(t), &events, client.InNamespace(h.attacker)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		haystack.WriteString(e.Reason + ": " + e.Note + "\n")
	}
	log, err := os.ReadFile(bed.opLog)
	if err != nil {
		t.Fatal(err)
	}
	haystack.Write(log)
	vault := "Service " + h.victim + "/vault"
	for _, leak := range []string{"bank.example", h.notAfter, vault + " port", vault + " has"} {
		if strings.Contains(haystack.String(), leak) {
			t.Errorf("the attacker's status, events or the operator's log carry %q of the victim", leak)
		}
	}
}

// works waits until the theft goes through: the victim's certificate is
// served on the attacker's port and its Service answers.
func (h heist) works(t *testing.T) {
	t.Helper()
	for _, name := range []string{"steal", "vault"} {
		condition(t, h.attacker, name, v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	}
	if subject := routesTo(t, addr(h.ip, 3600), "bank.example", "evil"); subject != "bank.example" {
		t.Errorf("port 3600 presents %q, want the granted certificate bank.example", subject)
	}
	routesTo(t, addr(h.ip, 3601), "", "vault")
}

func haproxyCondition(t *testing.T, ns, typ string) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	eventually(t, time.Minute, fmt.Sprintf("HAProxy %s/edge has %s", ns, typ), func() error {
		var hap v1alpha1.HAProxy
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "edge"}, &hap); err != nil {
			return err
		}
		c := meta.FindStatusCondition(hap.Status.Conditions, typ)
		if c == nil {
			return fmt.Errorf("conditions %+v", hap.Status.Conditions)
		}
		got = *c
		return nil
	})
	return got
}

// TestCrossNamespaceTheftNeedsAReferenceGrant is the first item:
// refused without consent, served once the victim grants it, refused
// again when the grant is deleted; the mappings are never touched.
func TestCrossNamespaceTheftNeedsAReferenceGrant(t *testing.T) {
	h := newHeist(t)
	h.refused(t)
	if c := haproxyCondition(t, h.attacker, v1alpha1.ConditionReferenceGrants); c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonReferenceGrantsRead {
		t.Errorf("HAProxy ReferenceGrants condition %+v", c)
	}
	// A grant in the attacker's own namespace counts for nothing.
	create(t, referenceGrant(h.attacker, "self-service", "TLSContext", h.attacker, "", "Secret", ""))

	grants := []*gatewayv1beta1.ReferenceGrant{
		referenceGrant(h.victim, "bank-cert-for-attacker", "TLSContext", h.attacker, "", "Secret", "bank-cert"),
		referenceGrant(h.victim, "vault-for-attacker", "TCPMapping", h.attacker, "", "Service", "vault"),
	}
	start := time.Now()
	create(t, grants[0], grants[1])
	h.works(t)
	t.Logf("granted: traffic and certificate after %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	for _, g := range grants {
		deleteObject(t, g)
	}
	h.refused(t)
	t.Logf("revoked: refused after %s", time.Since(start).Round(time.Millisecond))
}

// TestAllowAllHonoursCrossNamespaceReferences: an HAProxy whose policy is
// AllowAll keeps Ambassador's free name.namespace references.
func TestAllowAllHonoursCrossNamespaceReferences(t *testing.T) {
	h := newHeist(t, func(hap *v1alpha1.HAProxy) {
		hap.Spec.CrossNamespaceReferences = v1alpha1.CrossNamespaceAllowAll
	})
	h.works(t)
	if c := haproxyCondition(t, h.attacker, v1alpha1.ConditionReferenceGrants); c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonAllowAll {
		t.Errorf("HAProxy ReferenceGrants condition %+v", c)
	}
}

// TestOperatorRunsWithoutTheReferenceGrantCRD starts a second API server
// that has this project's CRDs but not Gateway API's, installs the
// operator there from deploy/default and runs it as its ServiceAccount:
// it starts, refuses references into other namespaces with
// RefNotPermitted, says in the HAProxy's status that the CRD is missing,
// and an HAProxy whose policy is AllowAll still honours them.
func TestOperatorRunsWithoutTheReferenceGrantCRD(t *testing.T) {
	env, cfg := secondAPIServer(t)
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{Scheme: cluster.client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := env.AddUser(envtest.User{Name: "nocrd-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	adminKubeconfig := filepath.Join(dir, "admin.kubeconfig")
	if err := os.WriteFile(adminKubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	install := exec.Command(kubectlBinary(), "--kubeconfig", adminKubeconfig, "apply", "-k", "../deploy/default")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply -k deploy/default: %v\n%s", err, out)
	}
	// The operator's ServiceAccount, as in the shared harness.
	opConfig, err := clientcmd.Load(kc)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range opConfig.AuthInfos {
		ai.Impersonate = "system:serviceaccount:" + operatorNamespace + ":" + operatorServiceAccount
		ai.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + operatorNamespace, "system:authenticated"}
	}
	opKubeconfig := filepath.Join(dir, "operator.kubeconfig")
	if err := clientcmd.WriteToFile(*opConfig, opKubeconfig); err != nil {
		t.Fatal(err)
	}
	metrics, err := freeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	probes, err := freeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "operator.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	// Later flags win: this run's own metrics and probe ports.
	args := append(append([]string{}, bed.operatorArgs...), "--metrics-bind-address="+metrics, "--health-probe-bind-address="+probes, "--kubeconfig", opKubeconfig)
	op := exec.Command(bed.binary, args...)
	op.Env = append(os.Environ(), bed.operatorEnv...)
	op.Stdout, op.Stderr = logFile, logFile
	if err := op.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- op.Wait() }()
	t.Cleanup(func() {
		_ = op.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = op.Process.Kill()
			<-exited
		}
	})

	ctx := ctxFor(t)
	for _, ns := range []string{"tenant", "open", "victim"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []client.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "vault", Namespace: "victim"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "tenant"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}},
		&v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "tenant"}, Spec: v1alpha1.HAProxySpec{ServiceType: corev1.ServiceTypeClusterIP}},
		&v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "open"}, Spec: v1alpha1.HAProxySpec{ServiceType: corev1.ServiceTypeClusterIP, CrossNamespaceReferences: v1alpha1.CrossNamespaceAllowAll}},
		mapping("tenant", "vault", v1alpha1.TCPMappingSpec{Port: 3601, Service: "vault.victim"}),
		mapping("tenant", "own", v1alpha1.TCPMappingSpec{Port: 3602, Service: "app"}),
		mapping("open", "vault", v1alpha1.TCPMappingSpec{Port: 3601, Service: "vault.victim"}),
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}

	resolved := func(ns, name string) metav1.Condition {
		var got metav1.Condition
		eventually(t, time.Minute, fmt.Sprintf("TCPMapping %s/%s has ResolvedRefs", ns, name), func() error {
			var m v1alpha1.TCPMapping
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &m); err != nil {
				return err
			}
			cond := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionResolvedRefs)
			if cond == nil {
				return fmt.Errorf("conditions %+v", m.Status.Conditions)
			}
			got = *cond
			return nil
		})
		return got
	}
	if got := resolved("tenant", "vault"); got.Reason != v1alpha1.ReasonRefNotPermitted || !strings.Contains(got.Message, "no ReferenceGrant CRD") {
		t.Errorf("tenant/vault: ResolvedRefs %s %s: %s", got.Status, got.Reason, got.Message)
	}
	if got := resolved("tenant", "own"); got.Status != metav1.ConditionTrue {
		t.Errorf("tenant/own: ResolvedRefs %s %s: %s", got.Status, got.Reason, got.Message)
	}
	if got := resolved("open", "vault"); got.Status != metav1.ConditionTrue {
		t.Errorf("open/vault under AllowAll: ResolvedRefs %s %s: %s", got.Status, got.Reason, got.Message)
	}
	var hap v1alpha1.HAProxy
	eventually(t, time.Minute, "HAProxy tenant/edge says the CRD is missing", func() error {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "tenant", Name: "edge"}, &hap); err != nil {
			return err
		}
		cond := meta.FindStatusCondition(hap.Status.Conditions, v1alpha1.ConditionReferenceGrants)
		if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != v1alpha1.ReasonCRDNotInstalled ||
			!strings.Contains(cond.Message, "referencegrants.gateway.networking.k8s.io") {
			return fmt.Errorf("conditions %+v", hap.Status.Conditions)
		}
		return nil
	})
	select {
	case err := <-exited:
		t.Fatalf("the operator exited: %v", err)
	default:
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "ReferenceGrant CRD is not installed") {
		t.Errorf("the operator's log does not say the CRD is missing:\n%s", log)
	}
}

func kubectlBinary() string {
	if bin := os.Getenv("KUBECTL"); bin != "" {
		return bin
	}
	return "kubectl"
}

// TestConvertedCrossNamespaceReferencesWork: Ambassador input that names
// a Service and a Secret of other namespaces converts into resources and
// the ReferenceGrants they need; applied as they are, traffic flows.
func TestConvertedCrossNamespaceReferencesWork(t *testing.T) {
	ns := newNamespace(t, nil)
	services := newNamespace(t, nil)
	certs := newNamespace(t, nil)
	ip := newHAProxy(t, ns, 1)[0]
	service(t, services, "qotm", map[string]int32{"": 80})
	publish(t, services, "qotm", "", backend(t, "qotm-elsewhere", ""))
	tlsSecret(t, certs, "site-cert", "convert.example")
	in := fmt.Sprintf(`apiVersion: ambassador/v1
kind: TLSContext
name: site
secret: site-cert.%s
---
apiVersion: ambassador/v1
kind: TCPMapping
name: quote_mapping
port: 2224
tls: site
service: qotm.%s
`, certs, services)
	ctx := ctxFor(t)
	cmd := exec.CommandContext(ctx, bed.binary, "convert", "--namespace", ns)
	cmd.Stdin = strings.NewReader(in)
	var out, notes bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &notes
	if err := cmd.Run(); err != nil {
		t.Fatalf("convert: %v\n%s", err, notes.String())
	}
	for _, want := range []string{"ReferenceGrant " + services + "/", "ReferenceGrant " + certs + "/"} {
		if !strings.Contains(notes.String(), want) {
			t.Errorf("the notes do not mention %q:\n%s", want, notes.String())
		}
	}
	if _, errOut, err := kubectl(ctx, out.String(), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply of the converted output: %v\n%s\n%s", err, errOut, out.String())
	}
	condition(t, ns, "quote-mapping", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	if subject := routesTo(t, addr(ip, 2224), "convert.example", "qotm-elsewhere"); subject != "convert.example" {
		t.Errorf("port 2224 presents %q, want convert.example", subject)
	}
}
