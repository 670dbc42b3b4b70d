// Package wasmstage runs operator-supplied WebAssembly modules as pipeline
// stages (engine.Stage), sandboxed with wazero. The contract with the
// modules, version 1, is docs/ABI.md: one call per snapshot, the requested
// `show stat` columns written in bulk into the module's memory in a binary
// columnar layout, metrics returned as a validated record buffer.
//
// # Lifecycle
//
// ParseOptions validates a `[stage.<name>]` section into Options. New reads
// and compiles the module once (through wazero's compilation cache when
// Options.CacheDir is set, so a restart does not compile again), checks
// its exports and imports, instantiates it (running _initialize and
// hs_init) and reads its column list; every failure there is an error
// naming the stage and the file. It starts no goroutine. The Stage is then
// registered as engine.StageSpec{Name: name, Stage: s} (empty TimeMetric,
// so that the pipeline reports Stage<Name>WallClockTime, Stage<Name>Metrics
// and Stage<Name>Errors) and closed with Close when the daemon stops.
//
// # Concurrency and state
//
// One instance per stage; Process serializes the calls (waiting honours the
// caller's context), so a Stage is safe for concurrent use while the module
// never runs on two goroutines. The module's memory persists between calls:
// a stage can compute deltas between consecutive snapshots, which the
// process daemon hands over in timestamp order. State is lost when the
// daemon restarts and when a call fails: the failed instance is closed and
// the next call creates a new one.
//
// # Limits
//
// Options.Timeout bounds every call with a context deadline, enforced by
// wazero's WithCloseOnContextDone (0 disables both for trusted modules:
// wazero then inserts no check in the module's loops, which are otherwise
// costly, see the benchmarks); Options.MemoryLimitMiB caps the linear
// memory with WithMemoryLimitPages; Options.MaxMetrics caps the records of
// one call, checked before decoding. Every object, server and metric name is
// validated (no empty name, no byte <= 0x20 or 0x7f, valid UTF-8, no Unicode
// line separator; no empty segment in a free path), so no output can add a
// line to the Graphite stream. A trap, timeout, exhausted memory, malformed
// or oversized output is an error from Process (see ErrTimeout and the
// other errors); the pipeline then discards the stage's partial output for
// that snapshot, logs and counts the error, and the other stages' metrics
// are sent as usual.
//
// # Sandbox
//
// No file system, network, environment or arguments; the host module `hs`
// provides only log (rate-limited per call); wasi_snapshot_preview1 is
// provided when the module imports it (Go and C reactors), with wazero's
// deterministic clocks and random source.
package wasmstage
