// Package cli holds the subcommands of the haproxy-tcp-operator binary:
// argument parsing and wiring only, so the thin main stays thin and each
// subcommand can be run from tests.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Program is the binary's name in usage and messages; the development
// build sets its own.
var Program = "haproxy-tcp-operator"

// Command is one subcommand.
type Command struct {
	Summary string
	// Run runs the command; ctx carries the logger the logging flags
	// configured (logr.FromContextOrDiscard).
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// Commands lists the subcommands by name; the first argument picks one.
var Commands = map[string]Command{
	"render": {Summary: renderSummary, Run: Render},
}

// DefaultCommand runs when the first argument names no subcommand.
var DefaultCommand = "render"

// devLogging makes console-encoded logs without error stack traces the
// default, for the development build (see EnableLocalCluster).
var devLogging bool

// version is the release this binary is, set at link time:
//
//	go build -ldflags "-X github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/cli.version=v0.1.0"
var version string

// Version is the release set at link time or, in a development build,
// "dev" plus the VCS revision the Go toolchain stamped into the binary
// (".dirty" when the tree had uncommitted changes).
func Version() string {
	if version != "" {
		return version
	}
	v := "dev"
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return v
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v += "+" + rev
	if modified == "true" {
		v += ".dirty"
	}
	return v
}

// Exit codes of Main.
const (
	exitOK    = 0
	exitError = 1
	// exitUsage is the code of a bad command line, as the flag package
	// and most Unix tools use it.
	exitUsage = 2
)

// usageError is a mistake in the command line (an unknown flag, a bad
// value); Main exits with exitUsage for it.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// errHelpShown is what parseFlags returns for -h/--help once it has
// printed the whole help, logging flags included, on stdout.
var errHelpShown = fmt.Errorf("help shown: %w", flag.ErrHelp)

// newFlagSet returns a flag set whose errors go to stderr, for parseFlags.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args into fs. For -h/--help it prints the command's
// help on stdout and returns errHelpShown; for a bad flag it prints the
// flag package's message and the usage on stderr and returns a
// usageError, so Main exits 0 and 2 respectively.
func parseFlags(fs *flag.FlagSet, args []string, summary string, stdout io.Writer) error {
	stderr := fs.Output()
	// Printed below, on the stream that fits.
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		commandHelp(stdout, fs, summary)
		return errHelpShown
	default:
		commandHelp(stderr, fs, summary)
		return usageError{err}
	}
}

func commandHelp(w io.Writer, fs *flag.FlagSet, summary string) {
	fmt.Fprintf(w, "Usage: %s %s [flags]\n\n%s\n\nFlags:\n", Program, fs.Name(), summary)
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
	loggingHelp(w)
}

// loggingFlags returns the flags of controller-runtime's zap logger
// (-zap-log-level, -zap-encoder, ...) bound to opts. Every command takes
// them, before or after its name.
func loggingFlags(opts *zap.Options) *flag.FlagSet {
	fs := flag.NewFlagSet("logging", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	opts.BindFlags(fs)
	return fs
}

func loggingHelp(w io.Writer) {
	fmt.Fprintln(w, "\nLogging flags (every command):")
	fs := loggingFlags(&zap.Options{})
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// splitLoggingFlags takes the logging flags out of args, wherever they
// stand before "--", so they work before and after the command name and
// whatever flag parser the command uses.
func splitLoggingFlags(fs *flag.FlagSet, args []string) (logArgs, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return logArgs, append(rest, args[i:]...)
		}
		var f *flag.Flag
		name, _, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if strings.HasPrefix(a, "-") {
			f = fs.Lookup(name)
		}
		if f == nil {
			rest = append(rest, a)
			continue
		}
		logArgs = append(logArgs, a)
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !hasValue && !(ok && b.IsBoolFlag()) && i+1 < len(args) {
			i++
			logArgs = append(logArgs, args[i])
		}
	}
	return logArgs, rest
}

// Main runs the subcommand args[0] names and returns the exit code: 0 on
// success and for --help, 1 when the command fails, 2 for a bad command
// line.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var logOpts zap.Options
	logFlags := loggingFlags(&logOpts)
	if devLogging {
		// For a person at a terminal: readable lines, and no stack
		// traces for errors the message already explains. Flags given
		// on the command line are parsed after, and win.
		for _, f := range [][2]string{{"zap-encoder", "console"}, {"zap-stacktrace-level", "panic"}} {
			if err := logFlags.Set(f[0], f[1]); err != nil {
				panic(fmt.Sprintf("default %s=%s: %v", f[0], f[1], err))
			}
		}
	}
	logArgs, args := splitLoggingFlags(logFlags, args)
	if err := logFlags.Parse(logArgs); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", Program, err)
		usage(stderr)
		return exitUsage
	}
	logger := zap.New(zap.UseFlagOptions(&logOpts), zap.WriteTo(stderr))
	ctrl.SetLogger(logger)
	// client-go logs through klog: send it to the same logger, so its lines
	// (a request cut short at shutdown, say) have the operator's format
	// instead of klog's file:line header.
	klog.SetLogger(logger.WithName("client-go"))
	ctx = logr.NewContext(ctx, logger)

	name := ""
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			usage(stdout)
			return exitOK
		case "-version", "--version", "version":
			fmt.Fprintf(stdout, "%s %s\n", Program, Version())
			return exitOK
		case "help":
			if len(args) < 2 {
				usage(stdout)
				return exitOK
			}
			// help <command> is <command> --help.
			args = []string{args[1], "--help"}
		}
		if !strings.HasPrefix(args[0], "-") {
			name, args = args[0], args[1:]
		}
	}
	if name == "" {
		name = DefaultCommand
		logger.Info("No command given: running the default command "+name+"; "+Program+" --help lists the commands",
			"command", name, "summary", Commands[name].Summary)
	}
	cmd, found := Commands[name]
	if !found {
		fmt.Fprintf(stderr, "%s: unknown command %q\n", Program, name)
		usage(stderr)
		return exitUsage
	}
	err := cmd.Run(ctx, args, stdout, stderr)
	var bad usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		if err != errHelpShown {
			// The command printed its own flags; add the shared ones.
			loggingHelp(stderr)
		}
		return exitOK
	case errors.As(err, &bad):
		fmt.Fprintf(stderr, "%s %s: %v\n", Program, name, err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "%s %s: %v\n", Program, name, err)
		return exitError
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "%s runs HAProxy instances for TCPMapping, TLSContext and HAProxy resources.\n\n", Program)
	fmt.Fprintf(w, "Usage: %s [command] [flags]\n\nCommands:\n", Program)
	names := make([]string, 0, len(Commands))
	for n := range Commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		summary := Commands[n].Summary
		if n == DefaultCommand {
			summary += " (the default when no command is given)"
		}
		fmt.Fprintf(w, "  %-10s %s\n", n, summary)
	}
	fmt.Fprintf(w, "\nFlags:\n  -h, --help     print this help\n  --version      print the version\n")
	loggingHelp(w)
	fmt.Fprintf(w, "\nRun \"%s <command> --help\" for the flags of a command.\n", Program)
}
