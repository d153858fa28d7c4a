package controller

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// referencedSecrets reads the Secrets that served objects name. The
// operator caches no Secret data cluster-wide (it watches Secrets as
// metadata only), yet a reconcile needs the data of every certificate it
// serves. This keeps a copy of each Secret read, and reads one again from
// the API server only when the metadata cache shows a resourceVersion
// other than the copy's, or does not know the Secret yet: a reconcile
// whose Secrets did not change makes no Secret request. Copies unused for
// secretIdle are dropped, so only referenced Secrets are held.
type referencedSecrets struct {
	// live reads from the API server.
	live client.Reader
	// meta reads the metadata cache.
	meta client.Reader
	now  func() time.Time

	mu     sync.Mutex
	copies map[types.NamespacedName]*heldSecret
	swept  time.Time
}

type heldSecret struct {
	secret   *corev1.Secret
	lastUsed time.Time
}

// secretIdle is how long a copy no reconcile asked for is kept.
const secretIdle = 30 * time.Minute

func newReferencedSecrets(live, meta client.Reader, now func() time.Time) *referencedSecrets {
	return &referencedSecrets{live: live, meta: meta, now: now, copies: map[types.NamespacedName]*heldSecret{}}
}

// Get reads a Secret as described on referencedSecrets; other kinds are
// read from the API server.
func (s *referencedSecrets) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	secret, ok := obj.(*corev1.Secret)
	if !ok {
		return s.live.Get(ctx, key, obj, opts...)
	}
	var md metav1.PartialObjectMetadata
	md.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	// The metadata cache may not know a Secret created a moment ago; a
	// miss or an error reads from the API server, never reports a
	// missing Secret.
	if err := s.meta.Get(ctx, key, &md); err == nil {
		if held := s.held(key, md.ResourceVersion); held != nil {
			held.DeepCopyInto(secret)
			return nil
		}
	}
	if err := s.live.Get(ctx, key, secret, opts...); err != nil {
		if apierrors.IsNotFound(err) {
			s.drop(key)
		}
		return err
	}
	s.keep(key, secret.DeepCopy())
	return nil
}

// List reads from the API server: the operator lists no Secret data.
func (s *referencedSecrets) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return s.live.List(ctx, list, opts...)
}

// held is the copy of key at resourceVersion, or nil.
func (s *referencedSecrets) held(key types.NamespacedName, resourceVersion string) *corev1.Secret {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.copies[key]
	if h == nil || h.secret.ResourceVersion != resourceVersion {
		return nil
	}
	h.lastUsed = s.now()
	return h.secret
}

func (s *referencedSecrets) keep(key types.NamespacedName, secret *corev1.Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.copies[key] = &heldSecret{secret: secret, lastUsed: now}
	if now.Sub(s.swept) < secretIdle {
		return
	}
	s.swept = now
	for k, h := range s.copies {
		if now.Sub(h.lastUsed) > secretIdle {
			delete(s.copies, k)
		}
	}
}

func (s *referencedSecrets) drop(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.copies, key)
}

// size is how many copies are held.
func (s *referencedSecrets) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.copies)
}

// secretReader reads Secrets through the copies of referenced Secrets
// when the manager set them up, else from the API server.
func (r *HAProxyReconciler) secretReader() client.Reader {
	if r.secrets != nil {
		return r.secrets
	}
	return r.APIReader
}
