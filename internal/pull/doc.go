// Package pull is haproxystats-pull: it asks every HAProxy stats socket for
// "show info" and "show stat" on a fixed interval and puts each complete set
// of answers into the spool as one snapshot directory (SPEC §3 "Pull").
//
// # Rounds
//
// A round lists the sockets again (every UNIX socket found in SocketDir, plus
// Servers: sockets come and go with HAProxy reloads), sends both commands to
// every socket concurrently (at most Workers exchanges at a time) through
// internal/haproxy, and writes each answer as TmpDstDir/<epoch>/<name>_info
// and <name>_stat, <epoch> being the round's time in whole seconds since the
// epoch. The whole round is bounded by PullTimeout (0: no bound). Only when
// every command of every socket returned a non-empty answer, in time, is the
// directory renamed to DstDir/<epoch>; that rename is the commit point, so
// DstDir never holds a partial snapshot. Otherwise the directory is removed
// and the round fails with a [*RoundError] naming the failed sockets.
//
// Back-pressure: while DstDir holds QueueSize or more snapshot directories
// (names made only of digits), rounds are skipped ([ErrQueueFull]).
//
// Same second: if DstDir/<epoch> already exists (two rounds within one
// second, a clock stepped back, a second puller), the existing directory is
// kept untouched and the new round is discarded ([ErrSnapshotExists]): the
// directory name is the timestamp of every metric computed from it, so a
// round is never relabelled with another second, and the directory a
// processor may already be reading is never replaced. On Linux the rename
// uses RENAME_NOREPLACE, so this holds even against a concurrent writer.
//
// Answers are fsynced before the rename and DstDir after it, so a snapshot
// that appeared in the spool survives a crash.
//
// # Lifecycle
//
// [New] validates a [Config] and starts nothing. [Puller.Run] creates DstDir
// and TmpDstDir, removes snapshot directories left in TmpDstDir by an earlier
// run, and runs a round immediately and then on a grid of PullInterval
// aligned to its start; a round that overruns skips the grid points it
// missed. DstDir is created again if it disappears. When ctx is cancelled,
// the round in flight is cancelled, its temporary directory removed, and Run
// returns nil. [Puller.Round] runs one round, [Puller.Collect] pulls the same
// answers into memory without touching the disk.
//
// # Concurrency
//
// A Puller is safe for concurrent use. Rounds are serialized (a second Round
// call waits for the first); Collect calls may run alongside anything.
package pull
