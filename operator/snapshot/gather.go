package snapshot

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// MappingStore hands out the cached TCPMappings themselves, without the
// copy of each object that a List makes: at 10,000 mappings that copy
// was megabytes per reconcile.
type MappingStore interface {
	Mappings() []*v1alpha1.TCPMapping
}

// Gather reads every input hap's configuration depends on from the cache,
// except Secrets (see AddSecrets) and ReferenceGrants (see
// AddReferenceGrants). The objects share their maps and slices with the
// cache (no deep copy of 10,000 mappings per reconcile): whoever changes
// one copies it first. TCPMappings come from store when it is not nil.
func Gather(ctx context.Context, cache client.Reader, store MappingStore, hap *v1alpha1.HAProxy) (Snapshot, error) {
	s := Snapshot{HAProxy: *hap}
	var namespaces corev1.NamespaceList
	if err := cache.List(ctx, &namespaces, client.UnsafeDisableDeepCopy); err != nil {
		return s, fmt.Errorf("list namespaces: %w", err)
	}
	s.Namespaces = namespaces.Items
	if store != nil {
		s.TCPMappings = store.Mappings()
	} else {
		var mappings v1alpha1.TCPMappingList
		if err := cache.List(ctx, &mappings, client.UnsafeDisableDeepCopy); err != nil {
			return s, fmt.Errorf("list TCPMappings: %w", err)
		}
		s.TCPMappings = make([]*v1alpha1.TCPMapping, len(mappings.Items))
		for i := range mappings.Items {
			s.TCPMappings[i] = &mappings.Items[i]
		}
	}
	var contexts v1alpha1.TLSContextList
	if err := cache.List(ctx, &contexts, client.UnsafeDisableDeepCopy); err != nil {
		return s, fmt.Errorf("list TLSContexts: %w", err)
	}
	s.TLSContexts = contexts.Items
	var services corev1.ServiceList
	if err := cache.List(ctx, &services, client.UnsafeDisableDeepCopy); err != nil {
		return s, fmt.Errorf("list Services: %w", err)
	}
	s.Services = services.Items
	var slices discoveryv1.EndpointSliceList
	if err := cache.List(ctx, &slices, client.UnsafeDisableDeepCopy); err != nil {
		return s, fmt.Errorf("list EndpointSlices: %w", err)
	}
	s.EndpointSlices = slices.Items

	return s, nil
}

// AddReferenceGrants reads every ReferenceGrant from the cache when the
// cluster serves them (crdInstalled); otherwise it records that none can
// exist, so translation refuses cross-namespace references and says why.
func AddReferenceGrants(ctx context.Context, cache client.Reader, s *Snapshot, crdInstalled bool) error {
	if !crdInstalled {
		s.NoReferenceGrantCRD = true
		return nil
	}
	var grants gatewayv1beta1.ReferenceGrantList
	if err := cache.List(ctx, &grants, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("list ReferenceGrants: %w", err)
	}
	s.ReferenceGrants = grants.Items
	return nil
}

// AddSecrets reads the named Secrets ("namespace/name") through secrets,
// which is the API server or a reader holding only referenced Secrets, so
// the operator never caches the cluster's Secrets; missing ones are left
// out for translation to report.
func AddSecrets(ctx context.Context, secrets client.Reader, s *Snapshot, names []string) error {
	have := map[string]bool{}
	for _, sec := range s.Secrets {
		have[sec.Namespace+"/"+sec.Name] = true
	}
	for _, n := range names {
		if have[n] {
			continue
		}
		ns, name, _ := strings.Cut(n, "/")
		var secret corev1.Secret
		err := secrets.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &secret)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("get Secret %s: %w", n, err)
		}
		s.Secrets = append(s.Secrets, secret)
	}
	return nil
}
