package controller

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

// Labels on everything an HAProxy owns.
const (
	LabelHAProxy   = "haproxy-operator.io/haproxy"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "haproxy-tcp-operator"
	// ContainerName is the instance container: HAProxy and the dataplane.
	ContainerName = "haproxy"
	// Paths inside an instance.
	ConfigDir = "/var/lib/haproxy-tcp"
	RunDir    = "/var/run/haproxy-tcp"
	CertDir   = "/etc/haproxy-tcp/certs"
)

// ownedName is the name of the Deployment, Service and PDB of an HAProxy.
func ownedName(hap *v1alpha1.HAProxy) string { return "haproxy-" + hap.Name }

// credentialsName is the Secret holding the Data Plane API credentials.
func credentialsName(hap *v1alpha1.HAProxy) string {
	if hap.Spec.DataPlaneAPI.CredentialsSecret != "" {
		return hap.Spec.DataPlaneAPI.CredentialsSecret
	}
	return ownedName(hap) + "-dataplane"
}

// InstancePodLabels are the labels on the instance Pods of hap; the
// NetworkPolicy in deploy/networkpolicy selects Pods by them.
func InstancePodLabels(hap *v1alpha1.HAProxy) map[string]string { return podLabels(hap) }

func podLabels(hap *v1alpha1.HAProxy) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":     "haproxy",
		"app.kubernetes.io/instance": hap.Name,
		LabelManagedBy:               ManagedBy,
		LabelHAProxy:                 hap.Name,
	}
}

func selectorLabels(hap *v1alpha1.HAProxy) map[string]string {
	return map[string]string{LabelHAProxy: hap.Name, LabelManagedBy: ManagedBy}
}

func ownerRef(hap *v1alpha1.HAProxy) metav1.OwnerReference {
	return *metav1.NewControllerRef(hap, v1alpha1.GroupVersion.WithKind("HAProxy"))
}

func objectMeta(hap *v1alpha1.HAProxy, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: hap.Namespace, Labels: podLabels(hap),
		OwnerReferences: []metav1.OwnerReference{ownerRef(hap)},
	}
}

func dataPlanePort(hap *v1alpha1.HAProxy) int32 {
	if p := hap.Spec.DataPlaneAPI.Port; p != 0 {
		return p
	}
	return translate.DefaultDataPlanePort
}

func newCredentials(hap *v1alpha1.HAProxy) (*corev1.Secret, error) {
	return generatedSecret(hap, credentialsName(hap), "operator")
}

// statsSecretName is the Secret of the generated stats page credentials.
func statsSecretName(hap *v1alpha1.HAProxy) string { return ownedName(hap) + "-stats" }

// statsService is the Service of the stats page and /metrics.
func statsServiceName(hap *v1alpha1.HAProxy) string { return ownedName(hap) + "-stats" }

// generatedStatsAuth reports whether the operator generates the stats
// page's credentials: the page is served, neither public nor given a
// Secret by the user.
func generatedStatsAuth(hap *v1alpha1.HAProxy) bool {
	st := hap.Spec.Stats
	return (st.Enabled == nil || *st.Enabled) && !st.Public && st.AuthSecret == ""
}

// generatedSecret is a Secret the HAProxy owns with a username and a
// random password.
func generatedSecret(hap *v1alpha1.HAProxy, name, user string) (*corev1.Secret, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate the password of Secret %s: %w", name, err)
	}
	return &corev1.Secret{
		ObjectMeta: objectMeta(hap, name),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"username": []byte(user), "password": []byte(hex.EncodeToString(b))},
	}, nil
}

// desiredDeployment runs the instances: the dataplane starts HAProxy in
// master-worker mode and receives its configuration from the operator.
func desiredDeployment(hap *v1alpha1.HAProxy, image string) *appsv1.Deployment {
	if hap.Spec.Image != "" {
		image = hap.Spec.Image
	}
	dp := dataPlanePort(hap)
	secretRef := func(key string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: credentialsName(hap)}, Key: key,
		}}
	}
	resources := corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("100m"),
		corev1.ResourceMemory: resource.MustParse("128Mi"),
	}}
	if hap.Spec.Resources != nil {
		resources = *hap.Spec.Resources
	}
	// The dataplane's /readyz answers only while HAProxy runs the stored
	// configuration with its listeners up; /healthz fails when the
	// dataplane or HAProxy's master is wedged, so the kubelet restarts the
	// instance. Neither needs credentials nor reveals anything.
	// The API speaks only HTTPS; the kubelet does not verify probe
	// certificates.
	probe := func(path string, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(dp), Scheme: corev1.URISchemeHTTPS}},
			PeriodSeconds:    5,
			TimeoutSeconds:   3,
			FailureThreshold: failures,
		}
	}
	emptyDir := func(name string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	}
	ports := []corev1.ContainerPort{{Name: "dataplane", ContainerPort: dp}}
	if st := hap.Spec.Stats; st.Enabled == nil || *st.Enabled {
		port := st.Port
		if port == 0 {
			port = translate.DefaultStatsPort
		}
		ports = append(ports, corev1.ContainerPort{Name: "stats", ContainerPort: port})
	}
	return &appsv1.Deployment{
		ObjectMeta: objectMeta(hap, ownedName(hap)),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(ptr.Deref(hap.Spec.Replicas, 1)),
			Selector: &metav1.LabelSelector{MatchLabels: selectorLabels(hap)},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr.To(intstr.FromInt32(0))},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels(hap)},
				Spec: corev1.PodSpec{
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65532)), FSGroup: ptr.To(int64(65532)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						// Mappings may listen on ports below 1024. The
						// image's file capability on haproxy does not
						// apply under no_new_privs (allowPrivilegeEscalation
						// false), so the Pod's network namespace lets
						// every user bind them; a safe sysctl, allowed
						// by every kubelet.
						Sysctls: []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}},
					},
					TerminationGracePeriodSeconds: ptr.To(int64(60)),
					Containers: []corev1.Container{{
						Name:  ContainerName,
						Image: image,
						Args: []string{
							"dataplane",
							// Only the Pod's own address: the API is
							// not on localhost or other interfaces.
							"--listen=$(POD_IP):" + strconv.Itoa(int(dp)),
							"--tls-cert=" + APITLSDir + "/tls.crt",
							"--tls-key=" + APITLSDir + "/tls.key",
							"--config-dir=" + ConfigDir,
							"--run-dir=" + RunDir,
							"--cert-dir=" + CertDir,
						},
						Env: []corev1.EnvVar{
							{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
							{Name: "DATAPLANE_USER", ValueFrom: secretRef("username")},
							{Name: "DATAPLANE_PASSWORD", ValueFrom: secretRef("password")},
						},
						Ports:          ports,
						Resources:      resources,
						ReadinessProbe: probe("/readyz", 2),
						LivenessProbe:  probe("/healthz", 6),
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities: &corev1.Capabilities{
								Drop: []corev1.Capability{"ALL"},
								// Mappings may listen on ports below 1024.
								Add: []corev1.Capability{"NET_BIND_SERVICE"},
							},
						},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "config", MountPath: ConfigDir},
							{Name: "run", MountPath: RunDir},
							{Name: "certs", MountPath: CertDir},
							{Name: "api-tls", MountPath: APITLSDir, ReadOnly: true},
						},
					}},
					Volumes: []corev1.Volume{emptyDir("config"), emptyDir("run"), emptyDir("certs"), {
						// The kubelet refreshes the files when the Secret
						// changes; the dataplane reads them again.
						Name: "api-tls",
						VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
							SecretName:  apiTLSSecretName(hap),
							Items:       []corev1.KeyToPath{{Key: "tls.crt", Path: "tls.crt"}, {Key: "tls.key", Path: "tls.key"}},
							DefaultMode: ptr.To(int32(0o440)),
						}},
					}},
				},
			},
		},
	}
}

// desiredService exposes the ports of every accepted mapping and the stats
// page; nil when there is nothing to expose.
func desiredService(hap *v1alpha1.HAProxy, res translate.Result) *corev1.Service {
	ports := map[int32]string{}
	for _, fe := range res.Config.Frontends {
		if fe.Bind.Socket == "" {
			ports[fe.Bind.Port] = fmt.Sprintf("tcp-%d", fe.Bind.Port)
		}
	}
	if len(ports) == 0 {
		return nil
	}
	numbers := make([]int32, 0, len(ports))
	for p := range ports {
		numbers = append(numbers, p)
	}
	sort.Slice(numbers, func(i, j int) bool { return numbers[i] < numbers[j] })
	svc := &corev1.Service{
		ObjectMeta: objectMeta(hap, ownedName(hap)),
		Spec: corev1.ServiceSpec{
			Type:     hap.Spec.ServiceType,
			Selector: selectorLabels(hap),
		},
	}
	if svc.Spec.Type == "" {
		svc.Spec.Type = corev1.ServiceTypeLoadBalancer
	}
	for _, p := range numbers {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
			Name: ports[p], Port: p, TargetPort: intstr.FromInt32(p), Protocol: corev1.ProtocolTCP,
		})
	}
	return svc
}

// desiredStatsService exposes the stats page and /metrics on a Service of
// their own, so the mappings' Service type (a LoadBalancer, say) never
// publishes them; nil when the stats page is off.
func desiredStatsService(hap *v1alpha1.HAProxy, res translate.Result) *corev1.Service {
	st := res.Config.Stats
	if st == nil {
		return nil
	}
	svc := &corev1.Service{
		ObjectMeta: objectMeta(hap, statsServiceName(hap)),
		Spec: corev1.ServiceSpec{
			Type:     hap.Spec.Stats.ServiceType,
			Selector: selectorLabels(hap),
			Ports: []corev1.ServicePort{{
				Name: "stats", Port: st.Port, TargetPort: intstr.FromInt32(st.Port), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
	if svc.Spec.Type == "" {
		svc.Spec.Type = corev1.ServiceTypeClusterIP
	}
	return svc
}

// desiredPDB keeps one instance up during voluntary disruptions when there
// is more than one; nil otherwise.
func desiredPDB(hap *v1alpha1.HAProxy) *policyv1.PodDisruptionBudget {
	if ptr.Deref(hap.Spec.Replicas, 1) < 2 {
		return nil
	}
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: objectMeta(hap, ownedName(hap)),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr.To(intstr.FromInt32(1)),
			Selector:     &metav1.LabelSelector{MatchLabels: selectorLabels(hap)},
		},
	}
}
