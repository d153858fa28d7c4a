// Package e2e holds the tests that run against a real kube-apiserver and
// etcd (controller-runtime's envtest) and real HAProxy processes. The
// binaries come from make: kube-apiserver built from k8s.io/kubernetes in
// e2e/tools, etcd from Debian, all under bin/k8s.
package e2e
