// Package engine is the public API of haproxystats-go: it turns one HAProxy
// statistics snapshot into Graphite plaintext lines, streaming, in memory
// that does not grow with the snapshot.
//
// A snapshot is a directory `incoming/<epoch>/` holding, per HAProxy
// process, the answer to `show info` (`<socket>_info`) and to `show stat`
// (`<socket>_stat`). A Pipeline reads its files one at a time, in name
// order, through a fixed buffer (only regular files, at most
// Config.MaxFileSize bytes); when the snapshot is the only one being
// processed and every Fold is a Merger, the second half of its `*_stat`
// files is read at the same time on a second goroutine, with a second
// buffer and parser and Folds of its own, merged at the end (see Merger).
// The `show info` answers become the InfoTable (one row per process, a
// few hundred bytes). The `show stat` rows are parsed into batches of a
// few hundred rows (a StatTable holding only the columns the stages asked
// for, found by header name in any HAProxy version) and handed to the
// stages batch by batch; a batch is reused once they have seen it.
//
// # Stages: a fan-out
//
// A pipeline's stages all see the same snapshot, concurrently; none sees
// another's output. There are two kinds:
//
//   - A Folder (the built-in stages) gets every batch of rows, as the
//     files are read, and folds them into its own per-object state (a Fold,
//     kept with a worker's working memory and reused): the sums of the
//     frontends, backends and servers, not the rows. A snapshot read on
//     two goroutines has two Folds per Folder, each given the batches of
//     its half of the files, and the second merged into the first. When
//     every file was read, each Fold's Finish emits its metrics, all Folds
//     at once on several goroutines. A Fold's lines are written out as it
//     emits them, in chunks of about 64 KiB.
//   - A Stage (WebAssembly stages, most third-party stages) gets the
//     materialised table of every row, with the columns it asked for
//     (ColumnUser), once every file was read; the pipeline keeps that table
//     only when a Stage needs it, and without the rows' name strings when
//     every Stage reads names by number (NameNumberer). A Stage's lines
//     are held until it returns (an error discards them).
//
// A metric is handed to the Emitter as a Metric: a Scope (daemon, process,
// frontend, backend, server, aggregated server, self, or a free path),
// object names, a metric name and a value. The Emitter formats it at once
// as `<path> <value> <timestamp>\n` with the prefix, group and name rules
// of Paths: every byte of a name outside [A-Za-z0-9_:-] becomes '_' (the
// dot among them, as the original did), so that no name, from HAProxy or
// from a stage, can add a line or a field. The Pipeline measures each stage
// and emits the self-metrics under `<prefix>.haproxystats.`.
//
// # Lifecycle and concurrency
//
// Build one Pipeline at start-up and share it between workers: ProcessDir
// and ProcessFiles are safe for concurrent use, so the stages must be too
// (a Folder by keeping per-snapshot state in its Folds; a Stage by
// design, or by serializing its calls, as the WebAssembly stages do). The
// working memory of the snapshots processed at once is bounded by
// Config.MemoryBudget: a call that would exceed it waits, and a snapshot
// is read on a second goroutine only when a second working memory fits
// (or none was measured yet: the first snapshot). A call's lines
// go to the io.Writer it is given, whole lines per Write, from one
// goroutine at a time; nothing of a snapshot is kept once the call
// returns. Stages must not keep the Snapshot, its tables or a batch.
//
// Package enginetest runs golden cases in the conformance format through a
// Pipeline, for `go test` and for `haproxystats-engine test`; package
// github.com/haproxystats-go/haproxystats/daemon runs the
// haproxystats-process daemon with a Go program's own stages.
package engine
