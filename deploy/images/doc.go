// Package images tests the image build files at the repository root
// (Dockerfile, the operator image; haproxy.Dockerfile, the HAProxy
// instance image) where no container engine runs: it parses their
// instructions and runs their steps that matter on this machine.
package images
