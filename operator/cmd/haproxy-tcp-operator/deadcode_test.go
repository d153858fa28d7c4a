package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLinkerDropsUnusedMethods keeps the binary small: a reachable call
// of reflect's Method or MethodByName with a name not known at compile
// time (text/template's, for one) makes the linker keep every exported
// method of every type, which made the operator's code 13 MB larger and
// its resident memory 7 MiB larger. The linker marks such a function
// <ReflectMethod> in its dependency dump.
func TestLinkerDropsUnusedMethods(t *testing.T) {
	cmd := exec.Command("go", "build", "-ldflags=-dumpdep", "-o", filepath.Join(t.TempDir(), "bin"), ".")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out.String())
	}
	var found []string
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if line := sc.Text(); strings.Contains(line, "<ReflectMethod>") {
			found = append(found, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(found) > 0 {
		t.Errorf("the linker keeps every exported method: these calls reach reflect's Method or MethodByName with a name it cannot know (use a template engine without method calls, or a constant name):\n%s", strings.Join(found[:min(len(found), 20)], "\n"))
	}
}
