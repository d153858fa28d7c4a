package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/localcluster"
)

// The scale benchmark's layout: half the mappings cleartext, each on a
// port of its own from cleartextBase; half SNI passthrough, hostsPerPort
// hosts on each port from sniBase. Probe mappings use ports from
// probeBase, outside both ranges.
const (
	cleartextBase = 20000
	sniBase       = 40000
	hostsPerPort  = 100
	probeBase     = 19000
	// flips is how many weight changes of each series one run measures:
	// a p99 by nearest rank is the largest of fewer than 100 figures, so
	// 100 is the least that measures a p99 rather than a maximum (the
	// table shows the maximum as well). Changes of the other kinds are
	// measured changes times per run.
	flips   = 100
	changes = 5
)

// BenchmarkScale measures, against the real API server, the operator
// binary and HAProxy, what a change costs with BENCH_SCALE mappings in
// place (default 1000), over BENCH_RUNS runs (default 3), and prints the
// table the README records: each figure as min / median / max over the
// runs. It is not part of make test: make bench runs it.
func BenchmarkScale(b *testing.B) {
	scale := envInt(b, "BENCH_SCALE", 1000)
	runs := envInt(b, "BENCH_RUNS", 3)
	if scale < 2*hostsPerPort || runs < 1 {
		b.Fatalf("BENCH_SCALE must be at least %d and BENCH_RUNS at least 1", 2*hostsPerPort)
	}
	bb := newScaleBench(b, scale)
	floors := apiFloors(b, bb, runs)
	var results []scaleRun
	for r := 0; r < runs; r++ {
		res := bb.run(r)
		// At once, not at the end as b.Logf: a long run at 10k shows its
		// progress.
		fmt.Fprintf(os.Stderr, "scale %d, run %d of %d: %+v\n", scale, r+1, runs, res)
		results = append(results, res)
		if r < runs-1 {
			bb.teardown()
		}
	}
	table := scaleTable(scale, results, floors)
	fmt.Print(table)
	if out := os.Getenv("BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		b.Fatalf("%s=%q: not a number", name, v)
	}
	return n
}

// scaleBench is the fixed part of the benchmark: one HAProxy instance,
// the backends and the Services every run uses.
type scaleBench struct {
	b     *testing.B
	c     client.Client
	ns    string
	ip    string
	scale int
	token string
	// metrics reads the operator's metrics over one kept-alive connection,
	// uncompressed: a TLS handshake and gzip per poll would be operator
	// CPU the benchmark itself causes, and counts as a change's cost.
	metrics *http.Client
}

// scaleRun is what one run measured.
type scaleRun struct {
	// BurstCreated is how long the API server took to create the burst:
	// no mapping can serve before it exists.
	BurstCreated                  time.Duration
	BurstServing, BurstProgrammed time.Duration
	BurstReloads, BurstReconciles int
	// BurstStatusWrites are the mapping status writes the API server took
	// from the burst's start until all were Programmed (one per mapping
	// is the least), and BurstStatusConflicts those it refused as
	// conflicts: each is a wasted write, and a read follows it.
	BurstStatusWrites, BurstStatusConflicts int
	IdleReconciles                          int
	// WeightP50, WeightP99 and WeightMax are over weight changes made in
	// a row, each as soon as the last one reached traffic (while its
	// reconcile may still push the text); WeightAlone* over changes made
	// one at a time, each once the operator is quiet.
	WeightP50, WeightP99, WeightMax                time.Duration
	WeightAloneP50, WeightAloneP99, WeightAloneMax time.Duration
	// WeightPatchP50 and WeightPatchP99 are how long the API server took
	// to answer the changes made one at a time: the part of each figure
	// before the operator can see the change.
	WeightPatchP50, WeightPatchP99 time.Duration
	WeightReloads                  int
	ReconcilesPerChange            float64
	CPUPerChange                   time.Duration
	Endpoint                       time.Duration
	EndpointReloads                int
	SNIHost                        time.Duration
	SNIHostReloads                 int
	NewPort                        time.Duration
	OperatorRSS, OperatorPeak      int64
	// OperatorFile is the part of OperatorRSS that is the binary's
	// (and libraries') file-backed pages; the rest is heap and stacks.
	OperatorFile int64
	HAProxyRSS   int64
}

func newScaleBench(b *testing.B, scale int) *scaleBench {
	cfg := rest.CopyConfig(cluster.cfg)
	cfg.QPS, cfg.Burst = -1, 0 // the burst is the API server's to absorb, not a client limit's
	c, err := client.New(cfg, client.Options{Scheme: cluster.client.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	sb := &scaleBench{b: b, c: c, scale: scale, metrics: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the operator's self-signed metrics certificate
		DisableCompression: true,
	}}}
	sb.ns = newNamespace(b, nil)
	sb.ip = newHAProxy(b, sb.ns, 1)[0]
	serviceWithBackend(b, sb.ns, "plain")
	serviceWithBackend(b, sb.ns, "stable")
	serviceWithBackend(b, sb.ns, "canary")
	service(b, sb.ns, "ep", map[string]int32{"": 80})
	publish(b, sb.ns, "ep", "", backend(b, "ep-a", ""))
	for _, name := range []string{"sni", "probe-sni"} {
		service(b, sb.ns, name, map[string]int32{"": 80})
		publish(b, sb.ns, name, "", backend(b, name, name+".example"))
	}
	sb.token = metricsToken(b, sb.ns)
	return sb
}

// metricsToken is a bearer token the operator's metrics endpoint accepts.
func metricsToken(b *testing.B, ns string) string {
	ctx := ctxFor(b)
	create(b, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bench-scraper"}})
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-scraper-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "bench-scraper"}},
	}
	create(b, binding)
	b.Cleanup(func() { _ = cluster.client.Delete(context.Background(), binding) })
	cs, err := kubernetes.NewForConfig(cluster.cfg)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "bench-scraper", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](7200)},
	}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return tr.Status.Token
}

func (sb *scaleBench) cleartext() int { return sb.scale / 2 }
func (sb *scaleBench) sniPorts() int {
	return (sb.scale - sb.cleartext() + hostsPerPort - 1) / hostsPerPort
}

// burst are the BENCH_SCALE mappings.
func (sb *scaleBench) burst() []*v1alpha1.TCPMapping {
	out := make([]*v1alpha1.TCPMapping, 0, sb.scale)
	for i := 0; i < sb.cleartext(); i++ {
		out = append(out, mapping(sb.ns, fmt.Sprintf("c-%05d", i), v1alpha1.TCPMappingSpec{Port: int32(cleartextBase + i), Service: "plain"}))
	}
	for i := 0; i < sb.scale-sb.cleartext(); i++ {
		p, h := i/hostsPerPort, i%hostsPerPort
		out = append(out, mapping(sb.ns, fmt.Sprintf("s-%03d-%03d", p, h), v1alpha1.TCPMappingSpec{
			Port: int32(sniBase + p), Host: sniHost(p, h), Service: "sni",
		}))
	}
	return out
}

func sniHost(port, host int) string { return fmt.Sprintf("h%03d.p%03d.example", host, port) }

// run is one run: the burst, then each kind of change with the burst in
// place; teardown removes it all again.
func (sb *scaleBench) run(r int) scaleRun {
	b := sb.b
	var res scaleRun
	recBefore, reloadsBefore := sb.reconciles(), reloadCount(b, sb.ns, sb.ip)
	writesBefore, conflictsBefore := mappingStatusWrites(b)
	start := time.Now()
	objs := sb.burst()
	parallelDo(b, 16, len(objs), func(i int) error { return sb.c.Create(context.Background(), objs[i]) })
	res.BurstCreated = time.Since(start)
	res.BurstServing = sb.allServing(start)
	res.BurstProgrammed = sb.allProgrammed(start)
	writes, conflicts := mappingStatusWrites(b)
	res.BurstStatusWrites, res.BurstStatusConflicts = writes-writesBefore, conflicts-conflictsBefore
	res.BurstReloads = reloadCount(b, sb.ns, sb.ip) - reloadsBefore
	sb.quiet()
	res.BurstReconciles = sb.reconciles() - recBefore

	// A run that changed nothing.
	idle := sb.reconciles()
	time.Sleep(5 * time.Second) // the window reconciles are counted over, not a synchronisation
	res.IdleReconciles = sb.reconciles() - idle

	w := sb.weights(r)
	res.WeightP50, res.WeightP99, res.WeightMax = w.inRow.p50, w.inRow.p99, w.inRow.max
	res.WeightAloneP50, res.WeightAloneP99, res.WeightAloneMax = w.alone.p50, w.alone.p99, w.alone.max
	res.WeightPatchP50, res.WeightPatchP99 = w.patched.p50, w.patched.p99
	res.WeightReloads, res.ReconcilesPerChange, res.CPUPerChange = w.reloads, w.reconcilesPer, w.cpuPer
	res.Endpoint, res.EndpointReloads = sb.endpoints()
	res.SNIHost, res.SNIHostReloads = sb.sniHosts(r)
	res.NewPort = sb.newPorts(r)
	res.OperatorRSS, res.OperatorPeak, res.OperatorFile = procMemory(bed.operator.pid())
	res.HAProxyRSS = haproxyWorkerRSS(bed.kubelet.Dir)
	return res
}

// allServing waits until every burst mapping relays a connection and
// returns the time since start to the last mapping's first relayed
// connection: a round of 10,000 probes takes seconds, and the round's end
// would count the probes after it too.
func (sb *scaleBench) allServing(start time.Time) time.Duration {
	type probe struct{ address, sni, want string }
	var pending []probe
	for i := 0; i < sb.cleartext(); i++ {
		pending = append(pending, probe{addr(sb.ip, int32(cleartextBase+i)), "", "plain"})
	}
	for i := 0; i < sb.scale-sb.cleartext(); i++ {
		p, h := i/hostsPerPort, i%hostsPerPort
		pending = append(pending, probe{addr(sb.ip, int32(sniBase+p)), sniHost(p, h), "sni"})
	}
	deadline := start.Add(10 * time.Minute)
	var lastServed time.Time
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			sb.b.Fatalf("%d mappings still not serving after 10 minutes, e.g. %+v", len(pending), pending[0])
		}
		served := make([]time.Time, len(pending))
		parallelDo(sb.b, 16, len(pending), func(i int) error {
			if got, _, err := greeting(pending[i].address, pending[i].sni); err == nil && got == pending[i].want {
				served[i] = time.Now()
			}
			return nil
		})
		var still []probe
		for i, p := range pending {
			switch {
			case served[i].IsZero():
				still = append(still, p)
			case served[i].After(lastServed):
				lastServed = served[i]
			}
		}
		pending = still
		if len(pending) > 0 {
			// A short pause between rounds, so failing probes do not
			// spin on the CPUs the operator needs.
			time.Sleep(50 * time.Millisecond)
		}
	}
	return lastServed.Sub(start)
}

// allProgrammed waits until every burst mapping is Programmed for its
// generation and returns the time since start. It follows a watch: a
// list of every mapping per poll would load the API server the operator
// is writing to.
func (sb *scaleBench) allProgrammed(start time.Time) time.Duration {
	b := sb.b
	wc, err := client.NewWithWatch(cluster.cfg, client.Options{Scheme: cluster.client.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	programmed, n := map[string]bool{}, 0
	set := func(name string, p bool) {
		if programmed[name] != p {
			if p {
				n++
			} else {
				n--
			}
		}
		programmed[name] = p
	}
	isProgrammed := func(m *v1alpha1.TCPMapping) bool {
		c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionProgrammed)
		return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == m.Generation
	}
	// The API server ends a watch that falls behind a fast stream of
	// status writes: then it lists again and watches from there.
	for ctx.Err() == nil {
		var list v1alpha1.TCPMappingList
		if err := wc.List(ctx, &list, client.InNamespace(sb.ns)); err != nil {
			b.Fatal(err)
		}
		programmed, n = map[string]bool{}, 0
		for i := range list.Items {
			set(list.Items[i].Name, isProgrammed(&list.Items[i]))
		}
		if n >= sb.scale {
			return time.Since(start)
		}
		w, err := wc.Watch(ctx, &v1alpha1.TCPMappingList{}, client.InNamespace(sb.ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		if err != nil {
			b.Fatal(err)
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				break // e.g. the version listed is gone: list again
			}
			m, ok := ev.Object.(*v1alpha1.TCPMapping)
			if !ok {
				b.Fatalf("watching mappings: %v", ev.Object)
			}
			set(m.Name, isProgrammed(m) && ev.Type != watch.Deleted)
			if n >= sb.scale {
				w.Stop()
				return time.Since(start)
			}
		}
		w.Stop()
		b.Logf("the watch of the mappings ended with %d of %d Programmed; listing again", n, sb.scale)
	}
	b.Fatalf("%d of %d mappings Programmed after 10 minutes", n, sb.scale)
	return 0
}

// quiet waits until, for two seconds, the operator has neither finished
// nor been running a reconcile and HAProxy has run no old worker: a
// reload's old worker stops its proxies one by one (several CPU-seconds
// at 10,000 mappings) and would take the CPU the next measured change
// needs.
func (sb *scaleBench) quiet() {
	master := haproxyMaster(sb.b, sb.ip)
	last, _ := sb.reconcileState()
	since := time.Now()
	deadline := since.Add(5 * time.Minute)
	for time.Since(since) < 2*time.Second {
		if time.Now().After(deadline) {
			sb.b.Fatalf("the operator and HAProxy did not go quiet within 5 minutes")
		}
		// Polled slowly: each poll is a metrics scrape the operator serves.
		time.Sleep(250 * time.Millisecond)
		n, active := sb.reconcileState()
		out, _ := exec.Command("pgrep", "-P", strconv.Itoa(master)).Output()
		if n != last || active > 0 || len(strings.Fields(string(out))) > 1 {
			last, since = n, time.Now()
		}
	}
}

// reachesWithin polls address until it reaches want and returns the time
// since start. It polls every 5 ms: each poll is a connection through
// HAProxy to a backend in this process, and polling faster takes CPU from
// the operator on a 2-core machine; a figure is at most 5 ms late.
func (sb *scaleBench) reachesWithin(start time.Time, address, sni, want string) time.Duration {
	deadline := start.Add(2 * time.Minute)
	for {
		if got, _, err := greeting(address, sni); err == nil && got == want {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			sb.b.Fatalf("%s (SNI %q) does not reach %s within 2 minutes", address, sni, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// weightFigures is what weights measured.
type weightFigures struct {
	inRow, alone, patched durations
	reloads               int
	reconcilesPer         float64
	cpuPer                time.Duration
}

// weights flips a canary between all and none of a port's traffic and
// measures each flip to traffic: first flips in a row, each as soon as
// the last one reached traffic (with the operator's reconciles and CPU
// time per flip), then flips one at a time, each once the operator and
// HAProxy are quiet: what one weight change costs, without the tail of
// the last one's reconcile.
func (sb *scaleBench) weights(r int) weightFigures {
	b := sb.b
	port := int32(probeBase + 10*r)
	stable := mapping(sb.ns, fmt.Sprintf("w-stable-%d", r), v1alpha1.TCPMappingSpec{Port: port, Service: "stable"})
	canary := mapping(sb.ns, fmt.Sprintf("w-canary-%d", r), v1alpha1.TCPMappingSpec{Port: port, Service: "canary", Weight: ptr.To[int32](0)})
	create(b, stable, canary)
	routesTo(b, addr(sb.ip, port), "", "stable")
	sb.quiet()
	var out weightFigures
	reloadsBefore, recBefore, cpuBefore := reloadCount(b, sb.ns, sb.ip), sb.reconciles(), procCPU(bed.operator.pid())
	var inRow, alone, patched []time.Duration
	for i := 0; i < flips; i++ {
		took, _ := sb.flip(canary, port)
		inRow = append(inRow, took)
	}
	sb.quiet()
	out.reconcilesPer = float64(sb.reconciles()-recBefore) / flips
	out.cpuPer = (procCPU(bed.operator.pid()) - cpuBefore) / flips
	for i := 0; i < flips; i++ {
		sb.quiet()
		took, patch := sb.flip(canary, port)
		alone, patched = append(alone, took), append(patched, patch)
	}
	sb.quiet()
	out.reloads = reloadCount(b, sb.ns, sb.ip) - reloadsBefore
	b.Logf("weight changes in a row to traffic, in the order made: %v", inRow)
	b.Logf("weight changes one at a time to traffic, in the order made: %v", alone)
	b.Logf("the API server's answers to those changes, in the order made: %v", patched)
	out.inRow, out.alone, out.patched = summarize(inRow), summarize(alone), summarize(patched)
	return out
}

// flip gives the canary all of its port's traffic when it has none, and
// none when it has all, and returns the time until a connection shows it
// and the time until the API server answered the change.
func (sb *scaleBench) flip(canary *v1alpha1.TCPMapping, port int32) (took, patched time.Duration) {
	w, want := int32(100), "canary"
	if canary.Spec.Weight != nil && *canary.Spec.Weight == 100 {
		w, want = 0, "stable"
	}
	start := time.Now()
	before := canary.DeepCopy()
	canary.Spec.Weight = ptr.To(w)
	if err := sb.c.Patch(context.Background(), canary, client.MergeFrom(before)); err != nil {
		sb.b.Fatal(err)
	}
	patched = time.Since(start)
	return sb.reachesWithin(start, addr(sb.ip, port), "", want), patched
}

// durations are the p50, p99 (by nearest rank) and maximum of a series.
type durations struct{ p50, p99, max time.Duration }

// summarize sorts took and returns its durations.
func summarize(took []time.Duration) durations {
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	return durations{p50: took[len(took)/2], p99: took[(len(took)*99+99)/100-1], max: took[len(took)-1]}
}

// endpoints moves a Service from backend to backend and measures each
// move to traffic. Each move updates the Service's EndpointSlice in
// place, as the EndpointSlice controller does when a Pod is replaced: one
// change, not a deletion and a creation. Each move goes to a backend that
// was never an endpoint, once the operator is quiet: a move back to an
// endpoint whose server HAProxy has not retired yet would be measured by
// luck, before any reconcile.
func (sb *scaleBench) endpoints() (time.Duration, int) {
	b := sb.b
	port := int32(probeBase + 1)
	create(b, mapping(sb.ns, fmt.Sprintf("ep-%d", time.Now().UnixNano()), v1alpha1.TCPMappingSpec{Port: port, Service: "ep"}))
	first := backend(b, "ep-0", "")
	publish(b, sb.ns, "ep", "", first)
	routesTo(b, addr(sb.ip, port), "", "ep-0")
	before := reloadCount(b, sb.ns, sb.ip)
	var took []time.Duration
	for i := 1; i <= changes; i++ {
		want := fmt.Sprintf("ep-%d", i)
		to := backend(b, want, "")
		sb.quiet()
		start := time.Now()
		sb.moveEndpoint("ep", to)
		took = append(took, sb.reachesWithin(start, addr(sb.ip, port), "", want))
	}
	sb.quiet()
	return median(took), reloadCount(b, sb.ns, sb.ip) - before
}

// moveEndpoint points the one EndpointSlice of service at to, in place.
func (sb *scaleBench) moveEndpoint(service string, to *localcluster.Backend) {
	var found discoveryv1.EndpointSliceList
	if err := sb.c.List(context.Background(), &found, client.InNamespace(sb.ns), client.MatchingLabels{discoveryv1.LabelServiceName: service}); err != nil {
		sb.b.Fatal(err)
	}
	if len(found.Items) != 1 {
		sb.b.Fatalf("Service %s has %d EndpointSlices, want 1", service, len(found.Items))
	}
	es := &found.Items[0]
	es.Ports[0].Port = ptr.To(int32(to.Addr.Port))
	es.Endpoints[0].Addresses = []string{to.Addr.IP.String()}
	if err := sb.c.Update(context.Background(), es); err != nil {
		sb.b.Fatal(err)
	}
}

// sniHosts adds hosts to the first SNI port and measures each to
// traffic.
func (sb *scaleBench) sniHosts(r int) (time.Duration, int) {
	b := sb.b
	before := reloadCount(b, sb.ns, sb.ip)
	var took []time.Duration
	for i := 0; i < changes; i++ {
		host := fmt.Sprintf("new-%d-%d.p000.example", r, i)
		start := time.Now()
		create(b, mapping(sb.ns, fmt.Sprintf("new-sni-%d-%d", r, i), v1alpha1.TCPMappingSpec{Port: sniBase, Host: host, Service: "probe-sni"}))
		took = append(took, sb.reachesWithin(start, addr(sb.ip, sniBase), host, "probe-sni"))
		sb.quiet()
	}
	return median(took), reloadCount(b, sb.ns, sb.ip) - before
}

// newPorts adds mappings on new ports and measures each to traffic.
func (sb *scaleBench) newPorts(r int) time.Duration {
	b := sb.b
	var took []time.Duration
	for i := 0; i < changes; i++ {
		port := int32(probeBase + 100 + 10*r + i)
		start := time.Now()
		create(b, mapping(sb.ns, fmt.Sprintf("new-port-%d-%d", r, i), v1alpha1.TCPMappingSpec{Port: port, Service: "plain"}))
		took = append(took, sb.reachesWithin(start, addr(sb.ip, port), "", "plain"))
		sb.quiet()
	}
	return median(took)
}

// teardown removes every mapping and waits until HAProxy no longer
// serves the burst.
func (sb *scaleBench) teardown() {
	b := sb.b
	eventually(b, 10*time.Minute, "the burst is gone", func() error {
		var list v1alpha1.TCPMappingList
		if err := sb.c.List(context.Background(), &list, client.InNamespace(sb.ns)); err != nil {
			return err
		}
		if len(list.Items) > 0 {
			// One by one, in parallel: a deletecollection of 10,000
			// objects runs out of its server-side time and stops midway.
			parallelDo(b, 16, len(list.Items), func(i int) error {
				return client.IgnoreNotFound(sb.c.Delete(context.Background(), &list.Items[i]))
			})
			return fmt.Errorf("%d mappings were left", len(list.Items))
		}
		// Every port of the burst, not one: while a reload is held, the
		// instance may run a configuration with only some of them gone.
		for _, port := range sb.burstPorts() {
			if conn, err := net.DialTimeout("tcp", addr(sb.ip, port), 2*time.Second); err == nil {
				conn.Close()
				return fmt.Errorf("port %d still listens", port)
			}
		}
		return nil
	})
	sb.quiet()
}

// burstPorts are the ports the burst's mappings listen on.
func (sb *scaleBench) burstPorts() []int32 {
	var ports []int32
	for i := 0; i < sb.cleartext(); i++ {
		ports = append(ports, int32(cleartextBase+i))
	}
	for p := 0; p < sb.sniPorts(); p++ {
		ports = append(ports, int32(sniBase+p))
	}
	return ports
}

// reconciles is the operator's count of HAProxy reconciles.
func (sb *scaleBench) reconciles() int {
	n, _ := sb.reconcileState()
	return n
}

// reconcileState is how many reconciles of HAProxies the operator
// finished, and how many it is running or holds a reload for.
func (sb *scaleBench) reconcileState() (finished, running int) {
	req, err := http.NewRequest(http.MethodGet, "https://"+bed.metricsAddr+"/metrics", nil)
	if err != nil {
		sb.b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+sb.token)
	resp, err := sb.metrics.Do(req)
	if err != nil {
		sb.b.Fatalf("operator metrics: %v", err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		sb.b.Fatalf("operator metrics: %d %v", resp.StatusCode, err)
	}
	body := string(raw)
	var total, active float64
	for _, line := range strings.Split(body, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch {
		case strings.HasPrefix(line, `controller_runtime_reconcile_total{controller="haproxy",`):
			total += v
		case strings.HasPrefix(line, `controller_runtime_active_workers{controller="haproxy"}`):
			active += v
		case strings.HasPrefix(line, `haproxy_tcp_operator_reload_held{`):
			// A held reload is work to come, with no reconcile running.
			active += v
		}
	}
	return int(total), int(active)
}

// parallelDo runs do for 0..n-1 with at most workers at once.
func parallelDo(b *testing.B, workers, n int, do func(int) error) {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		first atomic.Value
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := do(i); err != nil {
					first.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		b.Fatal(err)
	}
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// pid is the running operator process's.
func (p *operatorProcess) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// procMemory is a process's resident memory now, at its peak, and the
// file-backed part of it now (pages of its binary, which the kernel maps
// in around each page touched; the rest is heap and stacks), in bytes.
func procMemory(pid int) (rss, peak, file int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		case "RssFile:":
			file = kb << 10
		}
	}
	return rss, peak, file
}

// procCPU is the CPU time a process has used.
func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// utime and stime are fields 14 and 15 of stat, 12 and 13 after the
	// command name, in clock ticks of 1/100 s.
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// haproxyWorkerRSS is the largest resident memory of an HAProxy worker
// started under dir (this run's instances, not another run's): a haproxy
// process whose parent is a haproxy process, its master.
func haproxyWorkerRSS(dir string) int64 {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	mine := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if strings.TrimSpace(string(comm)) != "haproxy" {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if !strings.Contains(string(cmdline), dir) {
			continue
		}
		mine[pid] = true
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		s := string(stat)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 1 {
			parent[pid], _ = strconv.Atoi(f[1])
		}
	}
	var most int64
	for pid := range mine {
		if mine[parent[pid]] {
			if rss, _, _ := procMemory(pid); rss > most {
				most = rss
			}
		}
	}
	return most
}

// scaleTable prints each figure as min / median / max over the runs.
func scaleTable(scale int, runs []scaleRun, floors []apiFloor) string {
	var sb strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&sb, "\nScale benchmark: %d mappings (%d cleartext on own ports, %d SNI passthrough, %d hosts per port), %d runs, %s, %s, %d CPUs\n\n",
		scale, scale/2, scale-scale/2, hostsPerPort, len(runs), time.Now().UTC().Format("2006-01-02"), host, numCPU())
	fmt.Fprintf(&sb, "| figure | min | median | max |\n|---|---|---|---|\n")
	spread := func(name string, v []time.Duration) {
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		fmt.Fprintf(&sb, "| %s | %s | %s | %s |\n", name, ms(v[0]), ms(v[len(v)/2]), ms(v[len(v)-1]))
	}
	dur := func(name string, get func(scaleRun) time.Duration) {
		var v []time.Duration
		for _, r := range runs {
			v = append(v, get(r))
		}
		spread(name, v)
	}
	num := func(name string, unit string, get func(scaleRun) float64) {
		var v []float64
		for _, r := range runs {
			v = append(v, get(r))
		}
		sort.Float64s(v)
		f := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) + unit }
		if unit == " MiB" {
			f = func(x float64) string { return fmt.Sprintf("%.0f MiB", x) }
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s |\n", name, f(v[0]), f(v[len(v)/2]), f(v[len(v)-1]))
	}
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	dur(fmt.Sprintf("weight changes in a row → traffic, p50 of %d", flips), func(r scaleRun) time.Duration { return r.WeightP50 })
	dur(fmt.Sprintf("weight changes in a row → traffic, p99 of %d", flips), func(r scaleRun) time.Duration { return r.WeightP99 })
	dur(fmt.Sprintf("weight changes in a row → traffic, max of %d", flips), func(r scaleRun) time.Duration { return r.WeightMax })
	dur(fmt.Sprintf("weight change alone → traffic, p50 of %d", flips), func(r scaleRun) time.Duration { return r.WeightAloneP50 })
	dur(fmt.Sprintf("weight change alone → traffic, p99 of %d", flips), func(r scaleRun) time.Duration { return r.WeightAloneP99 })
	dur(fmt.Sprintf("weight change alone → traffic, max of %d", flips), func(r scaleRun) time.Duration { return r.WeightAloneMax })
	dur(fmt.Sprintf("  the API server's answer to them, p50 of %d", flips), func(r scaleRun) time.Duration { return r.WeightPatchP50 })
	dur(fmt.Sprintf("  the API server's answer to them, p99 of %d", flips), func(r scaleRun) time.Duration { return r.WeightPatchP99 })
	num(fmt.Sprintf("reloads over the %d weight changes", 2*flips), "", func(r scaleRun) float64 { return float64(r.WeightReloads) })
	dur(fmt.Sprintf("endpoint change alone → traffic (median of %d)", changes), func(r scaleRun) time.Duration { return r.Endpoint })
	num("reloads over the endpoint changes", "", func(r scaleRun) float64 { return float64(r.EndpointReloads) })
	dur(fmt.Sprintf("new SNI host on an existing port → serving (median of %d)", changes), func(r scaleRun) time.Duration { return r.SNIHost })
	num(fmt.Sprintf("reloads for %d new SNI hosts", changes), "", func(r scaleRun) float64 { return float64(r.SNIHostReloads) })
	dur(fmt.Sprintf("new port → serving (median of %d)", changes), func(r scaleRun) time.Duration { return r.NewPort })
	dur("burst → all created (API server)", func(r scaleRun) time.Duration { return r.BurstCreated })
	dur("burst → all serving", func(r scaleRun) time.Duration { return r.BurstServing })
	dur("burst → all Programmed", func(r scaleRun) time.Duration { return r.BurstProgrammed })
	floor := func(name string, get func(apiFloor) time.Duration) {
		var v []time.Duration
		for _, f := range floors {
			v = append(v, get(f))
		}
		spread(name, v)
	}
	floor("  the API server alone, no operator: burst created", func(f apiFloor) time.Duration { return f.Created })
	floor("  the API server alone: then a status write for each", func(f apiFloor) time.Duration { return f.StatusWritten })
	floor("  the API server alone: both, the floor under all Programmed", func(f apiFloor) time.Duration { return f.Created + f.StatusWritten })
	busy := func(name string, get func(apiFloor) float64) {
		var v []float64
		for _, f := range floors {
			v = append(v, get(f))
		}
		sort.Float64s(v)
		fmt.Fprintf(&sb, "| %s | %.0f %% | %.0f %% | %.0f %% |\n", name, 100*v[0], 100*v[len(v)/2], 100*v[len(v)-1])
	}
	busy("  the machine's CPUs busy while it created them", func(f apiFloor) float64 { return f.CreatedBusy })
	busy("  the machine's CPUs busy while it took the status writes", func(f apiFloor) float64 { return f.StatusBusy })
	num("reloads during the burst", "", func(r scaleRun) float64 { return float64(r.BurstReloads) })
	num("mapping status writes for the burst (API server)", "", func(r scaleRun) float64 { return float64(r.BurstStatusWrites) })
	num("  of them refused as conflicts", "", func(r scaleRun) float64 { return float64(r.BurstStatusConflicts) })
	num("reconciles for the burst", "", func(r scaleRun) float64 { return float64(r.BurstReconciles) })
	num("reconciles in 5 s without changes", "", func(r scaleRun) float64 { return float64(r.IdleReconciles) })
	num("reconciles per weight change", "", func(r scaleRun) float64 { return r.ReconcilesPerChange })
	dur("operator CPU per weight change", func(r scaleRun) time.Duration { return r.CPUPerChange })
	num("operator RSS", " MiB", func(r scaleRun) float64 { return mib(r.OperatorRSS) })
	num("operator peak RSS", " MiB", func(r scaleRun) float64 { return mib(r.OperatorPeak) })
	num("of the operator RSS, file-backed (its binary)", " MiB", func(r scaleRun) float64 { return mib(r.OperatorFile) })
	num("HAProxy worker RSS", " MiB", func(r scaleRun) float64 { return mib(r.HAProxyRSS) })
	return sb.String()
}

// mappingStatusWrites are the TCPMapping status writes the API server
// answered so far, and how many of them it refused as conflicts, from its
// own request counter.
func mappingStatusWrites(b *testing.B) (all, conflicts int) {
	cs, err := kubernetes.NewForConfig(cluster.cfg)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatalf("read the API server's metrics: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `resource="tcpmappings"`) ||
			!strings.Contains(line, `subresource="status"`) || !strings.Contains(line, `verb="PUT"`) {
			continue
		}
		n, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			b.Fatalf("API server metric %q: %v", line, err)
		}
		all += int(n)
		if strings.Contains(line, `code="409"`) {
			conflicts += int(n)
		}
	}
	return all, conflicts
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func numCPU() int {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(raw), "processor\t:")
}
