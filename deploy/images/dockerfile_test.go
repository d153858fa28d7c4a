package images

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Dockerfile")
	src := "# a comment\nFROM a AS build\nRUN one \\\n    && two\n\n# between\nfrom b\nUSER 1:1\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Instruction{
		{Command: "FROM", Args: "a AS build", Stage: 1, Line: 2},
		{Command: "RUN", Args: "one && two", Stage: 1, Line: 3},
		{Command: "FROM", Args: "b", Stage: 2, Line: 7},
		{Command: "USER", Args: "1:1", Stage: 2, Line: 8},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse = %+v, want %+v", got, want)
	}
	if s := Steps("a && b &&  c"); !reflect.DeepEqual(s, []string{"a", "b", "c"}) {
		t.Errorf("Steps = %q", s)
	}
	if err := os.WriteFile(path, []byte("FROM a\nRUN x \\\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(path); err == nil || !strings.Contains(err.Error(), "line continuation") {
		t.Errorf("a dangling continuation: error %v, want one naming it", err)
	}
}

// setcapStep is the step of the instance image that lets a non-root
// haproxy bind ports below 1024.
const setcapStep = "setcap 'cap_net_bind_service=+ep' /usr/sbin/haproxy"

// numericUser matches USER uid[:gid] with numbers: Kubernetes verifies
// runAsNonRoot only for a numeric user.
var numericUser = regexp.MustCompile(`^([0-9]+)(:([0-9]+))?$`)

// finalUser is the USER of the image's last stage and its line; it fails
// the test when the stage has none.
func finalUser(t *testing.T, stage []Instruction) (Instruction, int) {
	t.Helper()
	at := -1
	for i, in := range stage {
		if in.Command == "USER" {
			at = i
		}
	}
	if at < 0 {
		t.Fatalf("the image's stage has no USER: it would run as root")
	}
	u := stage[at]
	m := numericUser.FindStringSubmatch(u.Args)
	if m == nil {
		t.Fatalf("line %d: USER %s is not a numeric uid[:gid]; Kubernetes cannot verify runAsNonRoot for a name", u.Line, u.Args)
	}
	for _, id := range []string{m[1], m[3]} {
		if n, _ := strconv.Atoi(id); id != "" && n == 0 {
			t.Fatalf("line %d: USER %s is root", u.Line, u.Args)
		}
	}
	return u, at
}

// TestInstanceImage: the HAProxy instance image installs haproxy, gives
// /usr/sbin/haproxy the file capability cap_net_bind_service and checks
// it, then runs as a numeric non-root user.
func TestInstanceImage(t *testing.T) {
	ins, err := Parse("../../haproxy.Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stage := FinalStage(ins)
	_, userAt := finalUser(t, stage)
	installed, capped, checked := -1, -1, -1
	for i, in := range stage {
		if in.Command != "RUN" {
			continue
		}
		for _, s := range Steps(in.Args) {
			switch {
			case strings.HasPrefix(s, "apt-get install") && regexp.MustCompile(`(^| )haproxy( |$)`).MatchString(s):
				installed = i
				// https:// upstreams without a CA Secret are verified
				// against the system roots (model.SystemCAFile).
				if !regexp.MustCompile(`(^| )ca-certificates( |$)`).MatchString(s) {
					t.Errorf("line %d: the instance image installs no ca-certificates, so upstreams cannot be verified against the system roots", in.Line)
				}
			case s == setcapStep:
				if installed < 0 {
					t.Errorf("line %d: %s before haproxy is installed", in.Line, s)
				}
				capped = i
			case strings.HasPrefix(s, "getcap /usr/sbin/haproxy") && strings.Contains(s, "cap_net_bind_service"):
				checked = i
			}
		}
	}
	if capped < 0 {
		t.Fatalf("haproxy.Dockerfile: no RUN step %q in the image's stage", setcapStep)
	}
	if checked < 0 {
		t.Errorf("haproxy.Dockerfile: no getcap step checks the capability, so a build where setcap did nothing would pass")
	}
	if capped > userAt {
		t.Errorf("haproxy.Dockerfile: setcap runs after USER, as a user who may not set capabilities")
	}
	for _, in := range stage[capped+1:] {
		if in.Command == "COPY" || in.Command == "ADD" {
			if strings.Contains(in.Args, "/usr/sbin/haproxy") {
				t.Errorf("line %d: %s replaces /usr/sbin/haproxy after setcap, dropping its capability", in.Line, in.Command)
			}
		}
	}
}

// TestOperatorImage: the operator image runs as a numeric non-root user.
func TestOperatorImage(t *testing.T) {
	ins, err := Parse("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	finalUser(t, FinalStage(ins))
}
