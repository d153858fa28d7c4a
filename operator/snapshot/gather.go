package snapshot

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// Gather reads every input hap's configuration depends on. Most kinds come
// from cache; Secrets are read directly, and only those a TLSContext or the
// HAProxy names, so the operator never caches the cluster's Secrets.
func Gather(ctx context.Context, cache client.Reader, secrets client.Reader, hap *v1alpha1.HAProxy) (Snapshot, error) {
	s := Snapshot{HAProxy: *hap}
	var namespaces corev1.NamespaceList
	if err := cache.List(ctx, &namespaces); err != nil {
		return s, fmt.Errorf("list namespaces: %w", err)
	}
	s.Namespaces = namespaces.Items
	var mappings v1alpha1.TCPMappingList
	if err := cache.List(ctx, &mappings); err != nil {
		return s, fmt.Errorf("list TCPMappings: %w", err)
	}
	s.TCPMappings = mappings.Items
	var contexts v1alpha1.TLSContextList
	if err := cache.List(ctx, &contexts); err != nil {
		return s, fmt.Errorf("list TLSContexts: %w", err)
	}
	s.TLSContexts = contexts.Items
	var services corev1.ServiceList
	if err := cache.List(ctx, &services); err != nil {
		return s, fmt.Errorf("list Services: %w", err)
	}
	s.Services = services.Items
	var slices discoveryv1.EndpointSliceList
	if err := cache.List(ctx, &slices); err != nil {
		return s, fmt.Errorf("list EndpointSlices: %w", err)
	}
	s.EndpointSlices = slices.Items

	wanted := map[client.ObjectKey]bool{}
	if hap.Spec.Stats.AuthSecret != "" {
		wanted[client.ObjectKey{Namespace: hap.Namespace, Name: hap.Spec.Stats.AuthSecret}] = true
	}
	for _, c := range s.TLSContexts {
		for _, ref := range []string{c.Spec.Secret, c.Spec.CASecret} {
			if ref != "" {
				ns, name := splitRef(ref, c.Namespace)
				wanted[client.ObjectKey{Namespace: ns, Name: name}] = true
			}
		}
	}
	for k := range wanted {
		var secret corev1.Secret
		err := secrets.Get(ctx, k, &secret)
		if apierrors.IsNotFound(err) {
			continue // translation reports it on the objects that name it
		}
		if err != nil {
			return s, fmt.Errorf("get Secret %s: %w", k, err)
		}
		s.Secrets = append(s.Secrets, secret)
	}
	return s, nil
}

func splitRef(ref, defaultNamespace string) (namespace, name string) {
	for i := 0; i < len(ref); i++ {
		if ref[i] == '.' {
			return ref[i+1:], ref[:i]
		}
	}
	return defaultNamespace, ref
}
