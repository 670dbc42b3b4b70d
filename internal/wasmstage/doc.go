// Package wasmstage runs operator-supplied WebAssembly modules as pipeline
// stages (engine.Stage) with wazero. The contract with the modules,
// version 1, is docs/ABI.md: one call per snapshot, the requested
// `show stat` columns written in bulk into the module's memory in a binary
// columnar layout, metrics returned as a validated record buffer.
//
// # Isolation
//
// A stage with a timeout (the default) runs its module in a child process
// that the stage kills (SIGKILL) when a call outlasts its deadline, when
// the caller's context ends and when the stage is closed: wazero cannot
// interrupt every code shape (loop-free recursion), bound what its
// decoder and compiler take for a hostile file, or bound a module's tables,
// and a Go runtime that runs out of memory ends its whole process. The
// child is this program started again (/proc/self/exe) with a hidden
// argument; a program that builds stages must therefore begin main with
//
//	if wasmstage.IsChild() {
//		os.Exit(wasmstage.ChildMain())
//	}
//
// The child runs under a data limit (RLIMIT_DATA), a CPU limit and
// Pdeathsig; the module's memory is a memfd both processes map, so the
// input and output buffers never cross the control pipes (isolate.go,
// protocol.go, child.go; docs/ABI.md section 10). A trusted stage
// (timeout = 0) runs in this process, without those bounds.
//
// # Lifecycle
//
// ParseOptions validates a `[stage.<name>]` section into Options. New reads
// the module (refusing a file over Options.ModuleSizeLimitMiB or whose
// sections declare more entries than they can hold), starts the child
// process, has it compile the module (within Options.CompileTimeout,
// through wazero's compilation cache when Options.CacheDir is set, else a
// temporary one) and check its exports and imports, instantiates it
// (running _initialize and hs_init) and reads its column list; every
// failure there is an error naming the stage and the file. New starts one
// goroutine per child process, which reaps it and ends with it. The Stage
// is then registered as engine.StageSpec{Name: name, Stage: s} (empty
// TimeMetric, so that the pipeline reports Stage<Name>WallClockTime,
// Stage<Name>Metrics and Stage<Name>Errors) and closed with Close when the
// daemon stops, which kills the child and releases everything.
//
// # Concurrency and state
//
// The pipeline may call Process from several workers at once, for
// different snapshots. One instance per stage; Process serializes the calls
// (waiting honours the caller's context), so a Stage is safe for concurrent
// use while the module never runs on two goroutines at once. The module's
// memory persists between calls: a stage can compute deltas between
// consecutive snapshots, which the process daemon hands over in timestamp
// order. State is lost when the daemon restarts and when a call fails: the
// failed instance is discarded (with its child process when it was killed)
// and the next call creates a new one.
//
// # Limits
//
// Options.Timeout bounds every call (0: no bound, in this process);
// Options.MemoryLimitMiB caps the linear memory with WithMemoryLimitPages;
// Options.MaxMetrics caps the records of one call, checked before
// decoding. Every object, server and metric name is validated (no empty
// name, no byte <= 0x20 or 0x7f, valid UTF-8, no Unicode line separator;
// no empty segment in a free path), so no output can add a line to the
// Graphite stream. A trap, timeout, exhausted memory, dead child, malformed
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
