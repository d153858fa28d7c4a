package bundlegen

import (
	"strings"
	"testing"
)

func TestResolveImage(t *testing.T) {
	const (
		d1 = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		d2 = "sha256:" + "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	)
	tests := map[string]struct {
		images Images
		name   string
		image  string
		want   string
		err    string // part of the error; empty: none
	}{
		"no registry: the default one":   {name: "operator", image: "haproxy-tcp-operator/operator:v0.1.0", want: DefaultRegistry + "/haproxy-tcp-operator/operator:v0.1.0"},
		"no registry: the given one":     {images: Images{Registry: "registry.test:5000"}, name: "operator", image: "haproxy-tcp-operator/operator:v0.1.0", want: "registry.test:5000/haproxy-tcp-operator/operator:v0.1.0"},
		"a registry stays":               {images: Images{Registry: "registry.test"}, name: "haproxy", image: "mirror.test/team/haproxy:v1", want: "mirror.test/team/haproxy:v1"},
		"localhost is a registry":        {name: "haproxy", image: "localhost/haproxy:v1", want: "localhost/haproxy:v1"},
		"a one-component name":           {images: Images{Registry: "registry.test"}, name: "haproxy", image: "haproxy:v1", want: "registry.test/haproxy:v1"},
		"pinned by digest: the tag goes": {images: Images{Registry: "registry.test", Digests: map[string]string{"operator": d1}}, name: "operator", image: "haproxy-tcp-operator/operator:v0.1.0", want: "registry.test/haproxy-tcp-operator/operator@" + d1},
		"only the named image is pinned": {images: Images{Registry: "registry.test", Digests: map[string]string{"operator": d1}}, name: "haproxy", image: "haproxy-tcp-operator/haproxy:v0.1.0", want: "registry.test/haproxy-tcp-operator/haproxy:v0.1.0"},
		"pinned by a whole reference":    {images: Images{Registry: "registry.test", Digests: map[string]string{"haproxy": "registry.test/haproxy-tcp-operator/haproxy@" + d2}}, name: "haproxy", image: "haproxy-tcp-operator/haproxy:v0.1.0", want: "registry.test/haproxy-tcp-operator/haproxy@" + d2},
		"a digest in the manifest stays": {images: Images{Registry: "registry.test"}, name: "haproxy", image: "haproxy-tcp-operator/haproxy:v1@" + d2, want: "registry.test/haproxy-tcp-operator/haproxy:v1@" + d2},
		"the pin replaces a digest":      {images: Images{Registry: "registry.test", Digests: map[string]string{"haproxy": d1}}, name: "haproxy", image: "haproxy-tcp-operator/haproxy:v1@" + d2, want: "registry.test/haproxy-tcp-operator/haproxy@" + d1},

		"a short digest":                     {images: Images{Digests: map[string]string{"operator": "sha256:0123"}}, name: "operator", image: "a/b:v1", err: `digest of the operator image: "sha256:0123" is not sha256:<64 lowercase hex digits>`},
		"a digest of another algorithm":      {images: Images{Digests: map[string]string{"operator": "md5:" + d1[7:]}}, name: "operator", image: "a/b:v1", err: "not sha256:"},
		"a whole reference of another image": {images: Images{Registry: "registry.test", Digests: map[string]string{"haproxy": "registry.test/other/haproxy@" + d2}}, name: "haproxy", image: "haproxy-tcp-operator/haproxy:v1", err: "names repository registry.test/other/haproxy, the bundle's image is registry.test/haproxy-tcp-operator/haproxy"},
		"a registry with a path":             {images: Images{Registry: "registry.test/team"}, name: "operator", image: "a/b:v1", err: `registry "registry.test/team": not a host[:port]`},
		"a bad digest in the manifest":       {name: "haproxy", image: "a/b@sha256:xyz", err: `image "a/b@sha256:xyz": digest "sha256:xyz"`},
		"no repository":                      {name: "haproxy", image: "", err: "no repository"},
		"an empty tag":                       {name: "haproxy", image: "a/b:", err: "empty tag"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tc.images.resolve(tc.name, tc.image)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("resolve(%q) = %q, %v; want an error containing %q", tc.image, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("resolve(%q) = %q, %v; want %q", tc.image, got, err, tc.want)
			}
		})
	}
}
