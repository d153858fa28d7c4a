package e2e

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

func getMapping(t testing.TB, ns, name string) *v1alpha1.TCPMapping {
	t.Helper()
	var m v1alpha1.TCPMapping
	if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: name}, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

func deleteObject(t testing.TB, o client.Object) {
	t.Helper()
	if err := cluster.client.Delete(ctxFor(t), o); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// TestTwoHAProxiesReportSeparately: a mapping two HAProxies select carries
// one status entry for each; once neither serves it, it says so.
func TestTwoHAProxiesReportSeparately(t *testing.T) {
	ns := newNamespace(t, map[string]string{"edge-tier": "shared"})
	ip := newHAProxy(t, ns, 1)[0]
	other := newNamespace(t, nil)
	create(t, &v1alpha1.HAProxy{
		ObjectMeta: metav1.ObjectMeta{Name: "second", Namespace: other},
		Spec: v1alpha1.HAProxySpec{
			Replicas: ptr.To(int32(1)), ServiceType: corev1.ServiceTypeClusterIP,
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"edge-tier": "shared"}},
		},
	})
	otherIP := instanceIPs(t, other, "second", 1)[0]
	serviceWithBackend(t, ns, "app")
	create(t, mapping(ns, "both", v1alpha1.TCPMappingSpec{Port: 3010, Service: "app"}))

	eventually(t, time.Minute, "both HAProxies report Programmed", func() error {
		m := getMapping(t, ns, "both")
		if len(m.Status.Parents) != 2 {
			return fmt.Errorf("parents %+v", m.Status.Parents)
		}
		for _, p := range m.Status.Parents {
			c := meta.FindStatusCondition(p.Conditions, v1alpha1.ConditionProgrammed)
			if c == nil || c.Status != metav1.ConditionTrue {
				return fmt.Errorf("HAProxy %s: %+v", p.HAProxy, c)
			}
		}
		return nil
	})
	routesTo(t, addr(ip, 3010), "", "app")
	routesTo(t, addr(otherIP, 3010), "", "app")
	if c := condition(t, ns, "both", v1alpha1.ConditionProgrammed, metav1.ConditionTrue); c.Reason != v1alpha1.ReasonProgrammed {
		t.Errorf("summed up Programmed: %+v", c)
	}

	deleteObject(t, &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "second", Namespace: other}})
	eventually(t, time.Minute, "the deleted HAProxy's entry is dropped", func() error {
		m := getMapping(t, ns, "both")
		if len(m.Status.Parents) != 1 || m.Status.Parents[0].HAProxy != ns+"/edge" {
			return fmt.Errorf("parents %+v", m.Status.Parents)
		}
		return nil
	})
	deleteObject(t, &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ns}})
	for _, typ := range []string{v1alpha1.ConditionAccepted, v1alpha1.ConditionProgrammed} {
		if c := condition(t, ns, "both", typ, metav1.ConditionFalse); c.Reason != v1alpha1.ReasonNotSelected {
			t.Errorf("with no HAProxy left, %s: %+v", typ, c)
		}
	}

	create(t, mapping(other, "orphan", v1alpha1.TCPMappingSpec{Port: 3011, Service: "app"}))
	if c := condition(t, other, "orphan", v1alpha1.ConditionAccepted, metav1.ConditionFalse); c.Reason != v1alpha1.ReasonNotSelected {
		t.Errorf("a mapping nobody selects: %+v", c)
	}
}

// TestUserObjectsAreNeverTouched: a user's Service and Secret that happen
// to carry the names an HAProxy would give its own are left byte for byte
// as they were, through the HAProxy's creation and deletion.
func TestUserObjectsAreNeverTouched(t *testing.T) {
	ns := newNamespace(t, nil)
	userService := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "haproxy-edge", Namespace: ns, Labels: map[string]string{"team": "mine"}},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, Selector: map[string]string{"app": "mine"},
			Ports: []corev1.ServicePort{{Name: "web", Port: 8080}},
		},
	}
	userSecret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "haproxy-edge-dataplane", Namespace: ns},
		Data:       map[string][]byte{"username": []byte("mine"), "password": []byte("not-yours")},
	}
	create(t, userService, userSecret)
	before := map[string]string{"Service": userService.ResourceVersion, "Secret": userSecret.ResourceVersion}

	create(t, &v1alpha1.HAProxy{
		ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ns},
		Spec:       v1alpha1.HAProxySpec{Replicas: ptr.To(int32(1)), ServiceType: corev1.ServiceTypeClusterIP},
	})
	eventually(t, time.Minute, "the HAProxy reports the name conflict", func() error {
		var hap v1alpha1.HAProxy
		if err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "edge"}, &hap); err != nil {
			return err
		}
		c := meta.FindStatusCondition(hap.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != "NameConflict" {
			return fmt.Errorf("Ready: %+v", c)
		}
		return nil
	})
	deleteObject(t, &v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: ns}})
	eventually(t, time.Minute, "the HAProxy is gone", func() error {
		var hap v1alpha1.HAProxy
		err := cluster.client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "edge"}, &hap)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
	var svc corev1.Service
	if err := cluster.client.Get(ctxFor(t), client.ObjectKeyFromObject(userService), &svc); err != nil {
		t.Fatalf("the user's Service: %v", err)
	}
	var sec corev1.Secret
	if err := cluster.client.Get(ctxFor(t), client.ObjectKeyFromObject(userSecret), &sec); err != nil {
		t.Fatalf("the user's Secret: %v", err)
	}
	if svc.ResourceVersion != before["Service"] || sec.ResourceVersion != before["Secret"] {
		t.Errorf("user objects were written: Service %s→%s, Secret %s→%s", before["Service"], svc.ResourceVersion, before["Secret"], sec.ResourceVersion)
	}
	if len(svc.OwnerReferences) > 0 || svc.Spec.Selector["app"] != "mine" || string(sec.Data["password"]) != "not-yours" {
		t.Errorf("user objects changed: %+v %v", svc.ObjectMeta.OwnerReferences, svc.Spec.Selector)
	}
}
