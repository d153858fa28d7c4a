package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/convert"
)

func init() {
	Commands["convert"] = Command{Summary: convertSummary, Run: Convert}
}

const convertSummary = "turn Ambassador/Emissary TCPMapping, TLSContext and Module YAML into this project's resources"

// Convert reads Ambassador YAML from files (or stdin) and prints the
// equivalent resources; what it could not carry over goes to stderr.
func Convert(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("convert", stderr)
	var files stringList
	fs.Var(&files, "f", "Ambassador YAML file, - for stdin (repeatable; default stdin)")
	ns := fs.String("namespace", "default", "namespace for resources that name none (the Ambassador namespace)")
	if err := parseFlags(fs, args, convertSummary, stdout); err != nil {
		return err
	}
	files = append(files, fs.Args()...)
	if len(files) == 0 {
		files = []string{"-"}
	}
	var data []byte
	for _, f := range files {
		var b []byte
		var err error
		if f == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(f)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", f, err)
		}
		data = append(append(data, b...), []byte("\n---\n")...)
	}
	res, err := convert.Convert(data, convert.Options{Namespace: *ns})
	if err != nil {
		return err
	}
	for _, n := range res.Notes {
		fmt.Fprintln(stderr, n)
	}
	out, err := convert.YAML(res.Objects)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
