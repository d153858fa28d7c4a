// Package v1alpha1 holds the haproxy-operator.io/v1alpha1 API: TCPMapping,
// TLSContext and HAProxy. It owns the Go types, their validation markers and
// generated deep copies; it holds no behaviour.
//
// +kubebuilder:object:generate=true
// +groupName=haproxy-operator.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "haproxy-operator.io", Version: "v1alpha1"}

	// SchemeBuilder registers this package's types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds this package's types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
