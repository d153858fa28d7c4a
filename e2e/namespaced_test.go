package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/controller"
)

// namespacedInstall writes the kustomization the README gives for an
// operator in namespace opNS serving only the namespaces served: the
// shipped deploy/namespaced/operator there with WATCH_NAMESPACE set, and
// the shipped deploy/namespaced/served Role in each served namespace. It
// returns its folder.
func namespacedInstall(t *testing.T, opNS string, served ...string) string {
	t.Helper()
	dir := t.TempDir()
	deploy, err := filepath.Abs("../deploy/namespaced")
	if err != nil {
		t.Fatal(err)
	}
	// kustomize takes bases by relative path only.
	rel := func(from, to string) string {
		r, err := filepath.Rel(from, to)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	write := func(sub, content string) {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, sub, "kustomization.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	top := "resources:\n  - operator\n"
	write("operator", fmt.Sprintf(`namespace: %s
resources:
  - %s
patches:
  - target: {kind: Deployment, name: haproxy-tcp-operator}
    patch: '[{"op": "add", "path": "/spec/template/spec/containers/0/env/-", "value": {"name": "WATCH_NAMESPACE", "value": "%s"}}]'
`, opNS, rel(filepath.Join(dir, "operator"), filepath.Join(deploy, "operator")), strings.Join(served, ",")))
	for _, ns := range served {
		write(ns, fmt.Sprintf(`namespace: %s
resources:
  - %s
patches:
  - target: {kind: RoleBinding, name: haproxy-tcp-operator}
    patch: '[{"op": "replace", "path": "/subjects/0/namespace", "value": "%s"}]'
`, ns, rel(filepath.Join(dir, ns), filepath.Join(deploy, "served")), opNS))
		top += "  - " + ns + "\n"
	}
	write("", top)
	return dir
}

// serviceAccountConfig is a kubeconfig file acting as ServiceAccount
// name in ns, with the groups the API server gives ServiceAccounts.
func serviceAccountConfig(t *testing.T, ns, name string) string {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(cluster.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range kc.AuthInfos {
		ai.Impersonate = "system:serviceaccount:" + ns + ":" + name
		ai.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// startOperatorAs runs the operator binary with the flags and environment
// of Deployment dep, as the ServiceAccount kubeconfig names, until the
// test ends. It returns the operator's log file.
func startOperatorAs(t *testing.T, dep *appsv1.Deployment, kubeconfig string) string {
	t.Helper()
	c := dep.Spec.Template.Spec.Containers[0]
	metrics, err := freeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	probes, err := freeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, c.Args...), "--metrics-bind-address="+metrics, "--health-probe-bind-address="+probes, "--kubeconfig", kubeconfig)
	env := os.Environ()
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			// The downward API, for the fields the Pod would have.
			path := ""
			if e.ValueFrom.FieldRef != nil {
				path = e.ValueFrom.FieldRef.FieldPath
			}
			if path == "metadata.namespace" {
				v = dep.Namespace
			} else if a, ok := strings.CutPrefix(path, "metadata.annotations['"); ok && strings.HasSuffix(a, "']") {
				v = dep.Spec.Template.Annotations[strings.TrimSuffix(a, "']")]
			} else {
				t.Fatalf("env %s: cannot resolve %+v here", e.Name, e.ValueFrom)
			}
		}
		env = append(env, e.Name+"="+v)
	}
	logPath := filepath.Join(t.TempDir(), "operator.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bed.binary, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done); logFile.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("namespaced operator log:\n%s", b)
			}
		}
	})
	return logPath
}

// installNamespaced applies namespacedInstall with kubectl; it returns a
// client acting as the operator's ServiceAccount, the operator
// Deployment and a kubeconfig file for the ServiceAccount.
func installNamespaced(t *testing.T, opNS string, served ...string) (client.Client, *appsv1.Deployment, string) {
	t.Helper()
	dir := namespacedInstall(t, opNS, served...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, errOut, err := kubectl(ctx, "", "apply", "-k", dir); err != nil {
		t.Fatalf("kubectl apply -k (deploy/namespaced): %v\n%s%s", err, out, errOut)
	}
	var dep appsv1.Deployment
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: opNS, Name: "haproxy-tcp-operator"}, &dep); err != nil {
		t.Fatal(err)
	}
	kubeconfig := serviceAccountConfig(t, opNS, dep.Spec.Template.Spec.ServiceAccountName)
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	asOperator, err := client.New(cfg, client.Options{Scheme: cluster.client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return asOperator, &dep, kubeconfig
}

// pauseClusterOperator stops the cluster-wide operator of the other
// tests, which would serve a namespaced install's namespaces too, until
// the test ends.
func pauseClusterOperator(t *testing.T) {
	t.Helper()
	stopOperatorProcess()
	t.Cleanup(func() {
		if err := runOperator(); err != nil {
			t.Errorf("restart the cluster-wide operator: %v", err)
		}
	})
}

// TestNamespacedInstallWithRolesOnly installs the operator as OLM's
// SingleNamespace mode does, from the shipped deploy/namespaced: its
// ServiceAccount is bound to the shipped Role in one served namespace
// and to its leader election Role, and to nothing cluster-wide. An
// HAProxy, a TLSContext with its Secret and a TCPMapping there become
// Programmed and carry traffic; the same objects in another namespace
// are left alone; and the API server denies the operator every write to
// a Secret it does not own.
func TestNamespacedInstallWithRolesOnly(t *testing.T) {
	opNS := newNamespace(t, nil)
	served := newNamespace(t, nil)
	other := newNamespace(t, nil)

	asOperator, dep, kubeconfig := installNamespaced(t, opNS, served)

	// The ServiceAccount holds nothing cluster-wide: what the operator
	// does below, it does with the Roles.
	for what, err := range map[string]error{
		"list Namespaces":                     asOperator.List(ctxFor(t), &corev1.NamespaceList{}),
		"list Secrets in every namespace":     asOperator.List(ctxFor(t), &corev1.SecretList{}),
		"list HAProxies in another namespace": asOperator.List(ctxFor(t), &v1alpha1.HAProxyList{}, client.InNamespace(other)),
		"get another Namespace":               asOperator.Get(ctxFor(t), client.ObjectKey{Name: other}, &corev1.Namespace{}),
	} {
		if !apierrors.IsForbidden(err) {
			t.Errorf("the ServiceAccount may %s (%v); want Forbidden", what, err)
		}
	}

	pauseClusterOperator(t)
	// Objects in a namespace the operator does not serve, there before it
	// starts.
	create(t,
		&v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: other}, Spec: v1alpha1.HAProxySpec{Replicas: ptr.To(int32(1)), ServiceType: corev1.ServiceTypeClusterIP}},
		mapping(other, "ignored", v1alpha1.TCPMappingSpec{Port: 3900, Service: "app"}),
	)
	t.Cleanup(func() {
		// Nobody holds a finalizer on it: it goes at once.
		_ = cluster.client.Delete(context.Background(), &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: other}})
	})
	opLog := startOperatorAs(t, dep, kubeconfig)

	ip := newHAProxy(t, served, 1)[0]
	serviceWithBackend(t, served, "app")
	tlsSecret(t, served, "cert", "served.example")
	create(t, tlsContext(served, "tls", "cert"),
		mapping(served, "plain", v1alpha1.TCPMappingSpec{Port: 3900, Service: "app"}),
		mapping(served, "secure", v1alpha1.TCPMappingSpec{Port: 3901, TLS: "tls", Service: "app"}),
	)
	condition(t, served, "plain", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	condition(t, served, "secure", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	contextCondition(t, served, "tls", v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue)
	routesTo(t, addr(ip, 3900), "", "app")
	if subject := routesTo(t, addr(ip, 3901), "served.example", "app"); subject != "served.example" {
		t.Errorf("port 3901 presents %q, want the served.example certificate", subject)
	}
	eventually(t, time.Minute, "HAProxy Programmed", func() error {
		var h v1alpha1.HAProxy
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: served, Name: "edge"}, &h); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(h.Status.Conditions, v1alpha1.ConditionProgrammed) {
			return fmt.Errorf("conditions %+v", h.Status.Conditions)
		}
		return nil
	})

	// The other namespace: no status, no finalizer, nothing created.
	var h v1alpha1.HAProxy
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: other, Name: "edge"}, &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Finalizers) > 0 || len(h.Status.Conditions) > 0 {
		t.Errorf("the operator touched HAProxy %s/edge: finalizers %v, conditions %+v", other, h.Finalizers, h.Status.Conditions)
	}
	if m := getMapping(t, other, "ignored"); len(m.Status.Conditions) > 0 || len(m.Status.Parents) > 0 {
		t.Errorf("the operator wrote the status of TCPMapping %s/ignored: %+v", other, m.Status)
	}
	var deps appsv1.DeploymentList
	if err := cluster.client.List(ctxFor(t), &deps, client.InNamespace(other)); err != nil || len(deps.Items) > 0 {
		t.Errorf("Deployments in %s: %d (%v), want none", other, len(deps.Items), err)
	}
	log, err := os.ReadFile(opLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"forbidden", "Forbidden"} {
		if strings.Contains(string(log), bad) {
			t.Errorf("the operator's log has %q: it tried something its Roles do not allow", bad)
		}
	}

	t.Run("Secrets the operator does not own are not its to write", func(t *testing.T) {
		user := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "user-credentials", Namespace: served},
			Data:       map[string][]byte{"password": []byte("the user's")},
		}
		create(t, user)
		// Its own Secrets are labelled, and writing them works: the
		// HAProxy above runs with the credentials the operator created.
		own := &corev1.Secret{}
		if err := asOperator.Get(ctxFor(t), client.ObjectKey{Namespace: served, Name: "haproxy-edge-dataplane"}, own); err != nil {
			t.Fatalf("the operator's own Secret: %v", err)
		}
		if own.Labels[controller.LabelManagedBy] != controller.ManagedBy {
			t.Errorf("the operator's Secret is labelled %v", own.Labels)
		}
		var got corev1.Secret
		if err := asOperator.Get(ctxFor(t), client.ObjectKeyFromObject(user), &got); err != nil {
			t.Fatalf("the operator may not read a Secret in its namespace: %v", err)
		}
		// RBAC gives the operator create and delete on Secrets, which the
		// admission policy limits to its own; verbs RBAC does not give
		// (update, patch) may be refused by either.
		deniedByPolicy := func(what string, err error) {
			t.Helper()
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "haproxy-tcp-operator-owned-secrets") {
				t.Errorf("%s as the operator: %v; want Forbidden by the admission policy", what, err)
			}
		}
		denied := func(what string, err error) {
			t.Helper()
			if !apierrors.IsForbidden(err) {
				t.Errorf("%s as the operator: %v; want Forbidden", what, err)
			}
		}
		update := got.DeepCopy()
		update.Data["password"] = []byte("the operator's")
		denied("update a user's Secret", asOperator.Update(ctxFor(t), update))
		adopt := got.DeepCopy()
		adopt.Labels = map[string]string{controller.LabelManagedBy: controller.ManagedBy}
		denied("label a user's Secret as the operator's", asOperator.Update(ctxFor(t), adopt))
		denied("patch a user's Secret", asOperator.Patch(ctxFor(t), got.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(`{"data":{"password":"eA=="}}`))))
		deniedByPolicy("delete a user's Secret", asOperator.Delete(ctxFor(t), got.DeepCopy()))
		deniedByPolicy("create an unlabelled Secret", asOperator.Create(ctxFor(t), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "unlabelled", Namespace: served}}))
		// The policy holds for the cluster-wide install's ServiceAccount
		// too, whose ClusterRole grants the same verbs.
		wide, err := clientcmd.BuildConfigFromFlags("", serviceAccountConfig(t, operatorNamespace, operatorServiceAccount))
		if err != nil {
			t.Fatal(err)
		}
		asWide, err := client.New(wide, client.Options{Scheme: cluster.client.Scheme()})
		if err != nil {
			t.Fatal(err)
		}
		deniedByPolicy("delete a user's Secret (cluster-wide install)", asWide.Delete(ctxFor(t), got.DeepCopy()))
		deniedByPolicy("create an unlabelled Secret (cluster-wide install)", asWide.Create(ctxFor(t), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "unlabelled", Namespace: other}}))
		var after corev1.Secret
		if err := cluster.client.Get(ctxFor(t), client.ObjectKeyFromObject(user), &after); err != nil || string(after.Data["password"]) != "the user's" || len(after.Labels) > 0 {
			t.Errorf("the user's Secret changed: %v %v", after.Labels, err)
		}
		// What the operator labels as its own, it may write.
		mine := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "labelled", Namespace: served, Labels: map[string]string{controller.LabelManagedBy: controller.ManagedBy}}}
		if err := asOperator.Create(ctxFor(t), mine); err != nil {
			t.Errorf("create a labelled Secret as the operator: %v", err)
		} else if err := asOperator.Delete(ctxFor(t), mine); err != nil {
			t.Errorf("delete a labelled Secret as the operator: %v", err)
		}
	})

	t.Run("deleting the HAProxy removes what it owned", func(t *testing.T) {
		deleteObject(t, &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: served}})
		eventually(t, time.Minute, "HAProxy and its Secrets gone", func() error {
			var h v1alpha1.HAProxy
			if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: served, Name: "edge"}, &h); !apierrors.IsNotFound(err) {
				return fmt.Errorf("HAProxy: %v, finalizers %v", err, h.Finalizers)
			}
			var s corev1.Secret
			if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: served, Name: "haproxy-edge-dataplane"}, &s); !apierrors.IsNotFound(err) {
				return fmt.Errorf("credentials Secret: %v", err)
			}
			return nil
		})
	})
}

// TestNamespacedInstallSelectsAmongServedNamespaces runs the operator as
// OLM's MultiNamespace mode does, for two namespaces: an HAProxy in one
// serves, through its namespace selector, the mappings of the other,
// reading that namespace's labels with nothing but the Role there; a
// third namespace with the same labels is not served and never touched,
// and the HAProxy says how its selector is evaluated. Relabelling a
// served namespace takes its mappings off the HAProxy.
func TestNamespacedInstallSelectsAmongServedNamespaces(t *testing.T) {
	opNS := newNamespace(t, nil)
	home := newNamespace(t, map[string]string{"tier": "edge"})
	team := newNamespace(t, map[string]string{"tier": "edge"})
	unserved := newNamespace(t, map[string]string{"tier": "edge"})
	_, dep, kubeconfig := installNamespaced(t, opNS, home, team)
	pauseClusterOperator(t)
	create(t, mapping(unserved, "unserved", v1alpha1.TCPMappingSpec{Port: 3911, Service: "app"}))
	startOperatorAs(t, dep, kubeconfig)

	ip := newHAProxy(t, home, 1, func(h *v1alpha1.HAProxy) {
		h.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "edge"}}
	})[0]
	serviceWithBackend(t, team, "app")
	create(t, mapping(team, "team", v1alpha1.TCPMappingSpec{Port: 3910, Service: "app"}))
	condition(t, team, "team", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 3910), "", "app")
	eventually(t, time.Minute, "the HAProxy says how its selector is evaluated", func() error {
		var h v1alpha1.HAProxy
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: home, Name: "edge"}, &h); err != nil {
			return err
		}
		c := meta.FindStatusCondition(h.Status.Conditions, controller.ConditionNamespaceSelectorsResolved)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != controller.ReasonServedNamespacesOnly {
			return fmt.Errorf("conditions %+v", h.Status.Conditions)
		}
		return nil
	})
	if m := getMapping(t, unserved, "unserved"); len(m.Status.Conditions) > 0 || len(m.Status.Parents) > 0 {
		t.Errorf("the operator wrote the status of a mapping in a namespace it does not serve: %+v", m.Status)
	}
	if _, _, err := greeting(addr(ip, 3911), ""); err == nil {
		t.Error("port 3911 of the unserved namespace's mapping answers")
	}

	// Namespaces are polled, not watched: a relabelling shows within
	// a poll period.
	var ns corev1.Namespace
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Name: team}, &ns); err != nil {
		t.Fatal(err)
	}
	ns.Labels["tier"] = "internal"
	if err := cluster.client.Update(ctxFor(t), &ns); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the relabelled namespace's mapping leaves the HAProxy", func() error {
		if got, _, err := greeting(addr(ip, 3910), ""); err == nil {
			return fmt.Errorf("port 3910 still reaches %q", got)
		}
		return nil
	})
	// The HAProxy goes while its operator runs, so its finalizer does.
	deleteObject(t, &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: home}})
	eventually(t, time.Minute, "HAProxy gone", func() error {
		err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: home, Name: "edge"}, &v1alpha1.HAProxy{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
}

// TestNamespacedInstallAsOLMDoes installs the operator from the OLM
// bundle as OLM does in SingleNamespace mode: the CSV's permissions as
// Roles in the operator's namespace and in the target namespace, its
// clusterPermissions (none) as ClusterRoles, its Deployment with the
// olm.targetNamespaces annotation. The operator serves the target
// namespace end to end.
func TestNamespacedInstallAsOLMDoes(t *testing.T) {
	b, err := os.ReadFile("../deploy/bundle/manifests/haproxy-tcp-operator.clusterserviceversion.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var csv operatorsv1alpha1.ClusterServiceVersion
	if err := yaml.Unmarshal(b, &csv); err != nil {
		t.Fatal(err)
	}
	supported := map[operatorsv1alpha1.InstallModeType]bool{}
	for _, m := range csv.Spec.InstallModes {
		supported[m.Type] = m.Supported
	}
	if !supported[operatorsv1alpha1.InstallModeTypeSingleNamespace] {
		t.Fatal("the CSV does not offer SingleNamespace")
	}
	strategy := csv.Spec.InstallStrategy.StrategySpec
	if len(strategy.ClusterPermissions) > 0 {
		t.Errorf("the CSV asks for ClusterRoles in every install mode: %v", strategy.ClusterPermissions)
	}
	opNS := newNamespace(t, nil)
	target := newNamespace(t, nil)
	other := newNamespace(t, nil)
	for _, p := range strategy.Permissions {
		create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: p.ServiceAccountName, Namespace: opNS}})
		for _, ns := range []string{opNS, target} {
			create(t,
				&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "csv-permissions", Namespace: ns}, Rules: p.Rules},
				&rbacv1.RoleBinding{
					ObjectMeta: metav1.ObjectMeta{Name: "csv-permissions", Namespace: ns},
					RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "csv-permissions"},
					Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: p.ServiceAccountName, Namespace: opNS}},
				})
		}
	}
	spec := strategy.DeploymentSpecs[0]
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: spec.Name, Namespace: opNS}, Spec: spec.Spec}
	dep.Spec.Template.Annotations = map[string]string{"olm.targetNamespaces": target}
	kubeconfig := serviceAccountConfig(t, opNS, dep.Spec.Template.Spec.ServiceAccountName)

	pauseClusterOperator(t)
	create(t, mapping(other, "ignored", v1alpha1.TCPMappingSpec{Port: 3920, Service: "app"}))
	startOperatorAs(t, dep, kubeconfig)
	ip := newHAProxy(t, target, 1)[0]
	serviceWithBackend(t, target, "app")
	create(t, mapping(target, "app", v1alpha1.TCPMappingSpec{Port: 3920, Service: "app"}))
	condition(t, target, "app", v1alpha1.ConditionProgrammed, metav1.ConditionTrue)
	routesTo(t, addr(ip, 3920), "", "app")
	if m := getMapping(t, other, "ignored"); len(m.Status.Conditions) > 0 || len(m.Status.Parents) > 0 {
		t.Errorf("the operator wrote the status of a mapping outside its target namespace: %+v", m.Status)
	}
	deleteObject(t, &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: target}})
	eventually(t, time.Minute, "HAProxy gone", func() error {
		err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: target, Name: "edge"}, &v1alpha1.HAProxy{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
}
