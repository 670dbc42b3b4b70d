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
// Lifecycle: [New] creates the directory if needed; there is nothing to
// start or stop.
//
// Concurrency: a Store is safe for concurrent use; concurrent writes of
// different snapshots do not interfere. Two concurrent writes of the same
// snapshot leave one of the two contents in full.
package localstore
