package bundlegen

import (
	"fmt"
	"regexp"
	"strings"
)

// DefaultRegistry is the registry the bundle's images come from when the
// manifests name none: the placeholder make bundle writes unless
// IMAGE_REGISTRY names the release's registry.
const DefaultRegistry = "registry.example.com"

// Images says how the bundle names the operator and HAProxy images that
// deploy/manager gives by repository and tag.
type Images struct {
	// Registry qualifies a reference whose first path component is no
	// registry host, so the cluster pulls from the release's registry and
	// not from a container runtime's default one. Empty: DefaultRegistry.
	Registry string
	// Digests pin images by their relatedImages name ("operator",
	// "haproxy"): a digest sha256:<64 hex digits>, or a whole reference
	// <repository>@sha256:<...> whose repository must be the image's. A
	// pinned image is named <repository>@<digest> in relatedImages, the
	// Deployment and its --instance-image flag, so what OLM installs and
	// mirrors is exactly the image that was built.
	Digests map[string]string
}

// Image names the bundle knows, as relatedImages names them.
const (
	ImageOperator = "operator"
	ImageHAProxy  = "haproxy"
)

var (
	digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	// hostPattern is a registry host: a DNS name or IP address with an
	// optional port, as container runtimes tell a registry from a path.
	hostPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]+)?$|^\[[0-9A-Fa-f:]+\](:[0-9]+)?$`)
)

// reference is an image reference cut into its parts.
type reference struct {
	repository string // registry/path
	tag        string // without ":"
	digest     string // sha256:...
}

func (r reference) String() string {
	s := r.repository
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest
	}
	return s
}

// parseReference cuts [registry/]path[:tag][@digest].
func parseReference(s string) (reference, error) {
	var r reference
	rest := s
	if i := strings.Index(rest, "@"); i >= 0 {
		r.digest, rest = rest[i+1:], rest[:i]
		if !digestPattern.MatchString(r.digest) {
			return r, fmt.Errorf("image %q: digest %q is not sha256:<64 lowercase hex digits>", s, r.digest)
		}
	}
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		r.tag, rest = rest[i+1:], rest[:i]
		if r.tag == "" {
			return r, fmt.Errorf("image %q: empty tag", s)
		}
	}
	if rest == "" || strings.HasPrefix(rest, "/") || strings.HasSuffix(rest, "/") || strings.Contains(rest, "//") {
		return r, fmt.Errorf("image %q: no repository", s)
	}
	r.repository = rest
	return r, nil
}

// hasRegistry says whether the repository's first component is a registry
// host: it holds a "." or ":" or is localhost, as container runtimes
// decide.
func hasRegistry(repository string) bool {
	first, _, found := strings.Cut(repository, "/")
	return found && (strings.ContainsAny(first, ".:") || first == "localhost")
}

// resolve qualifies image with the registry and pins it with digest
// (empty: not pinned). name is the image's relatedImages name, for errors.
func (o Images) resolve(name, image string) (string, error) {
	ref, err := parseReference(image)
	if err != nil {
		return "", fmt.Errorf("the %s image: %w", name, err)
	}
	registry := o.Registry
	if registry == "" {
		registry = DefaultRegistry
	}
	if !hostPattern.MatchString(registry) {
		return "", fmt.Errorf("registry %q: not a host[:port]", registry)
	}
	if !hasRegistry(ref.repository) {
		ref.repository = registry + "/" + ref.repository
	}
	pin := o.Digests[name]
	if pin == "" {
		return ref.String(), nil
	}
	digest := pin
	if repo, d, found := strings.Cut(pin, "@"); found {
		if repo != ref.repository {
			return "", fmt.Errorf("digest of the %s image: %q names repository %s, the bundle's image is %s", name, pin, repo, ref.repository)
		}
		digest = d
	}
	if !digestPattern.MatchString(digest) {
		return "", fmt.Errorf("digest of the %s image: %q is not sha256:<64 lowercase hex digits>", name, pin)
	}
	// A digest names the image alone; a tag beside it would only be
	// ignored by the runtime and confuse whoever reads the manifest.
	ref.tag, ref.digest = "", digest
	return ref.String(), nil
}
