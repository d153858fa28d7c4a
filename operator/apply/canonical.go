package apply

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	parser "github.com/haproxytech/client-native/v5/config-parser"
	"github.com/haproxytech/client-native/v5/config-parser/options"
	"github.com/haproxytech/client-native/v5/config-parser/params"
	"github.com/haproxytech/client-native/v5/config-parser/types"
)

// parsed is a configuration text read by client-native's configuration
// parser, the one Data Plane API servers store their files with, so a
// text and that server's re-serialisation of it read the same.
type parsed struct {
	// canonical is the parser's serialisation, comments left out.
	canonical string
	// structure is canonical with what runtime actions change blanked.
	structure string
	servers   runtimeView
}

// parseConfig reads text as the Data Plane API would store it. Comments
// (the API's own # _version and # _md5hash lines among them) do not
// count: HAProxy ignores them. The servers with an IP address of the
// backends named in dynamic (a Service's endpoints, added and retired at
// runtime) are left out of the structure altogether.
func parseConfig(text string, dynamic map[string]bool) (*parsed, error) {
	var b strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		b.WriteString(line)
	}
	// A listen section is a backend too: its servers change at runtime
	// as a backend's do.
	p, err := parser.New(options.String(b.String()), options.UseListenSectionParsers)
	if err != nil {
		return nil, fmt.Errorf("parse configuration: %w", err)
	}
	out := &parsed{canonical: p.String(), servers: runtimeView{}}
	sectionOf := map[string]parser.Section{}
	for _, kind := range []parser.Section{parser.Backends, parser.Listen} {
		names, err := p.SectionsGet(kind)
		if err != nil {
			return nil, fmt.Errorf("parse configuration: %s sections: %w", kind, err)
		}
		for _, name := range names {
			sectionOf[name] = kind
		}
	}
	backends := make([]string, 0, len(sectionOf))
	for name := range sectionOf {
		backends = append(backends, name)
	}
	// The parser lists sections in no fixed order; actions go out in
	// backend order.
	sort.Strings(backends)
	for _, be := range backends {
		kind := sectionOf[be]
		data, err := p.Get(kind, be, "server")
		if err != nil {
			continue // a backend without servers
		}
		servers, ok := data.([]types.Server)
		if !ok {
			return nil, fmt.Errorf("parse configuration: backend %s: servers of type %T", be, data)
		}
		blanked := make([]types.Server, 0, len(servers))
		for _, s := range servers {
			rs, rest := runtimeFields(be, s)
			out.servers[be] = append(out.servers[be], rs)
			if dynamic[be] && rs.AddrRuntime {
				continue
			}
			blanked = append(blanked, rest)
		}
		// Setting the blanked servers back lets the parser write the
		// structure in its own format.
		if err := p.Set(kind, be, "server", blanked); err != nil {
			return nil, fmt.Errorf("parse configuration: backend %s: %w", be, err)
		}
	}
	out.structure = p.String()
	return out, nil
}

// runtimeFields splits a server line into what runtime actions change and
// the rest.
func runtimeFields(backend string, s types.Server) (runtimeServer, types.Server) {
	rs := runtimeServer{Backend: backend, Name: s.Name, Weight: 1}
	if host, port, err := net.SplitHostPort(s.Address); err == nil && net.ParseIP(host) != nil {
		if p, err := strconv.Atoi(port); err == nil {
			rs.AddrRuntime, rs.Addr, rs.Port = true, host, int32(p)
			s.Address = "runtime"
		}
	}
	var keep []params.ServerOption
	for _, o := range s.Params {
		switch o := o.(type) {
		case *params.ServerOptionValue:
			if o.Name == "weight" {
				if w, err := strconv.Atoi(o.Value); err == nil {
					rs.Weight = int32(w)
					continue
				}
			}
		case *params.ServerOptionWord:
			if o.Name == "disabled" && rs.AddrRuntime {
				rs.Maint = true
				continue
			}
		}
		keep = append(keep, o)
	}
	s.Params = keep
	return rs, s
}
