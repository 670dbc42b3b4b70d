// Package localstore keeps a copy of the metric lines sent for each
// snapshot on local disk: the "local-store" section of the configuration.
//
// A [Stream] from [Store.Open] stores one snapshot's lines as
// <dir>/<snapshot>/stats, exactly the bytes written, as the pipeline
// produces them (a snapshot's lines are never held whole). They go to a
// temporary file beside it; [Stream.Finish] fsyncs it, renames it into
// place and fsyncs the directory, so after a crash the file holds either
// the old or the new content in full, never a part; [Stream.Abort] removes
// the temporary file. Writing a snapshot again (a replay from the spool)
// replaces its file. [Store.Write] does all three at once.
//
// The store writes only inside its directory: <dir>/<snapshot> is created
// and opened relative to it without following a symbolic link (a link placed
// there fails the write, naming it), and stats is replaced by a rename, so a
// link of that name is replaced rather than written through. The store's
// directory itself may be a link; the operator chose it.
//
// Lifecycle: [New] creates the directory if needed; [Store.Run] only waits
// for its context, so that the store is one of the daemon's destinations.
//
// Concurrency: a Store is safe for concurrent use; concurrent streams of
// different snapshots do not interfere. Two concurrent streams of the same
// snapshot leave one of the two contents in full. A Stream is used by one
// goroutine at a time.
package localstore
