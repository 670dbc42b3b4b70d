// Package engine is the public API of haproxystats-go: it turns one HAProxy
// statistics snapshot into Graphite plaintext lines.
//
// A snapshot is a directory `incoming/<epoch>/` holding, per HAProxy
// process, the answer to `show info` (`<socket>_info`) and to `show stat`
// (`<socket>_stat`). A Parser reads those files into a columnar Snapshot:
// an InfoTable with one row per process, and a StatTable with one row per
// frontend, backend, server or listener line of every process, whose
// numeric fields are Columns found by header name (any HAProxy version)
// with a null mask for empty cells.
//
// A Stage computes metrics from a Snapshot and hands them to an Emitter as
// Metric values: a Scope (daemon, process, frontend, backend, server,
// aggregated server, self, or a free path), object names, a metric name
// and a value. The built-in stages live in package builtin; operator
// supplied WebAssembly stages are one more Stage.
//
// A Pipeline runs its stages in order over each snapshot and formats every
// metric as `<path> <value> <timestamp>\n`, applying the path prefix, dot
// replacement and group rules of Paths. It measures each stage and emits
// the self-metrics under `<prefix>.haproxystats.`. A stage that fails loses
// only its own output for that snapshot.
//
// Lifecycle and concurrency: build one Pipeline at start-up and share it
// between workers; ProcessDir, ProcessFiles and Run are safe for concurrent
// use when the stages are. Each call parses into memory that is recycled
// when the call returns, so stages must not keep the Snapshot. The Output
// of a call belongs to the caller until it calls Output.Release.
//
// Package enginetest runs golden cases in the conformance format through a
// Pipeline, for `go test` and for `haproxystats-engine test`.
package engine
