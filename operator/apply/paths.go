package apply

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"strings"

	parser "github.com/haproxytech/client-native/v5/config-parser"
	"github.com/haproxytech/client-native/v5/config-parser/options"
	"github.com/haproxytech/client-native/v5/config-parser/types"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
)

// The rendered configuration names an instance's directories through
// environment variables (templates/haproxy.cfg.tmpl), so one text serves
// every instance. HAProxy expands them; this project's dataplane sets
// them for HAProxy and for its own runtime client. Another Data Plane API
// (the official dataplaneapi) reads the runtime socket's path in the
// stats socket line as written, ${TCPM_RUN_DIR} included, and keeps
// certificates and general files in directories of its own. Such an
// instance gets the text with its directories written in.
const (
	envRunDir  = "TCPM_RUN_DIR"
	envCertDir = "TCPM_CERT_DIR"
	envMapDir  = "TCPM_MAP_DIR"
	// DefaultRunDir is where HAProxy keeps its sockets on an instance
	// whose configuration names no runtime socket yet: the template's
	// presetenv value.
	DefaultRunDir = "/var/run/haproxy-tcp"
	// DefaultCertDir is crt-base on an instance whose API has not yet
	// said where it stores certificates: the template's presetenv value.
	DefaultCertDir = "/etc/haproxy-tcp/certs"
	// DefaultMapDir is where map files are loaded from on an instance
	// whose API has not yet said where it stores them: the template's
	// presetenv value.
	DefaultMapDir = "/etc/haproxy-tcp/maps"
)

// dirs are where one instance keeps what the configuration names.
type dirs struct {
	// run holds the runtime socket (stats socket) and internal sockets.
	run string
	// cert is crt-base: where the API stores certificates with keys.
	cert string
	// ca is ca-base: where CA bundles and CRLs are stored.
	ca string
	// maps is where the API stores map files.
	maps string
}

func (d dirs) String() string {
	return "run=" + d.run + " cert=" + d.cert + " ca=" + d.ca + " maps=" + d.maps
}

// literalPath is a directory HAProxy reads unquoted: absolute, and with
// nothing its configuration parser would split or expand.
var literalPath = regexp.MustCompile(`^/[A-Za-z0-9._+@:/-]*$`)

func checkDir(what, dir string) error {
	if !literalPath.MatchString(dir) || path.Clean(dir) != dir {
		return fmt.Errorf("the instance's %s directory %q cannot be written in haproxy.cfg: it must be an absolute, clean path of letters, digits and . _ + @ : / -", what, dir)
	}
	return nil
}

// quotedWithDir is a double-quoted word of the rendered text that names a
// directory variable.
var quotedWithDir = regexp.MustCompile(`"([^"]*\$\{(` + envRunDir + `|` + envCertDir + `|` + envMapDir + `)\}[^"]*)"`)

// localize writes d into text where the rendered configuration names the
// instance's directories, and the names files are stored under
// (StorageName) where a bind or server line loads them: the presetenv defaults, crt-base, ca-base (the
// CA directory, which may differ from the certificate one) and every
// quoted word naming ${TCPM_RUN_DIR}, ${TCPM_CERT_DIR} or ${TCPM_MAP_DIR},
// unquoted so the API reads the stats socket and map files as plain
// paths. Other variables
// (${TCPM_BIND_ADDR}) stay for HAProxy to expand. The result depends only
// on text and d: instances with the same directories get the same bytes.
func localize(text []byte, d dirs) ([]byte, error) {
	for _, c := range []struct{ what, dir string }{{"runtime", d.run}, {"certificate", d.cert}, {"CA", d.ca}, {"map", d.maps}} {
		if err := checkDir(c.what, c.dir); err != nil {
			return nil, err
		}
	}
	expand := strings.NewReplacer("${"+envRunDir+"}", d.run, "${"+envCertDir+"}", d.cert, "${"+envMapDir+"}", d.maps)
	var b strings.Builder
	for _, line := range strings.SplitAfter(string(text), "\n") {
		body := strings.TrimRight(line, "\n")
		indent := body[:len(body)-len(strings.TrimLeft(body, " \t"))]
		f := strings.Fields(body)
		switch {
		case len(f) == 3 && f[0] == "presetenv" && f[1] == envRunDir:
			body = indent + "presetenv " + envRunDir + " " + d.run
		case len(f) == 3 && f[0] == "presetenv" && f[1] == envCertDir:
			body = indent + "presetenv " + envCertDir + " " + d.cert
		case len(f) == 3 && f[0] == "presetenv" && f[1] == envMapDir:
			body = indent + "presetenv " + envMapDir + " " + d.maps
		case len(f) == 2 && f[0] == "crt-base":
			body = indent + "crt-base " + d.cert
		case len(f) == 2 && f[0] == "ca-base":
			body = indent + "ca-base " + d.ca
		case len(f) > 0 && loadsFiles[f[0]]:
			body = renameFiles(quotedWithDir.ReplaceAllStringFunc(body, func(q string) string {
				return expand.Replace(strings.Trim(q, `"`))
			}))
		default:
			body = quotedWithDir.ReplaceAllStringFunc(body, func(q string) string {
				return expand.Replace(strings.Trim(q, `"`))
			})
		}
		b.WriteString(body)
		if strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
	return []byte(b.String()), nil
}

// storedDirs reads from a stored configuration the directories it names
// literally: the runtime socket's (the first UNIX stats socket), crt-base
// and ca-base. Unknown ones are "". An instance keeps what it was set up
// with, and after the first push what the operator wrote, so reading them
// back is stable.
func storedDirs(text string) dirs {
	var d dirs
	p, err := parser.New(options.String(text))
	if err != nil {
		return d
	}
	literal := func(v string) string {
		v = strings.Trim(v, `"'`)
		if checkDir("", v) != nil {
			return ""
		}
		return v
	}
	if data, err := p.Get(parser.Global, parser.GlobalSectionName, "stats socket"); err == nil {
		if socks, ok := data.([]types.Socket); ok {
			for _, s := range socks {
				sp := strings.TrimPrefix(strings.Trim(s.Path, `"'`), "unix@")
				if dir := literal(path.Dir(sp)); dir != "" && strings.HasPrefix(sp, "/") {
					d.run = dir
					break
				}
			}
		}
	}
	word := func(name string) string {
		data, err := p.Get(parser.Global, parser.GlobalSectionName, name)
		if err != nil {
			return ""
		}
		if s, ok := data.(*types.StringC); ok {
			return literal(s.Value)
		}
		return ""
	}
	d.cert, d.ca = word("crt-base"), word("ca-base")
	return d
}

// dirOf is the directory of a file path an API answered, or "" when it
// is not an absolute path.
func dirOf(file string) string {
	if !strings.HasPrefix(file, "/") {
		return ""
	}
	return path.Dir(file)
}

// loadsFiles are the lines whose options name stored files: binds
// (certificates, client CAs, CRLs) and servers (upstream CAs, client
// certificates towards the upstream).
var loadsFiles = map[string]bool{"bind": true, "server": true, "default-server": true}

// fileOptions are the bind and server options whose argument is a file.
var fileOptions = map[string]bool{"crt": true, "ca-file": true, "crl-file": true}

// storedFile says whether an option's argument names a stored file: an
// absolute path (the system CA bundle) is the instance's own.
func storedFile(option, arg string) bool {
	return fileOptions[option] && !strings.HasPrefix(arg, "/")
}

// renameFiles writes the stored names of the files a bind or server line
// loads.
func renameFiles(line string) string {
	words := strings.Split(line, " ")
	for i := 1; i < len(words); i++ {
		if storedFile(words[i-1], words[i]) {
			words[i] = StorageName(words[i])
		}
	}
	return strings.Join(words, " ")
}

// storedNames maps the stored name of every file the binds and servers of a rendered
// configuration load back to the configuration's name, where they differ.
func storedNames(text []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(text), "\n") {
		words := strings.Fields(line)
		if len(words) == 0 || !loadsFiles[words[0]] {
			continue
		}
		for i := 1; i < len(words); i++ {
			if storedFile(words[i-1], words[i]) {
				if n := StorageName(words[i]); n != words[i] {
					out[n] = words[i]
				}
			}
		}
	}
	return out
}

// StorageName is the name the configuration's file is stored under on a
// Data Plane API other than this project's dataplane (which keeps file):
// before its extension, letters, digits, - and _ are kept and any other
// byte becomes _ and two hex digits (ns_ctx.ca.pem is stored as
// ns_ctx_2eca.pem). The official API replaces such characters in a name
// it is given by _ (ns_ctx.ca.pem would be stored as ns_ctx_ca.pem, and
// a TLSContext a.b would collide with a-b's CA); this leaves it nothing
// to change, so the name the configuration uses is the stored one, and
// stays one to one for the operator's file names (namespace_name..., with
// no _ in Kubernetes names). Apply checks it against the name the API
// answers.
func StorageName(file string) string {
	ext := path.Ext(file)
	base := strings.TrimSuffix(file, ext)
	var b strings.Builder
	for i := 0; i < len(base); i++ {
		c := base[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return b.String() + ext
}

// readable writes the configuration's file names back into HAProxy's
// lines of a refusal, where the instance stores files under other names,
// so the lines name what the caller knows.
func (st *instanceState) readable(err error, rendered []byte) error {
	var r *RefusedError
	if !st.literal || !errors.As(err, &r) {
		return err
	}
	var pairs []string
	for stored, file := range storedNames(rendered) {
		pairs = append(pairs, stored, file)
	}
	back := strings.NewReplacer(pairs...)
	lines := make([]string, len(r.Lines))
	for i, l := range r.Lines {
		lines[i] = back.Replace(l)
	}
	return &RefusedError{Stage: r.Stage, Lines: lines, Err: r.Err}
}

// detect reads, once per instance, what its API is: /v2/info names this
// project's dataplane (runtime certificate swap, directories expanded
// from the environment); any other API reads paths as written, and its
// storage/general, when it answers, takes CA bundles and CRLs.
func (st *instanceState) detect(ctx context.Context, inst Instance) error {
	if st.apiKnown {
		return nil
	}
	info, err := inst.Info(ctx)
	var apiErr *client.APIError
	if err != nil && !errors.As(err, &apiErr) {
		return fmt.Errorf("read API info: %w", err)
	}
	// An API that answers /v2/info with an error is not ours.
	ours := err == nil && info.API != nil && strings.Contains(info.API.Version, "haproxy-tcp-operator")
	st.runtimeCertSwap, st.literal, st.generalStorage = ours, !ours, false
	if st.literal {
		files, err := inst.GeneralFiles(ctx)
		switch {
		case err == nil:
			st.generalStorage = true
			for _, f := range files {
				if f != nil {
					st.learn(generalStore, f.File)
				}
			}
		case errors.As(err, &apiErr) && (apiErr.Status == http.StatusNotFound || apiErr.Status == http.StatusMethodNotAllowed || apiErr.Status == http.StatusNotImplemented):
			// No general storage: CA bundles go with the certificates.
		default:
			return fmt.Errorf("probe general storage: %w", err)
		}
	}
	st.apiKnown = true
	return nil
}

// learn takes where the API said it keeps a file of store.
func (st *instanceState) learn(s store, file string) {
	dir := dirOf(file)
	if dir == "" {
		return
	}
	if s == generalStore {
		st.dirs.ca = dir
	} else {
		st.dirs.cert = dir
	}
}

// storedText reads the stored configuration at most once per decision.
type storedText struct {
	text string
	read bool
}

func (r *storedText) get(ctx context.Context, inst Instance) (string, error) {
	if !r.read {
		text, _, err := inst.RawConfiguration(ctx)
		if err != nil {
			return "", fmt.Errorf("read stored configuration: %w", err)
		}
		r.text, r.read = text, true
	}
	return r.text, nil
}

// localize writes the instance's directories into t when its API reads
// paths literally. Directories not learned from storage answers are read
// from the stored configuration (what the instance was set up with, or
// what the operator wrote last), else the defaults. The directories count
// as structure: moving one reloads.
func (st *instanceState) localize(ctx context.Context, inst Instance, t *target, raw *storedText) error {
	if !st.literal {
		return nil
	}
	d := st.dirs
	if d.run == "" || d.cert == "" || (d.ca == "" && st.generalStorage) {
		text, err := raw.get(ctx, inst)
		if err != nil {
			return err
		}
		found := storedDirs(text)
		if d.run == "" {
			d.run = found.run
		}
		if d.cert == "" {
			d.cert = found.cert
		}
		if d.ca == "" {
			d.ca = found.ca
		}
	}
	if d.run == "" {
		d.run = DefaultRunDir
	}
	if d.cert == "" {
		d.cert = DefaultCertDir
	}
	if d.maps == "" {
		d.maps = DefaultMapDir
	}
	if !st.generalStorage || d.ca == "" {
		// CA bundles are stored beside the certificates.
		d.ca = d.cert
	}
	st.dirs = d
	text, err := localize(t.config, d)
	if err != nil {
		return err
	}
	t.config, t.text = text, sha256.Sum256(text)
	if t.hasModel {
		t.dirs = d.String()
	}
	return nil
}
