package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/render"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

const renderSummary = "print the haproxy.cfg for resources in YAML files"

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// Render prints the haproxy.cfg of each HAProxy in the files named by -f,
// and the verdict on every rejected object on stderr.
func Render(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("render", stderr)
	var files stringList
	fs.Var(&files, "f", "YAML file or directory of TCPMapping, TLSContext, HAProxy, Secret, Service and EndpointSlice resources (repeatable)")
	only := fs.String("haproxy", "", "render only this HAProxy (namespace/name)")
	certDir := fs.String("cert-dir", "", "also write the certificate files the configuration loads into this directory")
	mapDir := fs.String("map-dir", "", "also write the map files the configuration loads (SNI hosts, weights) into this directory; run haproxy with TCPM_MAP_DIR set to it")
	if err := parseFlags(fs, args, renderSummary, stdout); err != nil {
		return err
	}
	files = append(files, fs.Args()...)
	if len(files) == 0 {
		return errors.New("no input: give -f <file or directory>")
	}
	objs, err := snapshot.ReadPaths(files)
	if err != nil {
		return err
	}
	rendered := 0
	for _, snap := range objs.ForEachHAProxy() {
		name := snap.HAProxy.Namespace + "/" + snap.HAProxy.Name
		if *only != "" && *only != name {
			continue
		}
		res := translate.Translate(snap)
		reportRejections(stderr, res)
		cfg, err := render.Config(res.Config)
		if err != nil {
			return err
		}
		if _, err := stdout.Write(cfg); err != nil {
			return err
		}
		if *certDir != "" {
			if err := os.MkdirAll(*certDir, 0o700); err != nil {
				return fmt.Errorf("write certificates: %w", err)
			}
			for _, c := range res.Config.Certificates {
				if c.Keep {
					// Only the instances hold its last good content.
					continue
				}
				if err := os.WriteFile(filepath.Join(*certDir, c.File), c.PEM.Reveal(), 0o600); err != nil {
					return fmt.Errorf("write certificates: %w", err)
				}
			}
		}
		if *mapDir != "" {
			if err := writeMaps(*mapDir, res.Config.Maps); err != nil {
				return err
			}
		}
		rendered++
	}
	if rendered == 0 {
		return fmt.Errorf("no HAProxy %q in the input", *only)
	}
	return nil
}

// writeMaps writes each map file as an instance's map directory holds it.
func writeMaps(dir string, maps []model.Map) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write maps: %w", err)
	}
	for _, m := range maps {
		if err := os.WriteFile(filepath.Join(dir, m.Name), m.Content(), 0o644); err != nil {
			return fmt.Errorf("write map %s: %w", m.Name, err)
		}
	}
	return nil
}

func reportRejections(w io.Writer, res translate.Result) {
	if !res.HAProxy.Status {
		fmt.Fprintf(w, "HAProxy %s: %s: %s\n", res.Config.Name, res.HAProxy.Reason, res.HAProxy.Message)
	}
	for _, c := range res.TLSContexts {
		if !c.ResolvedRefs.Status {
			fmt.Fprintf(w, "TLSContext %s/%s rejected: %s: %s\n", c.Namespace, c.Name, c.ResolvedRefs.Reason, c.ResolvedRefs.Message)
		}
	}
	for _, m := range res.Mappings {
		switch {
		case !m.Accepted.Status:
			fmt.Fprintf(w, "TCPMapping %s/%s rejected: %s: %s\n", m.Namespace, m.Name, m.Accepted.Reason, m.Accepted.Message)
		case !m.ResolvedRefs.Status:
			fmt.Fprintf(w, "TCPMapping %s/%s rejected: %s: %s\n", m.Namespace, m.Name, m.ResolvedRefs.Reason, m.ResolvedRefs.Message)
		}
	}
}
