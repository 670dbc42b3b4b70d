// Package counters keeps cumulative counters from going down when HAProxy
// reloads: the state behind `[process] monotonic-counters`.
//
// A cumulative counter (stot, bin, req_tot, CumConns ...: [IsStatCounter],
// [IsInfoCounter]) counts since its worker process started. After a reload
// the new worker starts from 0 and the old one exits with its counts, so
// the sum over the workers drops and graphs of its rate lose the old
// worker's traffic. With this package, the value sent for an object and a
// counter is
//
//	the sum over the processes present in the snapshot
//	+ the offset: what every worker of the same HAProxy instance that has
//	  left had counted in its last snapshot
//
// which never goes down while the instance runs, except at a real reset.
//
// # Instances, processes, objects
//
// A process is one pair of files of a snapshot, named as
// [spool.ParseSocketName] reads them. The workers of one master CLI (same
// master name) are one HAProxy instance, and the master PID is its
// incarnation. A plain stats socket ([pull] socket-dir or servers) is an
// instance of its own with one process: it has no leaving workers, and a
// restart of its HAProxy shows as counters going down.
//
// An object is whatever a fold sums over processes (a frontend, a backend,
// a server, an aggregated server, the daemon), named by a key of its own
// choosing ([Key]); objects of different instances with the same key are
// one object, as they are one path in Graphite. The objects of one kind
// and their counters are a part ([Store.Part]): each fold has its own,
// with its own state and ordering.
//
// # Rules
//
// For each part, snapshot by snapshot in time order, each instance is
// handled on its own:
//
//   - A process present gives, per object it has and per counter, its
//     value; an object it does not have counts 0 for it.
//   - A process of the previous snapshot that is missing while other
//     processes of its instance are present has left. Its last values keep
//     counting in the offset, on their own for 2 snapshots (so that a
//     worker missing from a snapshot or two by accident is neither lost nor
//     counted twice when it comes back), then, from the third snapshot
//     without it, for good as part of the instance's carried values, which
//     the offset includes. A worker back after that is counted twice.
//   - An instance whose master PID changed was restarted: its carried
//     values and processes are forgotten, and it starts again from its
//     live values, a reset as graphs expect (nonNegativeDerivative).
//   - When a present process has any counter of any object lower than in
//     its previous snapshot, the counters were cleared (`clear counters
//     all`), a plain socket's HAProxy restarted, or a 32-bit counter
//     (CumConns and CumReq are 32 bits in 2.6) wrapped: the whole instance
//     starts again from its live values, its carried values and the last
//     values of the processes that left forgotten. Offsets are only ever
//     reset as a whole per instance and part, never per counter, so the
//     objects of an instance reset together.
//   - An instance absent from a snapshot (its master CLI or socket was not
//     pulled, or its files were unreadable) keeps counting with the last
//     values of all its processes, as if nothing happened; back with the
//     same master PID, it goes on where it was.
//   - What is not seen for longer than Expiry seconds of snapshot time is
//     forgotten (then the sum goes down once): an absent instance, an
//     object no process of its instance has (a backend removed by a
//     reload), a part not advanced at all (its state starts empty).
//
// The offset of an object is the sum, over the instances, of their carried
// values and of the last values of their processes counted as above. For
// a counter of one instance that is never cleared and never restarted, the
// value sent therefore never decreases; it drops only at a reset of that
// instance or when something expires.
//
// Limits. A worker's counts between its last snapshot and its exit are not
// seen (at most one pull interval of its traffic). Several instances with
// the same object are summed, so a reset of one shows as a drop of the
// sum. HAProxy 3.3 and later with `shm-stats-file` (and GUIDs on the
// objects) keep counters in shared memory across reloads: every worker of
// an instance then reports the same, already cumulative, values; the plain
// sum over workers counts them once per worker while an old worker
// lingers, and this package adds the old worker's values once more when it
// leaves. Do not enable monotonic-counters with shm-stats-file; this
// package cannot tell from `show stat` that counters are shared.
//
// # Ordering, replays and the daemon's contract
//
// Snapshots are processed concurrently and can finish out of order, while
// the state must advance in time order. The daemon calls [Store.Pending]
// with each snapshot's time when it hands the snapshot to a worker, in
// hand-out order (one lock held across taking it from the queue and
// calling Pending), and [Store.Done] when that snapshot's processing ended,
// successfully or not, before its directory is removed. A fold calls
// [Part.Advance] once per snapshot: it waits (bounded by its context)
// until every earlier pending snapshot has been advanced by that part or
// is done, then advances. Done writes the state file, so the state on disk
// is never behind a snapshot already removed from the spool.
//
// A snapshot not newer than a part's state is a replay (a snapshot
// processed again after a crash or a failed delivery, or one that reached
// the spool late): the state does not change and the sample gets the
// offsets of the table in force when that snapshot was advanced
// ([Repeated]). The part keeps, besides the current offset table, the
// tables it superseded in the last Expiry seconds (at most MaxVersions);
// a snapshot never advanced gets the table of the latest snapshot before
// it, and one older than every table kept gets the oldest ([Approximated]).
// Offsets are a function of the state and the sample only, so a snapshot
// whose advance was lost in a crash, advanced again from the state on
// disk, gets the same offsets as the first time.
//
// # The state file
//
// Options.Dir/state holds every part ([StateFile]); it is replaced
// atomically (temporary file, fsync, rename, directory fsync) by Done and
// Close when the state changed, and read by [Open]. A file that is corrupt
// (bad magic, checksum or structure) is logged as an error naming it, kept
// as state.corrupt, and the store starts empty; Open fails only when the
// directory cannot be created.
//
// # Memory
//
// Per part: per live process, per object its instance has, per counter,
// one float64 (its last values: unavoidable, they are what is carried when
// it leaves); per instance with carried values the same again; the current
// offset table and a spare (one float64 per object and counter each, once
// some offset is not 0); the superseded tables, sparse; and about 60 bytes
// per object of indexes. Measured (Part.Size) for 11,000 objects and 25
// counters: 2.9 MB for one worker; 9.5 MB once a reloaded worker has left
// (its values carried, two offset tables); 2.2 MB more per worker alive
// beside it (an old worker lingering). The fold's Sample holds the
// snapshot's values besides: 2.2 MB per process. The state file stores
// non-zero values only, as varints: 3 MB for the same part after a reload.
//
// # Concurrency
//
// A Store and its Parts are safe for concurrent use; Advance calls of one
// part are serialized, those of different parts run in parallel. A Sample
// is owned by one goroutine at a time.
package counters
