package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

const (
	chartDir = "../helm/haproxy-tcp-operator"
	// releaseName makes the chart's object names those of deploy/default.
	releaseName = "haproxy-tcp-operator"
	// namespace is the one deploy/default installs into.
	namespace = "haproxy-tcp-operator-system"
)

// kubectlBinary is the kubectl the tests run: $KUBECTL, else the one in
// bin/k8s that make test-deps links.
func kubectlBinary() string {
	if k := os.Getenv("KUBECTL"); k != "" {
		return k
	}
	p, err := filepath.Abs("../../bin/k8s/kubectl")
	if err != nil {
		return "kubectl"
	}
	return p
}

// kustomize renders a kustomization directory with kubectl kustomize.
func kustomize(t testing.TB, dir string) []*unstructured.Unstructured {
	t.Helper()
	cmd := exec.Command(kubectlBinary(), "kustomize", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	objs, err := decode(out)
	if err != nil {
		t.Fatalf("read kubectl kustomize %s: %v", dir, err)
	}
	return objs
}

// helmTemplate renders the chart as helm template --include-crds would,
// with the release name and namespace of deploy/default.
func helmTemplate(t testing.TB, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, err := renderChart(values)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func renderChart(values map[string]any) ([]*unstructured.Unstructured, error) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return nil, fmt.Errorf("load the chart %s: %w", chartDir, err)
	}
	opts := chartutil.ReleaseOptions{Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true}
	rv, err := chartutil.ToRenderValues(chrt, values, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, fmt.Errorf("chart values: %w", err)
	}
	files, err := engine.Render(chrt, rv)
	if err != nil {
		return nil, fmt.Errorf("render the chart: %w", err)
	}
	var stream bytes.Buffer
	for _, crd := range chrt.CRDObjects() {
		stream.WriteString("---\n")
		stream.Write(crd.File.Data)
		stream.WriteString("\n")
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if filepath.Ext(name) != ".yaml" {
			continue // NOTES.txt and helpers
		}
		stream.WriteString("---\n# Source: " + name + "\n")
		stream.WriteString(files[name])
		stream.WriteString("\n")
	}
	objs, err := decode(stream.Bytes())
	if err != nil {
		return nil, fmt.Errorf("read the rendered chart: %w\n%s", err, stream.String())
	}
	return objs, nil
}

// decode reads a YAML stream into objects, skipping empty documents.
func decode(b []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// key names an object as the API server does.
func key(o *unstructured.Unstructured) string {
	k := o.GetKind() + " " + o.GetName()
	if ns := o.GetNamespace(); ns != "" {
		k += " in " + ns
	}
	return k
}

func byKey(t testing.TB, objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	t.Helper()
	m := make(map[string]*unstructured.Unstructured, len(objs))
	for _, o := range objs {
		if _, dup := m[key(o)]; dup {
			t.Fatalf("%s appears twice", key(o))
		}
		m[key(o)] = o
	}
	return m
}
