// Package golden compares test output with files under testdata and
// rewrites them when tests run with -update. It also loads the shared
// translation test cases, so every layer tests the same inputs.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

var update = flag.Bool("update", false, "rewrite golden files with the current output")

// Assert compares got with the file at path, or writes it with -update.
func Assert(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test with -update to create it): %v", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the output (run go test with -update to accept):\n%s", path, Diff(string(want), string(got)))
	}
}

// Diff shows the first lines that differ, enough to see what changed.
func Diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			if shown++; shown == 10 {
				break
			}
		}
	}
	return b.String()
}

// Case is one translation test case: testdata/<name>.in.yaml with the
// shared objects of testdata/common.
type Case struct {
	Name     string
	Snapshot snapshot.Snapshot
}

// TranslateTestdata is the folder of the shared cases, relative to a
// package under operator/.
const TranslateTestdata = "../translate/testdata"

// Cases loads every case in dir.
func Cases(t *testing.T, dir string) []Case {
	t.Helper()
	inputs, err := filepath.Glob(filepath.Join(dir, "*.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(inputs)
	var out []Case
	for _, in := range inputs {
		objs, err := snapshot.ReadPaths([]string{filepath.Join(dir, "common"), in})
		if err != nil {
			t.Fatalf("load %s: %v", in, err)
		}
		snaps := objs.ForEachHAProxy()
		if len(snaps) != 1 {
			t.Fatalf("%s: want one HAProxy per case, got %d", in, len(snaps))
		}
		out = append(out, Case{Name: strings.TrimSuffix(filepath.Base(in), ".in.yaml"), Snapshot: snaps[0]})
	}
	if len(out) == 0 {
		t.Fatalf("no test cases in %s", dir)
	}
	return out
}
