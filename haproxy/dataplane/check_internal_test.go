package dataplane

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goldenConfig is a rendered configuration of the operator's golden tests.
func goldenConfig(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "operator", "render", "testdata", name+".haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	return withVersion(string(raw), 3)
}

// replaceFirst replaces the first line of text that starts with prefix
// (after indentation) with line.
func replaceFirst(t *testing.T, text, prefix, line string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimLeft(l, " "), prefix) {
			lines[i] = line
			return strings.Join(lines, "\n")
		}
	}
	t.Fatalf("no line starts with %q", prefix)
	return ""
}

func TestIncrementalCheckTakesOnlyServerChanges(t *testing.T) {
	good := goldenConfig(t, "limits")
	tests := map[string]struct {
		next string
		ok   bool
	}{
		"the same text, another version": {next: withVersion(good, 4), ok: true},
		"a server moves": {
			next: replaceFirst(t, good, "server ", "    server default:capped:10.0.0.11:8080 10.9.9.9:9090 weight 1 maxconn 10"), ok: true,
		},
		"a server comes": {
			next: strings.Replace(good, "\n    server ", "\n    server extra 10.9.9.8:80 weight 1\n    server ", 1), ok: true,
		},
		"a backend's description changes": {
			next: strings.Replace(good, "    description TCPMapping default/stable\n", "    description TCPMapping default/stable, default/more\n", 1), ok: true,
		},
		"a frontend's description changes": {
			next: replaceFirst(t, good, "description TCPMapping default/canary, default/stable", "    description TCPMapping default/other"), ok: true,
		},
		"a frontend's description and route change": {
			next: strings.Replace(replaceFirst(t, good, "description TCPMapping default/canary, default/stable", "    description TCPMapping default/other"),
				"tcpm-fe-4203-weights.map", "tcpm-fe-4299-weights.map", 1),
		},
		"a listen section's server moves": {
			next: strings.Replace(good, "listen tcpm-be-default:guarded\n", "listen tcpm-be-default:guarded\n    server added 10.9.9.7:80 weight 1\n", 1), ok: true,
		},
		"a listen section's bind changes": {
			next: strings.Replace(good, ":4201\"\n", ":4209\"\n", 1),
		},
		"a backend setting changes": {next: replaceFirst(t, good, "balance ", "    balance leastconn")},
		"a frontend changes":        {next: strings.Replace(good, "frontend tcpm-fe-", "frontend tcpm-fx-", 1)},
		"a global setting changes":  {next: strings.Replace(good, "hard-stop-after 900000", "hard-stop-after 1000", 1)},
		"a section comes":           {next: good + "\nbackend extra\n    server a 10.0.0.1:80\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			part, ok := incrementalCheck(good, tc.next)
			if ok != tc.ok {
				t.Fatalf("incrementalCheck ok = %v, want %v", ok, tc.ok)
			}
			if ok && strings.Contains(part, "frontend ") {
				t.Errorf("the part to check holds a frontend:\n%s", part)
			}
		})
	}
}

// TestIncrementalCheckIsWhatHAProxyJudges runs haproxy -c on the part:
// a moved server passes, a server HAProxy cannot read fails.
func TestIncrementalCheckIsWhatHAProxyJudges(t *testing.T) {
	bin := os.Getenv("HAPROXY_BIN")
	if bin == "" {
		bin = "/usr/sbin/haproxy"
	}
	if _, err := exec.LookPath(bin); err != nil {
		t.Fatalf("haproxy not found (%v): run make test, which installs it", err)
	}
	check := func(text string) error {
		path := filepath.Join(t.TempDir(), "part.cfg")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput()
		if err != nil {
			t.Logf("haproxy -c: %s", out)
		}
		return err
	}
	for _, name := range []string{"limits", "health-check", "balance", "weights-remainder"} {
		t.Run(name, func(t *testing.T) {
			good := goldenConfig(t, name)
			moved := replaceFirst(t, good, "server ", "    server moved 10.9.9.9:9090 weight 1")
			part, ok := incrementalCheck(good, moved)
			if !ok {
				t.Fatal("a moved server needs the whole text checked")
			}
			if err := check(part); err != nil {
				t.Errorf("haproxy refused the part of a valid change: %v", err)
			}
			broken := replaceFirst(t, good, "server ", "    server moved 10.9.9.9:99999999 weight 1")
			part, ok = incrementalCheck(good, broken)
			if !ok {
				t.Fatal("a changed server line needs the whole text checked")
			}
			if err := check(part); err == nil {
				t.Error("haproxy accepted the part with a server it cannot read")
			}
		})
	}
}

func TestWithVersionWritesOneVersionLine(t *testing.T) {
	for in, want := range map[string]string{
		"global\n":               "# _version=5\nglobal\n",
		"":                       "# _version=5\n",
		"# _version=3\nglobal\n": "# _version=5\nglobal\n",
		"global\n# _md5hash=abc\n    maxconn 10\n":    "# _version=5\nglobal\n    maxconn 10\n",
		"# _version=3\n# _version=4\nglobal\n":        "# _version=5\nglobal\n",
		"global\n    # _version= is not at the start": "# _version=5\nglobal\n    # _version= is not at the start",
	} {
		if got := withVersion(in, 5); got != want {
			t.Errorf("withVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCaptureTellsTheLoadsOutcome: the lines a reload waits for before it
// asks the master CLI, split across writes as a pipe may deliver them.
func TestCaptureTellsTheLoadsOutcome(t *testing.T) {
	for _, tc := range []struct {
		name                string
		writes              []string
		succeeded, finished bool
	}{
		{"success", []string{"[NOTICE]   (1) : New worker (2) forked\n", "[NOTICE]   (1) : Loading suc", "cess.\n"}, true, false},
		{"failure", []string{"[ALERT]    (1) : config : parsing [h.cfg:3]\n[ALERT]    (1) : Loading failure!\n"}, false, true},
		{"nothing yet", []string{"[NOTICE]   (1) : Reloading HAProxy\n", "[NOTICE]   (1) : Loading success."}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tap := newOutputTap(io.Discard)
			c := tap.capture()
			for _, w := range tc.writes {
				if _, err := tap.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
			}
			if c.succeeded() != tc.succeeded || c.finished() != tc.finished {
				t.Errorf("succeeded %v, finished %v; want %v, %v", c.succeeded(), c.finished(), tc.succeeded, tc.finished)
			}
		})
	}
}
