// Package spool is the process side of the spool: the directory (process
// src-dir = pull dst-dir) that holds one directory per snapshot, named by
// its pull time in whole seconds since the epoch.
//
// A [Watcher] hands the snapshot directories to workers. [Watcher.Run]
// queues every snapshot directory present at start, then watches the
// directory with fsnotify for directories created in it or renamed into it
// (how haproxystats-pull publishes a snapshot). Plain files and directories
// whose name is not all ASCII digits are ignored. After an fsnotify queue
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
// Lifecycle: [NewWatcher] checks the directory and starts nothing;
// [Watcher.Run] is called once and returns nil when its context is done.
// Once Run has returned, Next returns [ErrClosed].
//
// Concurrency: Next, Done, Retry and Queued are safe for concurrent use by
// many workers; Run is called once.
package spool
