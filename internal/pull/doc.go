// Package pull is haproxystats-pull: it asks every HAProxy stats socket, and
// every worker of every master CLI, for "show info" and "show stat" on a
// fixed interval and puts each complete set of answers into the spool as
// one snapshot directory (SPEC §3 "Pull"), through internal/spool's Writer.
//
// # Rounds
//
// A round lists the plain sockets again (every UNIX socket found in
// SocketDir, plus Servers: sockets come and go with HAProxy reloads) and
// sends both commands to every one of them; at the same time it sends
// "show proc" to every master CLI of Masters (haproxy -W -S) and then
// "@!<PID> show info" and "@!<PID> show stat" through that master to each
// worker it lists, current and leaving (an old worker still finishing its
// connections after a reload). All exchanges run concurrently, at most
// Workers at a time, through internal/haproxy; the connection to a master
// is half-closed once the command is sent, because HAProxy 2.6's master
// CLI answers and then waits for the client to close.
//
// Each answer is streamed, through one of Workers read buffers of at most
// haproxy.MaxReadSize bytes, into TmpDstDir/<epoch>/<name>_info or
// <name>_stat, <epoch> being the round's time in whole seconds since the
// epoch and <name> the socket's file name (or host:port), or for a worker
// <master>:master-<master PID>:worker-<PID> (leaving-<PID> for a leaving
// one; see spool.SocketName). Memory therefore stays bounded whatever the
// size of the answers, and an answer longer than MaxAnswerSize fails its
// socket. A worker's answer must be the worker's (it starts "Name: " or
// "# pxname,"), not the master's complaint that the PID is gone.
//
// The whole round is bounded by PullTimeout (0: no bound). Only when every
// command of every socket and worker returned a non-empty answer, in time,
// is the directory renamed to DstDir/<epoch> (see Destinations for the
// Kafka spool); that rename is the commit point, so a spool never holds a
// partial snapshot. Otherwise the directory
// is removed and the round fails with a [*RoundError] naming the failed
// sockets, workers and masters. A master whose workers cannot be listed,
// or that lists no current worker, fails the round.
//
// # Destinations
//
// Destination chooses the spools a round is committed into: DstDir (for
// haproxystats-process; the default), KafkaDstDir (the spool of the Kafka
// publisher, internal/publish, written through TmpDstDir/kafka), or both.
// With both, the round is written once, into the first, and the second
// gets hard links to its files (spool.Pending.CloneInto; copies across file
// systems), committed just before the first: the two consumers never share
// a directory, each removes its own copy, and the files themselves are
// never written again.
//
// Back-pressure: a spool holding QueueSize or more snapshot directories
// (spool.Count) gets no new round; the round goes to the other spool (with
// a warning), and is skipped ([ErrQueueFull]) when every spool is full.
//
// Same second: if DstDir/<epoch> (or KafkaDstDir/<epoch>) already exists
// (two rounds within one second, a clock stepped back, a second puller), the
// existing directory is kept untouched and the new round is discarded
// ([ErrSnapshotExists]): the
// directory name is the timestamp of every metric computed from it, so a
// round is never relabelled with another second, and the directory a
// processor may already be reading is never replaced.
//
// Answers are fsynced before the rename and DstDir after it, so a snapshot
// that appeared in the spool survives a crash.
//
// # Lifecycle
//
// [New] validates a [Config] and starts nothing. [Puller.Run] calls
// [Puller.Prepare] (create the spools and their temporary directories,
// remove snapshot directories left in those by an earlier run), and runs a round
// immediately and then on a grid of PullInterval aligned to its start; a
// round that overruns skips the grid points it missed. DstDir is created
// again if it disappears. When ctx is cancelled, the round in flight is
// cancelled, its temporary directory removed, and Run returns nil.
// [Puller.Round] runs one round.
//
// # Concurrency
//
// A Puller is safe for concurrent use. Rounds are serialized (a second Round
// call waits for the first).
package pull
