package controller

import (
	"context"
	"reflect"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

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

// cachedVersions reads the resourceVersion of the objects the cache holds
// by kind, from the informers' stores: a Get deep-copies the object, and
// the HAProxy's Service with 5,000 ports costs a copy of 300 KB on every
// reconcile only to read its version.
type cachedVersions map[reflect.Type]toolscache.Store

// cachedVersionsOf reads the stores of objs' kinds from c; a kind whose
// informer keeps no plain store (a cache split by namespace) is left out,
// and read through a Get.
func cachedVersionsOf(ctx context.Context, c cache.Cache, objs ...client.Object) (cachedVersions, error) {
	out := cachedVersions{}
	for _, o := range objs {
		inf, err := c.GetInformer(ctx, o)
		if err != nil {
			return nil, err
		}
		if s, ok := inf.(interface{ GetStore() toolscache.Store }); ok {
			out[reflect.TypeOf(o)] = s.GetStore()
		}
	}
	return out, nil
}

// version is the resourceVersion of the cached object of o's kind and
// key; found is false when the cache has none, and ok false when the
// kind has no store here.
func (v cachedVersions) version(o client.Object) (version string, found, ok bool) {
	store, ok := v[reflect.TypeOf(o)]
	if !ok {
		return "", false, false
	}
	item, found, err := store.GetByKey(toolscache.ObjectName{Namespace: o.GetNamespace(), Name: o.GetName()}.String())
	if err != nil || !found {
		return "", false, err == nil
	}
	m, isObj := item.(metav1.Object)
	if !isObj {
		return "", false, false
	}
	return m.GetResourceVersion(), true, true
}
