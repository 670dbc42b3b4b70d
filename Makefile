# haproxystats-go. `make test` is what CI runs (.ci/run); `make demo` shows
# what the engine makes of a bundled snapshot.
GO      ?= go
BIN     := bin
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/haproxystats-go/haproxystats/internal/buildinfo.Version=$(VERSION)
PROGRAMS := $(notdir $(wildcard cmd/*))

.PHONY: all build test test-go deps demo wasm-examples wasm-test bench bench-e2e fuzz lint check conformance clean dist deb man contrib-check

all: build

# Static programs, as dist builds them: nothing in them needs cgo, and a
# dynamic one pays for the loader at every start.
build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ $(addprefix ./cmd/,$(PROGRAMS))

# Installs what the integration tests use (HAProxy, carbon-c-relay, wasm
# toolchains) when run as root on Debian; otherwise says loudly what is
# missing and the tests that need it skip.
deps:
	@./.ci/install-deps

test: deps build lint test-go conformance wasm-test

test-go:
	$(GO) test -race -count=1 -timeout 15m ./...

# The corpus through the command an operator runs.
conformance: build
	$(BIN)/haproxystats-engine test testdata/conformance

# The example WASM stages (Go, WAT; C and Rust when their toolchains are
# installed) and their recorded cases, run by the command an operator uses.
wasm-examples:
	./wasm-examples/build.sh
	@if [ -x wasm-examples/build-c-rust.sh ]; then ./wasm-examples/build-c-rust.sh; fi

wasm-test: build wasm-examples
	@cases=""; for d in wasm-examples/*/testcase; do n=$$(basename $$(dirname $$d)); \
	  if [ -f wasm-examples/$$n/$$n.wasm ]; then cases="$$cases $$d"; \
	  else echo "!!! SKIPPED $$d: $$n.wasm was not built (see above)" >&2; fi; done; \
	  $(BIN)/haproxystats-engine test $$cases

# gofmt, go vet (the parser's Go fallback too: other processors and the
# purego tag), and go.mod/go.sum exactly what the code needs.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags purego ./engine/
	GOARCH=arm64 $(GO) vet ./engine/
	$(GO) mod tidy -diff

check: lint test-go

demo: build
	$(BIN)/haproxystats-engine run -f testdata/demo/haproxystats.conf testdata/demo/incoming/*

# Parse and whole-pipeline benchmarks on the large snapshot (8 processes x
# 1000 backends x 10 servers), generated in Go from the medium capture.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 20x ./engine/

# The real binaries, end to end, on the large snapshot against a loopback
# sink that only counts lines: the sink's floor; haproxystats-process with
# one snapshot and a backlog of 6, 1 and 4 workers (start-to-delivered
# wall time, CPU per snapshot, peak RSS); the one daemon against 8 large
# HAProxy instances (peak RSS, CPU per round).
bench-e2e:
	$(GO) test -run '^$$' -bench E2E -benchtime 3x -timeout 30m ./cmd/haproxystats-process/ ./cmd/haproxystats-engine/

# Every parser of untrusted bytes, FUZZTIME each: show stat and show info
# (engine), the configuration's INI reader and interpolation (config), the
# WASM stages' output decoder (wasmstage), the snapshot records consumed
# from Kafka (snaprecord), the counters' state file (counters), show proc
# (haproxy), socket file names (spool).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseStat$$' -fuzztime $(FUZZTIME) ./engine/
	$(GO) test -run '^$$' -fuzz '^FuzzParseInfo$$' -fuzztime $(FUZZTIME) ./engine/
	$(GO) test -run '^$$' -fuzz '^FuzzScanStore$$' -fuzztime $(FUZZTIME) ./engine/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/config/
	$(GO) test -run '^$$' -fuzz '^FuzzInterpolate$$' -fuzztime $(FUZZTIME) ./internal/config/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/wasmstage/
	$(GO) test -run '^$$' -fuzz '^FuzzParseShowProc$$' -fuzztime $(FUZZTIME) ./internal/haproxy/
	$(GO) test -run '^$$' -fuzz '^FuzzParseSocketName$$' -fuzztime $(FUZZTIME) ./internal/spool/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeState$$' -fuzztime $(FUZZTIME) ./internal/counters/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/snaprecord/

# Release artefacts. `make dist`: static binaries (no cgo, paths trimmed,
# the git version stamped; `-v` prints it) in $(DIST)/. `make deb`:
# $(DIST)/haproxystats_<version>_<arch>.deb (contrib/debian/build-deb.sh).
# `make man`: the man pages in $(MANOUT)/ from the templates of contrib/man/,
# their synopsis, options and defaults taken from the dist binaries' -h and -p.
DIST    ?= dist
MANOUT  ?= $(DIST)/man
MANDATE := $(shell git log -1 --format=%cs 2>/dev/null || date +%F)
DEB_VERSION = $(shell contrib/debian/version.sh $(VERSION))

dist:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/ $(addprefix ./cmd/,$(PROGRAMS))

man: dist
	contrib/man/render.sh $(MANOUT) '$(VERSION)' '$(MANDATE)' $(DIST)

deb: dist man
	contrib/debian/build-deb.sh '$(DEB_VERSION)' "$$($(GO) env GOARCH)" $(DIST) $(MANOUT) $(DIST)

# The operating files of contrib/ (units, checks, example configuration,
# dashboard, package, man pages); also part of test-go.
contrib-check:
	$(GO) test -count=1 ./contrib/
	$(GO) test -count=1 -run CheckQueue ./cmd/haproxystats-engine/

clean:
	rm -rf $(BIN) dist
