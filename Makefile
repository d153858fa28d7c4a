# haproxy-tcp-operator. `make help` lists the targets.

SHELL := /usr/bin/env bash
GO ?= go
BIN := $(CURDIR)/bin
K8S_BIN := $(BIN)/k8s
KUBE_VERSION := v1.37.2
FUZZTIME ?= 30s

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

##@ Build

.PHONY: build
build: ## Build bin/haproxy-tcp-operator
	$(GO) build -ldflags "-X github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/cli.version=$(IMAGE_TAG)" -o $(BIN)/haproxy-tcp-operator ./operator/cmd/haproxy-tcp-operator

# RUN_ARGS adds flags, e.g. RUN_ARGS=--local for a local cluster even when
# a kubeconfig names one.
RUN_ARGS ?=

# The development build: the operator plus the local cluster, which the
# shipped binary leaves out (it links envtest and test helpers).
.PHONY: run
run: test-deps ## Run the operator: against the configured cluster, or a local one with the samples when none is configured
	$(GO) build -o $(BIN)/haproxy-tcp-operator-dev ./operator/cmd/haproxy-tcp-operator-dev
	$(BIN)/haproxy-tcp-operator-dev run --k8s-assets $(K8S_BIN) --haproxy /usr/sbin/haproxy $(RUN_ARGS)

.PHONY: generate
generate: ## Generate deep copies of the API types
	$(GO) tool controller-gen object paths=./api/...

.PHONY: manifests
manifests: ## Generate the CRDs in deploy/crd and the ClusterRole in deploy/rbac
	$(GO) tool controller-gen crd paths=./api/... output:crd:artifacts:config=deploy/crd
	$(GO) tool controller-gen rbac:roleName=haproxy-tcp-operator paths=./operator/controller/... output:rbac:artifacts:config=deploy/rbac

.PHONY: docs
docs: ## Generate the API reference docs/api.md from the CRDs
	$(GO) run ./docs/apigen/cmd

##@ Test

.PHONY: test
test: test-deps ## Run every test (unit, golden, API server and HAProxy)
	$(GO) vet ./...
	# The e2e package runs its tests one after another against one API
	# server and operator: well past go test's default 10-minute limit on a
	# loaded 2-core machine.
	$(GO) test ./... -count=1 -timeout 40m
	# A bounded fuzzing run: no field of a mapping may add a directive or
	# touch another mapping's lines.
	$(GO) test ./operator/render/ -run '^$$' -fuzz '^FuzzTranslateRender$$' -fuzztime $(FUZZTIME)

.PHONY: testdata
# The packages whose tests compare with golden files (operator/internal/golden
# defines -update; other test binaries refuse the flag).
GOLDEN_PKGS = $(shell grep -rl --include='*_test.go' 'operator/internal/golden"' operator | xargs -n1 dirname | sort -u | sed 's,^,./,')

testdata: test-deps ## Rewrite the golden files from the current output
	$(GO) test $(GOLDEN_PKGS) -count=1 -update

.PHONY: verify
verify: generate manifests bundle docs helm testdata ## Regenerate everything; fail if git sees a change
	git diff --exit-code -- api deploy docs operator

.PHONY: test-deps
test-deps: $(K8S_BIN)/kube-apiserver $(K8S_BIN)/etcd $(K8S_BIN)/kubectl /usr/sbin/haproxy /usr/sbin/ip /usr/sbin/setcap ## Install or build what the tests run

# kube-apiserver is not packaged: build it from k8s.io/kubernetes in the
# e2e/tools module (about 10 minutes on 2 cores the first time, then cached
# in bin/ and in Go's build cache).
$(K8S_BIN)/kube-apiserver: e2e/tools/go.mod e2e/tools/go.sum
	@mkdir -p $(K8S_BIN)
	cd e2e/tools && $(GO) build -o $@ k8s.io/kubernetes/cmd/kube-apiserver

$(K8S_BIN)/etcd: /usr/bin/etcd
	@mkdir -p $(K8S_BIN)
	ln -sf /usr/bin/etcd $@

# Use the machine's kubectl; build one from the same release when absent.
$(K8S_BIN)/kubectl:
	@mkdir -p $(K8S_BIN)
	if command -v kubectl >/dev/null; then ln -sf "$$(command -v kubectl)" $@; \
	else cd e2e/tools && $(GO) build -o $@ k8s.io/kubernetes/cmd/kubectl; fi

/usr/sbin/haproxy /usr/bin/etcd /usr/sbin/ip:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy etcd-server iproute2

# setcap: the instance image's capability step, tested in deploy/images.
/usr/sbin/setcap:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libcap2-bin

.PHONY: clean
clean: ## Remove build output (keeps the built kube-apiserver)
	rm -f $(BIN)/haproxy-tcp-operator $(BIN)/haproxy-tcp-operator-dev

BENCH_SCALE ?= 1000
BENCH_RUNS ?= 3

.PHONY: bench
bench: test-deps ## Run the benchmarks: translate+render at 1k and 10k, apply latency against real haproxy, kubectl apply to traffic, and the scale table at BENCH_SCALE mappings
	$(GO) test ./operator/render/ -run '^$$' -bench '^BenchmarkTranslateRender$$' -benchtime 5x -count 3
	$(GO) test ./operator/apply/ -run '^$$' -bench . -benchtime 30x -count 1
	$(GO) test ./e2e/ -run '^$$' -bench '^BenchmarkNewMappingToTraffic$$' -benchtime 20x -count 1
	BENCH_SCALE=$(BENCH_SCALE) BENCH_RUNS=$(BENCH_RUNS) $(GO) test ./e2e/ -run '^$$' -bench '^BenchmarkScale$$' -benchtime 1x -count 1 -timeout 4h

##@ Release

.PHONY: bundle
bundle: ## Generate the OLM bundle in deploy/bundle from deploy/ (OPERATOR_DIGEST, HAPROXY_DIGEST pin the built images)
	$(GO) run ./deploy/bundlegen/cmd -registry=$(IMAGE_REGISTRY) -operator-digest=$(OPERATOR_DIGEST) -haproxy-digest=$(HAPROXY_DIGEST) deploy deploy/bundle

HELM_CHART := deploy/helm/haproxy-tcp-operator

.PHONY: helm
helm: ## Copy the CRDs and RBAC rules from deploy/ into the Helm chart deploy/helm
	rm -f $(HELM_CHART)/crds/*.yaml
	cp deploy/crd/haproxy-operator.io_*.yaml $(HELM_CHART)/crds/
	mkdir -p $(HELM_CHART)/files/rbac
	cp deploy/rbac/role.yaml deploy/rbac/leader_election_role.yaml $(HELM_CHART)/files/rbac/
	cp deploy/namespaced/served/role.yaml $(HELM_CHART)/files/rbac/served_role.yaml
	mkdir -p $(HELM_CHART)/files/admission
	cp deploy/admission/secrets_policy.yaml $(HELM_CHART)/files/admission/

IMAGE_TAG ?= v0.1.0
# The registry the images are pushed to and the bundle names; the digests
# of the pushed images pin them in the bundle (make bundle OPERATOR_DIGEST=sha256:...).
IMAGE_REGISTRY ?= registry.example.com
OPERATOR_DIGEST ?=
HAPROXY_DIGEST ?=

.PHONY: docker-build
docker-build: ## Build the operator and HAProxy instance images (needs a Docker engine)
	docker build --build-arg VERSION=$(IMAGE_TAG) -t $(IMAGE_REGISTRY)/haproxy-tcp-operator/operator:$(IMAGE_TAG) -f Dockerfile .
	docker build -t $(IMAGE_REGISTRY)/haproxy-tcp-operator/haproxy:$(IMAGE_TAG) -f haproxy.Dockerfile .
	docker build -t $(IMAGE_REGISTRY)/haproxy-tcp-operator/bundle:$(IMAGE_TAG) -f deploy/bundle/bundle.Dockerfile deploy/bundle
