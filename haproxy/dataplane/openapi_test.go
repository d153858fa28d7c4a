package dataplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"sigs.k8s.io/yaml"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane"
)

// The Data Plane API specification ships with client-native v5 as a
// Swagger 2.0 document split over files (haproxy-spec.yaml naming
// paths/*.yaml and models/*.yaml). specRouter bundles it, converts it to
// OpenAPI 3 and routes requests to its operations, so every answer the
// tests get from a dataplane is validated against the specification.

// specDir is client-native's specification/ directory in the module
// cache.
func specDir() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/haproxytech/client-native/v5").Output()
	if err != nil {
		return "", fmt.Errorf("find client-native v5: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "specification"), nil
}

// yamlFiles caches the parsed files of the specification.
type yamlFiles map[string]any

func (f yamlFiles) load(path string) (any, error) {
	if doc, ok := f[path]; ok {
		return doc, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var doc any
	if err := json.Unmarshal(j, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f[path] = doc
	return doc, nil
}

// pointer resolves a JSON pointer (#/a/b) in doc.
func pointer(doc any, ptr string) (any, error) {
	node := doc
	for _, part := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		if part == "" {
			continue
		}
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		m, ok := node.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("pointer %s: %q is not in an object", ptr, part)
		}
		if node, ok = m[part]; !ok {
			return nil, fmt.Errorf("pointer %s: no %q", ptr, part)
		}
	}
	return node, nil
}

// inline replaces every reference to another file with what it points
// at. References inside those files that start with # name the bundled
// document (the root), as the specification's build step reads them.
func (f yamlFiles) inline(node any, dir string) (any, error) {
	switch n := node.(type) {
	case map[string]any:
		if ref, ok := n["$ref"].(string); ok && !strings.HasPrefix(ref, "#") {
			file, ptr, _ := strings.Cut(ref, "#")
			path := filepath.Join(dir, file)
			doc, err := f.load(path)
			if err != nil {
				return nil, err
			}
			target, err := pointer(doc, ptr)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ref, err)
			}
			return f.inline(target, filepath.Dir(path))
		}
		out := make(map[string]any, len(n))
		for k, v := range n {
			r, err := f.inline(v, dir)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(n))
		for i, v := range n {
			r, err := f.inline(v, dir)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return node, nil
}

// loadSpec reads, bundles and converts the specification.
func loadSpec() (*openapi3.T, error) {
	dir, err := specDir()
	if err != nil {
		return nil, err
	}
	files := yamlFiles{}
	root, err := files.load(filepath.Join(dir, "haproxy-spec.yaml"))
	if err != nil {
		return nil, err
	}
	bundled, err := files.inline(root, dir)
	if err != nil {
		return nil, err
	}
	j, err := json.Marshal(bundled)
	if err != nil {
		return nil, err
	}
	var doc2 openapi2.T
	if err := json.Unmarshal(j, &doc2); err != nil {
		return nil, fmt.Errorf("read the specification as Swagger 2.0: %w", err)
	}
	doc3, err := openapi2conv.ToV3(&doc2)
	if err != nil {
		return nil, fmt.Errorf("convert the specification to OpenAPI 3: %w", err)
	}
	// Requests go to test servers on any host and port.
	doc3.Servers = openapi3.Servers{{URL: "/v2"}}
	return doc3, nil
}

// specCheck validates answers against the specification and records
// which operations the tests exercised.
type specCheck struct {
	router routers.Router

	mu       sync.Mutex
	failures []string
	covered  map[string]bool // "METHOD /path" of the specification
}

func newSpecCheck() (*specCheck, error) {
	doc, err := loadSpec()
	if err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route the specification: %w", err)
	}
	return &specCheck{router: router, covered: map[string]bool{}}, nil
}

// unspecified are our paths outside the Data Plane API (probes).
var unspecified = map[string]bool{"/healthz": true, "/readyz": true}

// RoundTrip sends the request, then validates the answer; a mismatch is
// recorded (and fails the test run in TestMain).
func (c *specCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || unspecified[req.URL.Path] {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if rerr != nil {
		return nil, rerr
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if msg := c.validate(req, resp, body); msg != "" {
		c.mu.Lock()
		c.failures = append(c.failures, msg)
		c.mu.Unlock()
	}
	return resp, nil
}

func (c *specCheck) validate(req *http.Request, resp *http.Response, body []byte) string {
	what := fmt.Sprintf("%s %s → %d", req.Method, req.URL.RequestURI(), resp.StatusCode)
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		// Unknown paths and methods must still answer with the error
		// model.
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			var e struct {
				Code    *int    `json:"code"`
				Message *string `json:"message"`
			}
			if json.Unmarshal(body, &e) != nil || e.Code == nil || e.Message == nil || resp.Header.Get("Content-Type") != "application/json" {
				return fmt.Sprintf("%s: not the error model: %q", what, body)
			}
			return ""
		}
		return fmt.Sprintf("%s: not in the specification: %v", what, err)
	}
	c.mu.Lock()
	c.covered[req.Method+" "+route.Path] = true
	c.mu.Unlock()
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status: resp.StatusCode,
		Header: resp.Header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return fmt.Sprintf("%s: %v\nbody: %.300s", what, err, body)
	}
	if resp.StatusCode != http.StatusNoContent && len(body) > 0 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") &&
		!produces(route, resp.StatusCode, resp.Header.Get("Content-Type")) {
		return fmt.Sprintf("%s: Content-Type %q, want application/json", what, resp.Header.Get("Content-Type"))
	}
	if strings.HasPrefix(route.Path, "/services/haproxy/configuration/") && resp.Header.Get("Configuration-Version") == "" {
		return fmt.Sprintf("%s: no Configuration-Version header", what)
	}
	return ""
}

// produces reports whether the operation declares contentType for the
// status (storage/maps/{name} answers application/octet-stream).
func produces(route *routers.Route, status int, contentType string) bool {
	r := route.Operation.Responses.Status(status)
	if r == nil || r.Value == nil {
		return false
	}
	return r.Value.Content.Get(contentType) != nil && contentType != "application/json"
}

// report lists the mismatches and, when the whole suite ran, the
// endpoints no test exercised.
func (c *specCheck) report(fullRun bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]string(nil), c.failures...)
	if fullRun {
		for _, r := range dataplane.Routes() {
			method, path, _ := strings.Cut(r, " ")
			if !c.covered[method+" "+strings.TrimPrefix(path, "/v2")] {
				out = append(out, "no test exercised "+r)
			}
		}
	}
	sort.Strings(out)
	return out
}

// spec is the check TestMain installs.
var spec *specCheck

// TestSpecCheckCatchesMismatches makes sure the check fails what the
// dataplane used to answer before it followed the specification.
func TestSpecCheckCatchesMismatches(t *testing.T) {
	if spec == nil {
		t.Fatal("no specification check installed")
	}
	answer := func(code int, contentType, body string, header ...string) *http.Response {
		h := http.Header{"Content-Type": {contentType}, "Configuration-Version": {"3"}}
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return &http.Response{StatusCode: code, Header: h}
	}
	for name, tc := range map[string]struct {
		method, url string
		resp        *http.Response
		body        string
	}{
		"a 201 of POST raw with a text/plain body": {
			"POST", "http://127.0.0.1/v2/services/haproxy/configuration/raw?version=1",
			answer(201, "text/plain", "global\n"), "global\n",
		},
		"runtime servers as null": {
			"GET", "http://127.0.0.1/v2/services/haproxy/runtime/servers?backend=x",
			answer(200, "application/json", "null"), "null",
		},
		"a plain-text 404": {
			"GET", "http://127.0.0.1/v2/services/haproxy/nothing",
			answer(404, "text/plain", "404 page not found"), "404 page not found",
		},
		"a reload with an unknown status": {
			"GET", "http://127.0.0.1/v2/services/haproxy/reloads/2026-01-01-1",
			answer(200, "application/json", ""), `{"id":"2026-01-01-1","status":"done"}`,
		},
		"a certificate whose not_after is not a date": {
			"GET", "http://127.0.0.1/v2/services/haproxy/storage/ssl_certificates/a.pem",
			answer(200, "application/json", ""), `{"storage_name":"a.pem","not_after":"soon"}`,
		},
	} {
		req, err := http.NewRequest(tc.method, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if msg := spec.validate(req, tc.resp, []byte(tc.body)); msg == "" {
			t.Errorf("%s: the check let it pass", name)
		}
	}
}
