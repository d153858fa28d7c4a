package controller

import (
	"context"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

// informerMappings hands out the TCPMappings an informer holds, as the
// objects it holds: they are read, never modified.
type informerMappings struct{ store toolscache.Store }

func (s informerMappings) Mappings() []*v1alpha1.TCPMapping {
	items := s.store.List()
	out := make([]*v1alpha1.TCPMapping, 0, len(items))
	for _, o := range items {
		if m, ok := o.(*v1alpha1.TCPMapping); ok {
			out = append(out, m)
		}
	}
	return out
}

// mappingStoreOf is the store of c's TCPMapping informer, or nil when c
// does not keep one plain store (a cache split by namespace): the
// snapshot then lists through c.
func mappingStoreOf(ctx context.Context, c cache.Cache) (snapshot.MappingStore, error) {
	inf, err := c.GetInformer(ctx, &v1alpha1.TCPMapping{})
	if err != nil {
		return nil, err
	}
	if s, ok := inf.(interface{ GetStore() toolscache.Store }); ok {
		return informerMappings{s.GetStore()}, nil
	}
	return nil, nil
}
