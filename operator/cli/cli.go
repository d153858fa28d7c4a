// Package cli holds the subcommands of the haproxy-tcp-operator binary:
// argument parsing and wiring only, so the thin main stays thin and each
// subcommand can be run from tests.
package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Command is one subcommand.
type Command struct {
	Summary string
	Run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// Commands lists the subcommands by name; the first argument picks one.
var Commands = map[string]Command{
	"render": {Summary: "print the haproxy.cfg for resources in YAML files", Run: Render},
}

// DefaultCommand runs when the first argument names no subcommand.
var DefaultCommand = "render"

// Main runs the subcommand args[0] names and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	name := DefaultCommand
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		usage(stdout)
		return 0
	}
	cmd, found := Commands[name]
	if !found {
		fmt.Fprintf(stderr, "haproxy-tcp-operator: unknown command %q\n", name)
		usage(stderr)
		return 2
	}
	if err := cmd.Run(ctx, args, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "haproxy-tcp-operator %s: %v\n", name, err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: haproxy-tcp-operator <command> [flags]")
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(Commands))
	for n := range Commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, Commands[n].Summary)
	}
}
