# haproxystats-go. `make test` is what CI runs (.ci/run); `make demo` shows
# what the engine makes of a bundled snapshot.
GO      ?= go
BIN     := bin
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/haproxystats-go/haproxystats/internal/buildinfo.Version=$(VERSION)
PROGRAMS := $(notdir $(wildcard cmd/*))

.PHONY: all build test test-go deps demo bench fuzz lint check conformance clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ $(addprefix ./cmd/,$(PROGRAMS))

# Installs what the integration tests use (HAProxy, carbon-c-relay, wasm
# toolchains) when run as root on Debian; otherwise says loudly what is
# missing and the tests that need it skip.
deps:
	@./.ci/install-deps

test: deps build lint test-go conformance

test-go:
	$(GO) test -race -count=1 -timeout 15m ./...

# The corpus through the command an operator runs.
conformance: build
	$(BIN)/haproxystats-engine test testdata/conformance

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

check: lint test-go
	$(GO) mod tidy -diff

demo: build
	$(BIN)/haproxystats-engine run -f testdata/demo/haproxystats.conf testdata/demo/incoming/*

# Parse and whole-pipeline benchmarks on the large snapshot (8 processes x
# 1000 backends x 10 servers), generated in Go from the medium capture.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 20x ./engine/

FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseStat -fuzztime $(FUZZTIME) ./engine/
	$(GO) test -run '^$$' -fuzz FuzzParseInfo -fuzztime $(FUZZTIME) ./engine/

clean:
	rm -rf $(BIN) dist
