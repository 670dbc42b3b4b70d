// Package spool owns the spool: the directory (pull dst-dir = process
// src-dir) that holds one directory per snapshot, named by its pull time in
// whole seconds since the epoch ([IsSnapshotName]: all ASCII digits), each
// holding a <socket>_info and a <socket>_stat file per socket or worker
// pulled ([InfoSuffix], [StatSuffix], [SplitFileName]; the socket part is
// described by [SocketName] and read by [ParseSocketName]). Both sides of
// the spool and its rules live here, so the writer and the reader cannot
// drift apart.
//
// PIDs tell workers apart but never go into a metric path: [ProcessLabels]
// names the processes of a snapshot (<master>.worker, <master>.leaving1
// ...) for per-process metrics, stable across reloads.
//
// # Writing
//
// A [Writer] publishes snapshots (haproxystats-pull, and the one daemon
// `haproxystats-engine run --pull`). [Writer.Begin] creates the snapshot's
// directory in a temporary directory on the same file system;
// [Pending.Write] creates, fills and fsyncs one file in it, from many
// goroutines at once; [Pending.Commit] renames the directory into the spool
// without replacing an existing entry (renameat2 RENAME_NOREPLACE on Linux)
// and fsyncs the spool directory, or [Pending.Abort] removes it. The spool
// therefore only ever holds complete snapshots, and a snapshot that
// appeared there survives a crash. [Writer.Count] is the backlog, counted
// exactly as the reader sees it ([Count]).
//
// # Reading
//
// A [Watcher] hands the snapshot directories to workers. [Watcher.Run]
// queues every snapshot directory present at start, then watches the
// directory with fsnotify for directories created in it or renamed into it
// (how a Writer publishes a snapshot). Plain files and directories whose
// name is not all ASCII digits are ignored; a symlink to a directory counts
// as a snapshot directory (for [Count] too). After an fsnotify queue
// overflow or error it rescans the directory instead of missing anything;
// if the directory itself disappears it is watched again (and rescanned)
// once it is back.
//
// [Watcher.Next] hands out the smallest (oldest) queued snapshot first, so
// everything known at a given moment is processed in timestamp order. A
// name handed out is outstanding until the worker calls [Watcher.Done]
// (finished: the directory was removed, or kept for later) or
// [Watcher.Retry] (queue it again now); while outstanding it is never handed
// out again, whatever events or rescans report. After Done, a directory
// still present becomes eligible again only when it is seen anew: a create
// or rename event, or a rescan. A queued directory that vanished before
// being handed out is skipped.
//
// The watcher keeps no state on disk: the spool directory is the durable
// queue, and a restart simply finds the snapshots still there.
//
// # Lifecycle and concurrency
//
// [NewWriter] and [NewWatcher] check their arguments and start nothing. A
// Writer holds no state between snapshots and is safe for concurrent use;
// see [Pending] for one snapshot's rules. [Watcher.Run] is called once and
// returns nil when its context is done; once Run has returned, Next returns
// [ErrClosed]. Next, Done, Retry and Queued are safe for concurrent use by
// many workers.
package spool
