// Package bundlegen builds the OLM bundle (deploy/bundle) from deploy/: the
// ClusterServiceVersion with its install strategy, permissions, owned CRDs
// with descriptors and alm-examples from the samples, the CRDs, the bundle
// annotations and bundle.Dockerfile. make bundle runs it; a test checks the
// committed bundle is current and passes OLM's validators.
package bundlegen

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/api/pkg/lib/version"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

//go:embed icon.svg
var icon []byte

// Package and channel of the bundle.
const (
	Package = "haproxy-tcp-operator"
	Channel = "candidate-v0"
)

const description = `haproxy-tcp-operator runs HAProxy and turns TCPMapping and TLSContext
resources into HAProxy mode tcp configuration, applied through the HAProxy
Data Plane API:

* **TCPMapping** relays TCP connections on a port (and optionally an
  address and an SNI host) to a Kubernetes Service or a DNS name, with
  every attribute of Ambassador/Emissary's TCPMapping: TLS termination,
  re-encryption (https://), SNI routing, TLS passthrough, weighted canary
  backends, idle timeouts and IPv4/IPv6 DNS preferences.
* **TLSContext** takes the certificate from a kubernetes.io/tls Secret,
  with ALPN, TLS versions, ciphers, curves and client certificates.
* **HAProxy** is a set of instances, their Service, stats page and
  Prometheus exporter.

Weight and endpoint changes apply at runtime without a reload; structural
changes reload HAProxy hitlessly. Status conditions (Accepted,
ResolvedRefs, Programmed) say what runs. ` + "`haproxy-tcp-operator convert`" + ` turns
Ambassador YAML into these resources.`

func readYAML(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return yaml.Unmarshal(b, into)
}

// docs splits a YAML stream into documents.
func docs(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, d := range bytes.Split(b, []byte("\n---")) {
		if len(bytes.TrimSpace(d)) > 0 {
			out = append(out, d)
		}
	}
	return out, nil
}

// Generate writes the bundle of the deploy folder root into out, naming
// the images as images says.
func Generate(root, out string, images Images) error {
	var dep appsv1.Deployment
	manager, err := docs(filepath.Join(root, "manager", "manager.yaml"))
	if err != nil {
		return err
	}
	for _, d := range manager {
		var probe metav1.TypeMeta
		if err := yaml.Unmarshal(d, &probe); err == nil && probe.Kind == "Deployment" {
			if err := yaml.Unmarshal(d, &dep); err != nil {
				return err
			}
		}
	}
	if len(dep.Spec.Template.Spec.Containers) == 0 {
		return fmt.Errorf("no operator Deployment in %s", filepath.Join(root, "manager"))
	}
	container := &dep.Spec.Template.Spec.Containers[0]
	instanceArg := -1
	for i, a := range container.Args {
		if strings.HasPrefix(a, "--instance-image=") {
			instanceArg = i
		}
	}
	if instanceArg < 0 {
		return fmt.Errorf("the operator Deployment in %s has no --instance-image flag", filepath.Join(root, "manager"))
	}
	ref, err := parseReference(container.Image)
	if err != nil {
		return fmt.Errorf("operator Deployment: %w", err)
	}
	ver, err := semver.Parse(strings.TrimPrefix(ref.tag, "v"))
	if err != nil {
		return fmt.Errorf("operator image tag %q is no version: %w", ref.tag, err)
	}
	for name := range images.Digests {
		if name != ImageOperator && name != ImageHAProxy {
			return fmt.Errorf("digest for image %q: the bundle's images are %s and %s", name, ImageOperator, ImageHAProxy)
		}
	}
	operatorImage, err := images.resolve(ImageOperator, container.Image)
	if err != nil {
		return err
	}
	instanceImage, err := images.resolve(ImageHAProxy, strings.TrimPrefix(container.Args[instanceArg], "--instance-image="))
	if err != nil {
		return fmt.Errorf("--instance-image: %w", err)
	}
	container.Image = operatorImage
	container.Args[instanceArg] = "--instance-image=" + instanceImage

	var clusterRole rbacv1.ClusterRole
	if err := readYAML(filepath.Join(root, "rbac", "role.yaml"), &clusterRole); err != nil {
		return err
	}
	var leaderRole rbacv1.Role
	leader, err := docs(filepath.Join(root, "rbac", "leader_election_role.yaml"))
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(leader[0], &leaderRole); err != nil {
		return err
	}

	crdFiles, err := filepath.Glob(filepath.Join(root, "crd", "haproxy-operator.io_*.yaml"))
	if err != nil {
		return err
	}
	var owned []operatorsv1alpha1.CRDDescription
	manifests := filepath.Join(out, "manifests")
	if err := os.MkdirAll(manifests, 0o755); err != nil {
		return err
	}
	for _, f := range crdFiles {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := readYAML(f, &crd); err != nil {
			return err
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(manifests, crd.Name+".yaml"), b, 0o644); err != nil {
			return err
		}
		owned = append(owned, describe(crd))
	}
	sort.Slice(owned, func(i, j int) bool { return owned[i].Name < owned[j].Name })

	examples, err := almExamples(filepath.Join(root, "samples"))
	if err != nil {
		return err
	}
	saName := dep.Spec.Template.Spec.ServiceAccountName
	// OLM creates permissions as Roles in the operator's namespace and in
	// each target namespace, or as ClusterRoles in AllNamespaces mode;
	// clusterPermissions always as ClusterRoles. Every rule goes into
	// permissions, so a namespaced install gets Roles only: there the
	// rules a Role cannot grant (list and watch of Namespaces, the token
	// and access reviews of the metrics endpoint) do nothing, and the
	// operator needs none of them; in AllNamespaces mode they are the
	// ClusterRole of deploy/rbac.
	// The operator serves the namespaces of its OperatorGroup; OLM writes
	// them into this annotation of its Pod, empty for all namespaces.
	setEnv(&dep.Spec.Template.Spec.Containers[0], corev1.EnvVar{Name: "WATCH_NAMESPACE", ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['olm.targetNamespaces']"},
	}})
	csv := operatorsv1alpha1.ClusterServiceVersion{
		TypeMeta: metav1.TypeMeta{APIVersion: operatorsv1alpha1.SchemeGroupVersion.String(), Kind: operatorsv1alpha1.ClusterServiceVersionKind},
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s.v%s", Package, ver),
			Annotations: map[string]string{
				"alm-examples":   examples,
				"capabilities":   "Basic Install",
				"categories":     "Networking",
				"containerImage": operatorImage,
				"description":    "Routes TCP and TLS connections through HAProxy from TCPMapping and TLSContext resources.",
				"repository":     "https://github.com/haproxy-tcp-operator/haproxy-tcp-operator",
				"support":        "haproxy-tcp-operator",
				"createdAt":      "2026-11-27T00:00:00Z",
			},
		},
		Spec: operatorsv1alpha1.ClusterServiceVersionSpec{
			DisplayName: "HAProxy TCP Operator",
			Description: description,
			Version:     version.OperatorVersion{Version: ver},
			Maturity:    "alpha",
			// CEL validation rules with isIP need Kubernetes 1.30.
			MinKubeVersion: "1.30.0",
			Keywords:       []string{"haproxy", "tcp", "tls", "sni", "load balancer", "ingress", "ambassador", "emissary"},
			Maintainers:    []operatorsv1alpha1.Maintainer{{Name: "haproxy-tcp-operator maintainers", Email: "maintainers@haproxy-tcp-operator.io"}},
			Provider:       operatorsv1alpha1.AppLink{Name: "haproxy-tcp-operator"},
			Links: []operatorsv1alpha1.AppLink{
				{Name: "Source", URL: "https://github.com/haproxy-tcp-operator/haproxy-tcp-operator"},
			},
			Icon: []operatorsv1alpha1.Icon{{Data: base64.StdEncoding.EncodeToString(icon), MediaType: "image/svg+xml"}},
			InstallModes: []operatorsv1alpha1.InstallMode{
				{Type: operatorsv1alpha1.InstallModeTypeOwnNamespace, Supported: true},
				{Type: operatorsv1alpha1.InstallModeTypeSingleNamespace, Supported: true},
				{Type: operatorsv1alpha1.InstallModeTypeMultiNamespace, Supported: true},
				{Type: operatorsv1alpha1.InstallModeTypeAllNamespaces, Supported: true},
			},
			CustomResourceDefinitions: operatorsv1alpha1.CustomResourceDefinitions{Owned: owned},
			InstallStrategy: operatorsv1alpha1.NamedInstallStrategy{
				StrategyName: operatorsv1alpha1.InstallStrategyNameDeployment,
				StrategySpec: operatorsv1alpha1.StrategyDetailsDeployment{
					DeploymentSpecs: []operatorsv1alpha1.StrategyDeploymentSpec{{Name: dep.Name, Label: dep.Labels, Spec: dep.Spec}},
					Permissions:     []operatorsv1alpha1.StrategyDeploymentPermissions{{ServiceAccountName: saName, Rules: append(clusterRole.Rules, leaderRole.Rules...)}},
				},
			},
			RelatedImages: []operatorsv1alpha1.RelatedImage{
				{Name: ImageOperator, Image: operatorImage},
				{Name: ImageHAProxy, Image: instanceImage},
			},
		},
	}
	b, err := yaml.Marshal(csv)
	if err != nil {
		return err
	}
	b = dropStatus(b)
	if err := os.WriteFile(filepath.Join(manifests, Package+".clusterserviceversion.yaml"), b, 0o644); err != nil {
		return err
	}

	annotations := fmt.Sprintf(`annotations:
  operators.operatorframework.io.bundle.mediatype.v1: registry+v1
  operators.operatorframework.io.bundle.manifests.v1: manifests/
  operators.operatorframework.io.bundle.metadata.v1: metadata/
  operators.operatorframework.io.bundle.package.v1: %s
  operators.operatorframework.io.bundle.channels.v1: %s
  operators.operatorframework.io.bundle.channel.default.v1: %s
`, Package, Channel, Channel)
	if err := os.MkdirAll(filepath.Join(out, "metadata"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "metadata", "annotations.yaml"), []byte(annotations), 0o644); err != nil {
		return err
	}
	dockerfile := fmt.Sprintf(`FROM scratch
LABEL operators.operatorframework.io.bundle.mediatype.v1=registry+v1
LABEL operators.operatorframework.io.bundle.manifests.v1=manifests/
LABEL operators.operatorframework.io.bundle.metadata.v1=metadata/
LABEL operators.operatorframework.io.bundle.package.v1=%s
LABEL operators.operatorframework.io.bundle.channels.v1=%s
LABEL operators.operatorframework.io.bundle.channel.default.v1=%s
COPY manifests /manifests/
COPY metadata /metadata/
`, Package, Channel, Channel)
	return os.WriteFile(filepath.Join(out, "bundle.Dockerfile"), []byte(dockerfile), 0o644)
}

// setEnv sets one environment variable of c, replacing one of that name.
func setEnv(c *corev1.Container, v corev1.EnvVar) {
	for i := range c.Env {
		if c.Env[i].Name == v.Name {
			c.Env[i] = v
			return
		}
	}
	c.Env = append(c.Env, v)
}

// dropStatus removes the empty status and creationTimestamp the typed CSV
// marshals.
func dropStatus(b []byte) []byte {
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return b
	}
	delete(m, "status")
	if meta, ok := m["metadata"].(map[string]any); ok {
		delete(meta, "creationTimestamp")
	}
	if spec, ok := m["spec"].(map[string]any); ok {
		if inst, ok := spec["install"].(map[string]any); ok {
			if s, ok := inst["spec"].(map[string]any); ok {
				if deps, ok := s["deployments"].([]any); ok {
					for _, d := range deps {
						if dm, ok := d.(map[string]any); ok {
							if ds, ok := dm["spec"].(map[string]any); ok {
								delete(ds, "strategy")
								if tmpl, ok := ds["template"].(map[string]any); ok {
									if tm, ok := tmpl["metadata"].(map[string]any); ok {
										delete(tm, "creationTimestamp")
									}
								}
							}
						}
					}
				}
			}
		}
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		return b
	}
	return out
}

// almExamples lists the sample HAProxy, TLSContext and TCPMappings as JSON.
func almExamples(dir string) (string, error) {
	objs, err := snapshot.ReadPaths([]string{dir})
	if err != nil {
		return "", err
	}
	var list []any
	for _, h := range objs.HAProxies {
		h.APIVersion, h.Kind = "haproxy-operator.io/v1alpha1", "HAProxy"
		list = append(list, h)
	}
	for _, c := range objs.Snapshot.TLSContexts {
		c.APIVersion, c.Kind = "haproxy-operator.io/v1alpha1", "TLSContext"
		list = append(list, c)
	}
	for _, m := range objs.Snapshot.TCPMappings {
		m.APIVersion, m.Kind = "haproxy-operator.io/v1alpha1", "TCPMapping"
		list = append(list, m)
	}
	var clean []map[string]any
	for _, o := range list {
		b, err := json.Marshal(o)
		if err != nil {
			return "", err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return "", err
		}
		delete(m, "status")
		if meta, ok := m["metadata"].(map[string]any); ok {
			delete(meta, "creationTimestamp")
		}
		clean = append(clean, m)
	}
	b, err := json.MarshalIndent(clean, "", "  ")
	return string(b), err
}
