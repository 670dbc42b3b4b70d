// Package localstore keeps a copy of the metric lines sent for each
// snapshot on local disk: the "local-store" section of the configuration.
//
// [Store.Write] stores one snapshot's lines as <dir>/<snapshot>/stats,
// exactly the bytes given. The file is written to a temporary file beside
// it, fsynced, renamed into place and the directory fsynced, so after a
// crash the file holds either the old or the new content in full, never a
// part. Writing a snapshot again (a replay from the spool) replaces its
// file.
//
// The store writes only inside its directory: <dir>/<snapshot> is created
// and opened relative to it without following a symbolic link (a link placed
// there fails the write, naming it), and stats is replaced by a rename, so a
// link of that name is replaced rather than written through. The store's
// directory itself may be a link; the operator chose it.
//
// Lifecycle: [New] creates the directory if needed; there is nothing to
// start or stop.
//
// Concurrency: a Store is safe for concurrent use; concurrent writes of
// different snapshots do not interfere. Two concurrent writes of the same
// snapshot leave one of the two contents in full.
package localstore
