package controller

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// ReasonNameConflict: an object the HAProxy would own already exists and
// belongs to someone else; the operator leaves it untouched.
const ReasonNameConflict = "NameConflict"

// nameConflictError says that an object the HAProxy needs exists and is
// not the HAProxy's: the operator never writes or deletes it.
type nameConflictError struct {
	kind string
	key  string
}

func (e *nameConflictError) Error() string {
	return fmt.Sprintf("%s %s already exists and is not owned by this HAProxy; the operator leaves it untouched: rename or remove it", e.kind, e.key)
}

// owns reports whether hap is the controller of o.
func owns(hap *v1alpha1.HAProxy, o metav1.Object) bool {
	return metav1.IsControlledBy(o, hap)
}

// createOrUpdateOwned is CreateOrUpdate that refuses to touch an object
// hap does not control.
func (r *HAProxyReconciler) createOrUpdateOwned(ctx context.Context, hap *v1alpha1.HAProxy, kind string, obj client.Object, mutate func() error) error {
	result, err := controllerutil.CreateOrUpdate(ctx, r.Client, obj, func() error {
		if obj.GetResourceVersion() != "" && !owns(hap, obj) {
			return &nameConflictError{kind: kind, key: klogRef(obj)}
		}
		return mutate()
	})
	if apierrors.IsAlreadyExists(err) {
		// The cache sees only the objects the operator labels: an object
		// it cannot see but the API server has is someone else's.
		return &nameConflictError{kind: kind, key: klogRef(obj)}
	}
	if err != nil {
		var conflict *nameConflictError
		if errors.As(err, &conflict) {
			return conflict
		}
		return fmt.Errorf("apply %s %s: %w", kind, klogRef(obj), err)
	}
	if _, isService := obj.(*corev1.Service); isService && result != controllerutil.OperationResultNone {
		r.serviceWrites.wrote(obj)
	}
	return nil
}

// deleteOwned deletes obj only when hap controls it, and only the very
// object that was checked.
func (r *HAProxyReconciler) deleteOwned(ctx context.Context, hap *v1alpha1.HAProxy, reader client.Reader, obj client.Object) error {
	if err := reader.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !owns(hap, obj) {
		return nil
	}
	uid := obj.GetUID()
	err := r.Client.Delete(ctx, obj, client.Preconditions{UID: &uid}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %T %s: %w", obj, klogRef(obj), err)
	}
	return nil
}

// ensureCredentials returns the Data Plane API credentials: from the
// user's Secret when the HAProxy names one (read, never written), else
// from a Secret the operator generates and owns.
func (r *HAProxyReconciler) ensureCredentials(ctx context.Context, hap *v1alpha1.HAProxy) ([2]string, error) {
	var s corev1.Secret
	key := client.ObjectKey{Namespace: hap.Namespace, Name: credentialsName(hap)}
	generated := hap.Spec.DataPlaneAPI.CredentialsSecret == ""
	err := r.secretReader().Get(ctx, key, &s)
	switch {
	case apierrors.IsNotFound(err) && generated:
		created, err := newCredentials(hap)
		if err != nil {
			return [2]string{}, err
		}
		if err := r.Client.Create(ctx, created); err != nil && !apierrors.IsAlreadyExists(err) {
			return [2]string{}, fmt.Errorf("create Secret %s: %w", key, err)
		}
		if err := r.APIReader.Get(ctx, key, &s); err != nil {
			return [2]string{}, fmt.Errorf("get Secret %s: %w", key, err)
		}
	case err != nil:
		return [2]string{}, fmt.Errorf("get Data Plane API credentials %s: %w", key, err)
	}
	if generated && !owns(hap, &s) {
		return [2]string{}, &nameConflictError{kind: "Secret", key: key.String()}
	}
	user, pass := string(s.Data["username"]), string(s.Data["password"])
	if user == "" || pass == "" {
		return [2]string{}, fmt.Errorf("Secret %s needs username and password", key)
	}
	return [2]string{user, pass}, nil
}

// ensureOwned creates or updates the Deployment, Service and PDB, and
// never touches a same-named object that is not the HAProxy's.
func (r *HAProxyReconciler) ensureOwned(ctx context.Context, hap *v1alpha1.HAProxy, res translate.Result) error {
	if external(hap) {
		// The instances run elsewhere: nothing to run or expose here, and
		// what an earlier spec made goes.
		for _, o := range []struct {
			obj    client.Object
			reader client.Reader
		}{
			{&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: ownedName(hap), Namespace: hap.Namespace}}, r.APIReader},
			{&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: ownedName(hap), Namespace: hap.Namespace}}, r.Client},
			{&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: statsServiceName(hap), Namespace: hap.Namespace}}, r.Client},
			{&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: ownedName(hap), Namespace: hap.Namespace}}, r.APIReader},
			{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: caSecretName(hap), Namespace: hap.Namespace}}, r.APIReader},
			{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ownedName(hap) + "-dataplane-tls", Namespace: hap.Namespace}}, r.APIReader},
		} {
			if err := r.deleteOwned(ctx, hap, o.reader, o.obj); err != nil {
				return err
			}
		}
		return nil
	}
	// The certificate the instances mount exists before they start.
	if err := r.ensureAPICertificate(ctx, hap); err != nil {
		return err
	}
	key := types.NamespacedName{Namespace: hap.Namespace, Name: hap.Name}
	seen := ownedState{inputs: ownedInputs(hap, r.InstanceImage, res)}
	if seen.versions = r.ownedVersions(ctx, hap); seen.versions != "" {
		if last, ok := r.ownedSeen.Load(key); ok && last.(ownedState) == seen {
			return nil
		}
	}
	r.ownedSeen.Delete(key)
	want := desiredDeployment(hap, r.InstanceImage)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
	if err := r.createOrUpdateOwned(ctx, hap, "Deployment", dep, func() error {
		dep.Labels, dep.OwnerReferences = want.Labels, want.OwnerReferences
		// Keep the API server's defaults; own only what we set.
		dep.Spec.Replicas, dep.Spec.Selector, dep.Spec.Strategy = want.Spec.Replicas, want.Spec.Selector, want.Spec.Strategy
		if !equality.Semantic.DeepDerivative(want.Spec.Template, dep.Spec.Template) {
			dep.Spec.Template = want.Spec.Template
		}
		return nil
	}); err != nil {
		return err
	}

	svcWant := desiredService(hap, res)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: ownedName(hap), Namespace: hap.Namespace}}
	if svcWant == nil {
		if err := r.deleteOwned(ctx, hap, r.Client, svc); err != nil {
			return err
		}
	} else if err := r.createOrUpdateOwned(ctx, hap, "Service", svc, func() error {
		svc.Labels, svc.OwnerReferences = svcWant.Labels, svcWant.OwnerReferences
		svc.Spec.Type, svc.Spec.Selector = svcWant.Spec.Type, svcWant.Spec.Selector
		// Keep node ports the API server assigned to ports that stay.
		nodePorts := map[int32]int32{}
		for _, p := range svc.Spec.Ports {
			nodePorts[p.Port] = p.NodePort
		}
		svc.Spec.Ports = svcWant.Spec.Ports
		for i := range svc.Spec.Ports {
			svc.Spec.Ports[i].NodePort = nodePorts[svc.Spec.Ports[i].Port]
		}
		return nil
	}); err != nil {
		return err
	}

	statsWant := desiredStatsService(hap, res)
	stats := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: statsServiceName(hap), Namespace: hap.Namespace}}
	if statsWant == nil {
		if err := r.deleteOwned(ctx, hap, r.Client, stats); err != nil {
			return err
		}
	} else if err := r.createOrUpdateOwned(ctx, hap, "Service", stats, func() error {
		stats.Labels, stats.OwnerReferences = statsWant.Labels, statsWant.OwnerReferences
		stats.Spec.Type, stats.Spec.Selector = statsWant.Spec.Type, statsWant.Spec.Selector
		nodePort := int32(0)
		if len(stats.Spec.Ports) == 1 && stats.Spec.Ports[0].Port == statsWant.Spec.Ports[0].Port {
			nodePort = stats.Spec.Ports[0].NodePort
		}
		stats.Spec.Ports = statsWant.Spec.Ports
		stats.Spec.Ports[0].NodePort = nodePort
		return nil
	}); err != nil {
		return err
	}

	pdbWant := desiredPDB(hap)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: ownedName(hap), Namespace: hap.Namespace}}
	if pdbWant == nil {
		if err := r.deleteOwned(ctx, hap, r.APIReader, pdb); err != nil {
			return err
		}
	} else if err := r.createOrUpdateOwned(ctx, hap, "PodDisruptionBudget", pdb, func() error {
		pdb.Labels, pdb.OwnerReferences, pdb.Spec = pdbWant.Labels, pdbWant.OwnerReferences, pdbWant.Spec
		return nil
	}); err != nil {
		return err
	}
	// The versions the writes left: once the cache has them, the next
	// reconcile with the same inputs has nothing to do here.
	seen.versions = ownedVersionsOf(dep, existing(svcWant != nil, svc), existing(statsWant != nil, stats), existing(pdbWant != nil, pdb))
	r.ownedSeen.Store(key, seen)
	return nil
}

// ownedState is what ensureOwned last made sure of: the inputs the owned
// objects are made from, and the versions they had then. While both
// stand, the objects are right: comparing a Service with 5,000 ports on
// every weight change costs tens of milliseconds for nothing.
type ownedState struct {
	inputs   string
	versions string
}

// ownedInputs is everything the owned objects are made from: the
// HAProxy's identity and spec, the instance image, the ports served and
// the stats port.
func ownedInputs(hap *v1alpha1.HAProxy, image string, res translate.Result) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s %d %s;", hap.UID, hap.Namespace, hap.Name, hap.Generation, image)
	for _, fe := range res.Config.Frontends {
		if fe.Bind.Socket == "" {
			fmt.Fprintf(h, "%d,", fe.Bind.Port)
		}
	}
	if st := res.Config.Stats; st != nil {
		fmt.Fprintf(h, ";stats %d", st.Port)
	}
	return string(h.Sum(nil))
}

// ownedVersions are the cached versions of the objects ensureOwned
// makes, or "" when one cannot be read.
func (r *HAProxyReconciler) ownedVersions(ctx context.Context, hap *v1alpha1.HAProxy) string {
	objs := []client.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: ownedName(hap), Namespace: hap.Namespace}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: ownedName(hap), Namespace: hap.Namespace}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: statsServiceName(hap), Namespace: hap.Namespace}},
		&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: ownedName(hap), Namespace: hap.Namespace}},
	}
	for i, o := range objs {
		if v, found, ok := r.owned.version(o); ok {
			if !found {
				objs[i] = nil
			}
			o.SetResourceVersion(v)
			continue
		}
		err := r.Client.Get(ctx, client.ObjectKeyFromObject(o), o)
		if apierrors.IsNotFound(err) {
			objs[i] = nil
		} else if err != nil {
			return ""
		}
	}
	return ownedVersionsOf(objs...)
}

// existing is o when it was made (wanted), nil when it was deleted.
func existing(wanted bool, o client.Object) client.Object {
	if !wanted {
		return nil
	}
	return o
}

// ownedVersionsOf spells the versions of objs, "-" for one that does not
// exist (nil).
func ownedVersionsOf(objs ...client.Object) string {
	versions := make([]string, len(objs))
	for i, o := range objs {
		versions[i] = "-"
		if o != nil {
			versions[i] = o.GetResourceVersion()
		}
	}
	return strings.Join(versions, " ")
}

// ensureStatsSecret creates the generated stats page credentials when the
// HAProxy needs them, and returns the Secret's name; "" when it does not.
func (r *HAProxyReconciler) ensureStatsSecret(ctx context.Context, hap *v1alpha1.HAProxy) (string, error) {
	if !generatedStatsAuth(hap) {
		return "", nil
	}
	name := statsSecretName(hap)
	var s corev1.Secret
	err := r.secretReader().Get(ctx, client.ObjectKey{Namespace: hap.Namespace, Name: name}, &s)
	if apierrors.IsNotFound(err) {
		created, err := generatedSecret(hap, name, "admin")
		if err != nil {
			return "", err
		}
		if err := r.Client.Create(ctx, created); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("create Secret %s/%s: %w", hap.Namespace, name, err)
		}
		if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: hap.Namespace, Name: name}, &s); err != nil {
			return "", fmt.Errorf("get Secret %s/%s: %w", hap.Namespace, name, err)
		}
	} else if err != nil {
		return "", fmt.Errorf("get Secret %s/%s: %w", hap.Namespace, name, err)
	}
	if !owns(hap, &s) {
		return "", &nameConflictError{kind: "Secret", key: hap.Namespace + "/" + name}
	}
	return name, nil
}

// reportNameConflict sets Ready=False, reason NameConflict, on the HAProxy.
func (r *HAProxyReconciler) reportNameConflict(ctx context.Context, hap *v1alpha1.HAProxy, conflict *nameConflictError) error {
	log.FromContext(ctx).Info("Not touching an object the HAProxy does not own", "object", conflict.key, "kind", conflict.kind)
	return updateStatus(ctx, r, hap.DeepCopy(), func(o *v1alpha1.HAProxy) bool {
		st := *o.Status.DeepCopy()
		st.ObservedGeneration = o.Generation
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonNameConflict,
			Message: conflict.Error(), ObservedGeneration: o.Generation,
		})
		if equality.Semantic.DeepEqual(o.Status, st) {
			return false
		}
		o.Status = st
		return true
	})
}

// cleanup deletes what the HAProxy owned, and nothing else, then lets it
// go.
func (r *HAProxyReconciler) cleanup(ctx context.Context, hap *v1alpha1.HAProxy) error {
	log.FromContext(ctx).Info("Removing what the HAProxy owned")
	name := types.NamespacedName{Namespace: hap.Namespace, Name: ownedName(hap)}
	owned := []struct {
		obj    client.Object
		reader client.Reader
	}{
		{&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name.Name, Namespace: name.Namespace}}, r.APIReader},
		{&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name.Name, Namespace: name.Namespace}}, r.Client},
		{&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: statsServiceName(hap), Namespace: name.Namespace}}, r.Client},
		{&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name.Name, Namespace: name.Namespace}}, r.APIReader},
		{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: statsSecretName(hap), Namespace: name.Namespace}}, r.APIReader},
		{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: caSecretName(hap), Namespace: name.Namespace}}, r.APIReader},
		// By its own name, not apiTLSSecretName: a user's Secret named in
		// the spec is never deleted (and never owned, so deleteOwned
		// would leave it anyway).
		{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ownedName(hap) + "-dataplane-tls", Namespace: name.Namespace}}, r.APIReader},
	}
	if hap.Spec.DataPlaneAPI.CredentialsSecret == "" {
		owned = append(owned, struct {
			obj    client.Object
			reader client.Reader
		}{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: credentialsName(hap), Namespace: hap.Namespace}}, r.APIReader})
	}
	for _, o := range owned {
		if err := r.deleteOwned(ctx, hap, o.reader, o.obj); err != nil {
			return err
		}
	}
	// A status write still under way would put back what releasing
	// removes.
	r.closeStatusQueue(types.NamespacedName{Namespace: hap.Namespace, Name: hap.Name})
	if err := r.releaseObjects(ctx, hap); err != nil {
		return fmt.Errorf("release the objects HAProxy %s served: %w", klogRef(hap), err)
	}
	if controllerutil.RemoveFinalizer(hap, Finalizer) {
		if err := r.Client.Update(ctx, hap); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove finalizer: %w", err)
		}
	}
	return nil
}
