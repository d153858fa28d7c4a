package controller

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

// countingReader counts the Gets that reach the API server.
type countingReader struct {
	client.Reader
	gets atomic.Int32
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.gets.Add(1)
	return c.Reader.Get(ctx, key, obj, opts...)
}

// TestReferencedSecretsAreReadAgainOnlyWhenChanged runs the Secret reader
// against a real API server and a real metadata cache: an unchanged
// Secret is served from its copy, a changed one is read again once the
// cache sees it, a deleted one is missing, and a Secret the cache does not
// know yet is read from the API server rather than reported missing.
func TestReferencedSecretsAreReadAgainOnlyWhenChanged(t *testing.T) {
	env := &envtest.Environment{BinaryAssetsDirectory: filepath.Join("..", "..", "bin", "k8s")}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start kube-apiserver and etcd (make test-deps builds them): %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	direct, err := client.New(cfg, client.Options{Scheme: snapshot.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	metaCache, err := cache.New(cfg, cache.Options{Scheme: snapshot.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = metaCache.Start(ctx) }()
	if !metaCache.WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}

	live := &countingReader{Reader: direct}
	secrets := newReferencedSecrets(live, metaCache, time.Now)
	key := client.ObjectKey{Namespace: "default", Name: "site-cert"}
	// Created before the metadata informer exists: the first read must
	// still find it.
	if err := direct.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}, Data: map[string][]byte{"tls.crt": []byte("one")}}); err != nil {
		t.Fatal(err)
	}
	read := func() (*corev1.Secret, error) {
		var s corev1.Secret
		err := secrets.Get(ctx, key, &s)
		return &s, err
	}
	if s, err := read(); err != nil || string(s.Data["tls.crt"]) != "one" {
		t.Fatalf("first read: %v %q", err, s.Data["tls.crt"])
	}

	// Once the metadata cache knows it, reads cost no request.
	deadline := time.Now().Add(10 * time.Second)
	for {
		before := live.gets.Load()
		if _, err := read(); err != nil {
			t.Fatal(err)
		}
		if live.gets.Load() == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an unchanged Secret is still read from the API server")
		}
		time.Sleep(50 * time.Millisecond) // polling an informer
	}
	before := live.gets.Load()
	for range 20 {
		if _, err := read(); err != nil {
			t.Fatal(err)
		}
	}
	if got := live.gets.Load() - before; got != 0 {
		t.Errorf("20 reads of an unchanged Secret made %d API requests", got)
	}

	// A change is read once the cache has seen it.
	var s corev1.Secret
	if err := direct.Get(ctx, key, &s); err != nil {
		t.Fatal(err)
	}
	s.Data["tls.crt"] = []byte("two")
	if err := direct.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		got, err := read()
		if err == nil && string(got.Data["tls.crt"]) == "two" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the changed Secret is not read: %v %q", err, got.Data["tls.crt"])
		}
		time.Sleep(50 * time.Millisecond) // polling an informer
	}

	// A deleted Secret is missing, and its copy goes.
	if err := direct.Delete(ctx, &s); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, err := read()
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a deleted Secret still reads: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling an informer
	}
	if n := secrets.size(); n != 0 {
		t.Errorf("%d copies held after the only Secret was deleted", n)
	}
}
