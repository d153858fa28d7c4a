package bundlegen

import (
	"strings"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

const (
	xNumber     = "urn:alm:descriptor:com.tectonic.ui:number"
	xText       = "urn:alm:descriptor:com.tectonic.ui:text"
	xBoolean    = "urn:alm:descriptor:com.tectonic.ui:booleanSwitch"
	xPodCount   = "urn:alm:descriptor:com.tectonic.ui:podCount"
	xConditions = "urn:alm:descriptor:io.kubernetes.conditions"
	xSecret     = "urn:alm:descriptor:io.kubernetes:Secret"
	xSelector   = "urn:alm:descriptor:com.tectonic.ui:selector:core:v1:Namespace"
	xAdvanced   = "urn:alm:descriptor:com.tectonic.ui:advanced"
)

type descriptor struct{ path, name, xd string }

var specDescriptors = map[string][]descriptor{
	"TCPMapping": {
		{"port", "Port", xNumber}, {"address", "Address", xText}, {"service", "Service", xText},
		{"tls", "TLS Context", xText}, {"host", "SNI Host", xText}, {"weight", "Weight (%)", xNumber},
		{"idleTimeoutMs", "Idle Timeout (ms)", xNumber}, {"enableIPv4", "IPv4 DNS Lookups", xBoolean},
		{"enableIPv6", "IPv6 DNS Lookups", xBoolean},
	},
	"TLSContext": {
		{"secret", "Certificate Secret", xSecret}, {"hosts", "Hosts", xText}, {"alpnProtocols", "ALPN Protocols", xText},
		{"minTLSVersion", "Minimum TLS Version", xText}, {"maxTLSVersion", "Maximum TLS Version", xText},
		{"cipherSuites", "Cipher Suites", xAdvanced}, {"ecdhCurves", "ECDH Curves", xAdvanced},
		{"caSecret", "Client CA Secret", xSecret}, {"certRequired", "Client Certificate Required", xBoolean},
	},
	"HAProxy": {
		{"replicas", "Replicas", xPodCount}, {"image", "Image", xAdvanced}, {"namespaceSelector", "Namespace Selector", xSelector},
		{"serviceType", "Service Type", xText}, {"stats.port", "Stats Port", xNumber}, {"stats.path", "Stats Path", xText},
		{"enableIPv4", "IPv4 DNS Lookups", xBoolean}, {"enableIPv6", "IPv6 DNS Lookups", xBoolean},
		{"hardStopAfter", "Hard Stop After", xAdvanced},
	},
}

var statusDescriptors = map[string][]descriptor{
	"TCPMapping": {{"conditions", "Conditions", xConditions}, {"frontend", "HAProxy Frontend", xText}, {"backend", "HAProxy Backend", xText}},
	"TLSContext": {{"conditions", "Conditions", xConditions}, {"notAfter", "Certificate Expiry", xText}},
	"HAProxy": {
		{"conditions", "Conditions", xConditions}, {"readyReplicas", "Ready Replicas", xPodCount},
		{"programmedReplicas", "Programmed Replicas", xPodCount}, {"configHash", "Configuration Hash", xText},
	},
}

var displayNames = map[string]string{"TCPMapping": "TCP Mapping", "TLSContext": "TLS Context", "HAProxy": "HAProxy"}

var resources = map[string][]operatorsv1alpha1.APIResourceReference{
	"HAProxy": {
		{Kind: "Deployment", Name: "", Version: "v1"},
		{Kind: "Service", Name: "", Version: "v1"},
		{Kind: "Secret", Name: "", Version: "v1"},
		{Kind: "PodDisruptionBudget", Name: "", Version: "v1"},
	},
}

// describe builds the owned-CRD entry, taking descriptions from the
// schema's doc comments.
func describe(crd apiextensionsv1.CustomResourceDefinition) operatorsv1alpha1.CRDDescription {
	kind := crd.Spec.Names.Kind
	v := crd.Spec.Versions[0]
	schema := v.Schema.OpenAPIV3Schema
	d := operatorsv1alpha1.CRDDescription{
		Name: crd.Name, Version: v.Name, Kind: kind, DisplayName: displayNames[kind],
		Description: schema.Description, Resources: resources[kind],
	}
	spec := schema.Properties["spec"]
	status := schema.Properties["status"]
	for _, s := range specDescriptors[kind] {
		d.SpecDescriptors = append(d.SpecDescriptors, operatorsv1alpha1.SpecDescriptor{
			Path: s.path, DisplayName: s.name, Description: fieldDescription(spec, s.path), XDescriptors: []string{s.xd},
		})
	}
	for _, s := range statusDescriptors[kind] {
		d.StatusDescriptors = append(d.StatusDescriptors, operatorsv1alpha1.StatusDescriptor{
			Path: s.path, DisplayName: s.name, Description: fieldDescription(status, s.path), XDescriptors: []string{s.xd},
		})
	}
	return d
}

func fieldDescription(s apiextensionsv1.JSONSchemaProps, path string) string {
	for _, part := range strings.Split(path, ".") {
		s = s.Properties[part]
	}
	return s.Description
}
