# procstar: the front door. `make help` lists the targets.

GO        ?= go
BIN       ?= bin
PKGS      ?= ./...
# The whole suite (unit, real-process, integration, end-to-end) under -race.
TEST_FLAGS ?= -race -count=1 -timeout 15m
BENCH     ?= .
BENCHTIME ?= 1s
FUZZTIME  ?= 30s

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -X procstar.dev/procstar/internal/version.Version=$(VERSION) -X procstar.dev/procstar/internal/version.GitCommit=$(COMMIT)

build: ## Build the binaries into ./bin.
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

.PHONY: test
test: ## Run every test (unit, real-process, e2e, fuzz seeds) with -race.
	$(GO) test $(TEST_FLAGS) $(PKGS)

.PHONY: lint
lint: vet ## Run go vet and staticcheck (pinned in go.mod as a tool).
	$(GO) tool staticcheck $(PKGS)

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet $(PKGS)

.PHONY: fmt
fmt: ## Format the code with gofmt.
	gofmt -w $$(git ls-files '*.go')

.PHONY: run
run: build ## Run a local agent serving the API on 127.0.0.1:3000 (Ctrl-C stops it).
	$(BIN)/procstar --serve --log-level info

.PHONY: oneshot
oneshot: build ## Run config/samples/hello.yaml once and print the result.
	$(BIN)/procstar --print config/samples/hello.yaml

DIST ?= dist
.PHONY: package
package: ## Build release tarballs (linux amd64+arm64; ARCHES=...) and SHA256SUMS into ./dist.
	ARCHES='$(ARCHES)' GO='$(GO)' hack/package.sh $(DIST)

.PHONY: bench
# One package at a time (-p 1): go test otherwise runs packages' benchmarks
# side by side, and one would time the other's load.
bench: ## Run the benchmarks; each reports its ratio against a raw baseline.
	$(GO) test -p 1 -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -timeout 30m $(PKGS)

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each.
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh
