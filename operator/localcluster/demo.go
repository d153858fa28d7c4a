package localcluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/deploy/samples"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
)

// Backend is a demo upstream on loopback: it greets each connection with
// its name and echoes what it reads, in cleartext or TLS.
type Backend struct {
	Name string
	Addr *net.TCPAddr
	ln   net.Listener
}

// Close stops the backend.
func (b *Backend) Close() error { return b.ln.Close() }

// StartBackend listens on a free port of the test host; with tlsName it
// serves TLS with a fresh self-signed certificate for that name.
func StartBackend(name string, host *TestHost, tlsName string) (*Backend, error) {
	ln, err := host.Listen(0)
	if err != nil {
		return nil, err
	}
	if tlsName != "" {
		cert, err := SelfSigned(tlsName)
		if err != nil {
			ln.Close()
			return nil, err
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	}
	b := &Backend{Name: name, Addr: ln.Addr().(*net.TCPAddr), ln: ln}
	go dataplanetest.ServeGreeting(ln, name)
	return b, nil
}

// SelfSigned makes a short-lived ECDSA certificate for name.
func SelfSigned(name string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// PublishEndpoints makes the backends the ready endpoints of Service
// namespace/service's port portName, as the EndpointSlice controller
// would for Pods; earlier slices for that port are replaced.
func PublishEndpoints(ctx context.Context, c client.Client, namespace, service, portName string, backends ...*Backend) error {
	var old discoveryv1.EndpointSliceList
	if err := c.List(ctx, &old, client.InNamespace(namespace), client.MatchingLabels{discoveryv1.LabelServiceName: service}); err != nil {
		return err
	}
	prefix := service + "-" + sliceSafe(portName) + "-"
	for i := range old.Items {
		if strings.HasPrefix(old.Items[i].Name, prefix) {
			if err := c.Delete(ctx, &old.Items[i]); client.IgnoreNotFound(err) != nil {
				return err
			}
		}
	}
	// Loopback backends differ by port, so each gets a slice of its own.
	for i, b := range backends {
		var name *string
		if portName != "" {
			name = ptr.To(portName)
		}
		es := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("%s%d-%d", prefix, b.Addr.Port, i), Namespace: namespace,
				Labels: map[string]string{discoveryv1.LabelServiceName: service, "endpointslice.kubernetes.io/managed-by": "haproxy-tcp-operator-local"},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: name, Port: ptr.To(int32(b.Addr.Port)), Protocol: ptr.To(corev1.ProtocolTCP)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{b.Addr.IP.String()}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		}
		if err := c.Create(ctx, es); err != nil {
			return fmt.Errorf("publish endpoints of %s/%s: %w", namespace, service, err)
		}
	}
	return nil
}

func sliceSafe(s string) string {
	if s == "" {
		return "default"
	}
	return s
}

// ApplySamples creates every object of deploy/samples/ (embedded).
func ApplySamples(ctx context.Context, c client.Client) error {
	files, err := fs.Glob(samples.FS, "*.yaml")
	if err != nil {
		return err
	}
	decoder := serializer.NewCodecFactory(snapshot.Scheme()).UniversalDeserializer()
	for _, f := range files {
		data, err := samples.FS.ReadFile(f)
		if err != nil {
			return err
		}
		reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			obj, _, err := decoder.Decode(doc, nil, nil)
			if err != nil {
				continue // a comment-only document
			}
			co, ok := obj.(client.Object)
			if !ok {
				continue
			}
			if err := c.Create(ctx, co); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create %s from %s: %w", co.GetName(), f, err)
			}
		}
	}
	return nil
}
