package cli

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestParseWatchNamespaces(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "", want: nil},
		{in: "  ", want: nil},
		{in: "team-a", want: []string{"team-a"}},
		{in: "b, a ,b", want: []string{"a", "b"}},
		{in: "a,,b", wantErr: "empty namespace name"},
		{in: "a,Team", wantErr: `namespace "Team"`},
		{in: "a/b", wantErr: `namespace "a/b"`},
	} {
		got, err := parseWatchNamespaces(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// namespaceReader serves Namespaces from a map, as the API server would
// to a ServiceAccount allowed to get some of them.
type namespaceReader struct {
	client.Reader
	mu        sync.Mutex
	ns        map[string]*corev1.Namespace
	forbidden map[string]bool
}

func (r *namespaceReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.forbidden[key.Name] {
		return apierrors.NewForbidden(corev1.Resource("namespaces"), key.Name, nil)
	}
	ns, ok := r.ns[key.Name]
	if !ok {
		return apierrors.NewNotFound(corev1.Resource("namespaces"), key.Name)
	}
	ns.DeepCopyInto(obj.(*corev1.Namespace))
	return nil
}

func (r *namespaceReader) set(name, rv string, l map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l == nil {
		delete(r.ns, name)
		return
	}
	r.ns[name] = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv, Labels: l}}
}

// events records what a handler was told, in order.
type events struct {
	mu  sync.Mutex
	got []string
}

func (e *events) add(s string) { e.mu.Lock(); e.got = append(e.got, s); e.mu.Unlock() }
func (e *events) OnAdd(o any, initial bool) {
	e.add("add " + o.(*corev1.Namespace).Name + map[bool]string{true: " initial", false: ""}[initial])
}
func (e *events) OnUpdate(_, n any) { e.add("update " + n.(*corev1.Namespace).Name) }
func (e *events) OnDelete(o any)    { e.add("delete " + o.(*corev1.Namespace).Name) }
func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.got, "; ")
}

func TestScopedCacheServesOnlyItsNamespaces(t *testing.T) {
	ctx := context.Background()
	r := &namespaceReader{ns: map[string]*corev1.Namespace{}, forbidden: map[string]bool{}}
	r.set("a", "1", map[string]string{"team": "x"})
	r.set("b", "1", map[string]string{"team": "y"})
	r.set("other", "1", map[string]string{"team": "x"})
	c := newScopedCache(nil, r, []string{"a", "b", "gone"}, time.Hour)

	var ns corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: "a"}, &ns); err != nil || ns.Labels["team"] != "x" {
		t.Errorf("Get a: %v %v", ns.Labels, err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "other"}, &ns); !apierrors.IsNotFound(err) {
		t.Errorf("Get of a namespace not served: %v, want NotFound", err)
	}
	var list corev1.NamespaceList
	if err := c.List(ctx, &list); err != nil || len(list.Items) != 2 || list.Items[0].Name != "a" || list.Items[1].Name != "b" {
		t.Errorf("List: %v %v, want a and b", list.Items, err)
	}
	if err := c.List(ctx, &list, client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(labels.Set{"team": "y"})}); err != nil || len(list.Items) != 1 || list.Items[0].Name != "b" {
		t.Errorf("List team=y: %v %v, want b", list.Items, err)
	}
	r.forbidden["b"] = true
	if err := c.List(ctx, &list); err == nil || !strings.Contains(err.Error(), "needs get on namespaces") {
		t.Errorf("List with b forbidden: %v, want an error naming the permission", err)
	}
	if inf, err := c.GetInformerForKind(ctx, schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}); err != nil || inf != c.poller {
		t.Errorf("informer for Namespaces: %v %v, want the poller", inf, err)
	}
}

func TestNamespacePollerTellsChanges(t *testing.T) {
	ctx := context.Background()
	r := &namespaceReader{ns: map[string]*corev1.Namespace{}, forbidden: map[string]bool{}}
	r.set("a", "1", map[string]string{"team": "x"})
	c := newScopedCache(nil, r, []string{"a", "b"}, time.Hour)
	p := c.poller
	early := &events{}
	if _, err := p.AddEventHandler(early); err != nil {
		t.Fatal(err)
	}
	if p.HasSynced() {
		t.Fatal("synced before the first poll")
	}
	if err := p.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if !p.HasSynced() || early.String() != "add a initial" {
		t.Fatalf("after the first poll: synced %v, events %q", p.HasSynced(), early)
	}
	late := &events{}
	reg, err := p.AddEventHandler(late)
	if err != nil || !reg.HasSynced() || late.String() != "add a initial" {
		t.Fatalf("a handler added later: synced %v, events %q, %v", reg.HasSynced(), late, err)
	}
	r.set("a", "2", map[string]string{"team": "y"})
	r.set("b", "1", map[string]string{})
	if err := p.poll(ctx); err != nil {
		t.Fatal(err)
	}
	// Unchanged: nothing to tell.
	if err := p.poll(ctx); err != nil {
		t.Fatal(err)
	}
	r.set("a", "", nil)
	r.forbidden["b"] = true
	if err := p.poll(ctx); err == nil {
		t.Error("a forbidden read was not reported")
	}
	want := "add a initial; update a; add b; delete a"
	if early.String() != want {
		t.Errorf("events %q, want %q", early, want)
	}
	if err := p.RemoveEventHandler(reg); err != nil {
		t.Fatal(err)
	}
	r.set("a", "3", map[string]string{})
	if err := p.poll(ctx); err == nil {
		t.Error("b is still forbidden")
	}
	if late.String() != "add a initial; update a; add b; delete a" {
		t.Errorf("a removed handler was told: %q", late)
	}
}

// TestRunRefusesABadWatchNamespace: a bad WATCH_NAMESPACE stops run at
// once, naming the variable, before any cluster is contacted.
func TestRunRefusesABadWatchNamespace(t *testing.T) {
	t.Setenv(WatchNamespaceEnv, "apps,,web")
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), []string{"run"}, &stdout, &stderr); code != 2 {
		t.Errorf("exit code %d, want 2 (usage)", code)
	}
	if !strings.Contains(stderr.String(), "$WATCH_NAMESPACE") || !strings.Contains(stderr.String(), "empty namespace name") {
		t.Errorf("stderr does not say what is wrong:\n%s", stderr.String())
	}
}
