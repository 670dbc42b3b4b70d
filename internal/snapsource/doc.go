// Package snapsource is the Kafka source of snapshots of the central
// processing tier: it consumes [kafka] snapshot-topic in consumer group
// [kafka] group, writes each snapshot record (internal/snaprecord) into a
// directory of its own, and hands the snapshots to the processor, which
// reports each one delivered (or not); an offset is committed only once
// every snapshot at or before it in its partition was delivered.
//
// # Handing out
//
// [Consumer.Run] polls the topic and writes each record's files to
// <Dir>/<host>/<epoch>/ (the layout of a spool snapshot: the directory's
// name is the epoch of every line computed from it, the host is the load
// balancer's). [Consumer.Next] hands the snapshots out in the order they
// were consumed (one host's in order, since they share a partition), as a
// [*Snapshot]: Host, Cluster (of a version 2 record), Epoch, Dir.
// [Consumer.Live] tells whether a snapshot handed out still belongs to a
// partition of this member. The caller processes Dir and calls
// [Consumer.Done] with delivered = true once every destination has the
// metrics (the directory is then removed), or false to have the same
// snapshot handed out again, before newer ones (wait before, if the failure
// may repeat at once). Every snapshot handed out must be given to Done.
//
// Bounds: at most QueueSize snapshots are on disk at once, handed out or
// waiting; at that many the consumer pauses fetching and polls nothing
// until Done makes room. The client fetches at most 1 MiB per broker
// request (or one record batch, when larger), and a batch may decompress
// to at most twice MaxSnapshotBytes (a larger one stops its partition,
// with an error naming max-snapshot-bytes). A record is held in memory
// only while it is written out.
//
// Two records of the same host and epoch (a snapshot published twice, after
// a publisher restart) are one snapshot: the second is attached to the
// first while it is on disk, and delivered with it.
//
// A record that is not a snapshot record, is corrupt, of an unknown
// version or larger than MaxSnapshotBytes cannot be processed by this
// consumer: it is logged (partition, offset, reason), counted in
// Stats.Rejected and committed past; it stays in the topic for its
// retention time. Upgrade the consumers before the producers.
//
// # Commits
//
// Offsets are committed by the consumer (auto-commit off): every
// CommitInterval, for each partition, up to the first record not yet
// delivered (a record is delivered when its snapshot was reported
// delivered, or it was rejected); when partitions are revoked, at once and
// synchronously for those, before they move; at a stop, before leaving the
// group. So an offset is never committed before the snapshots it covers
// were delivered: a crash, a kill -9 or a rebalance re-delivers what was
// not (at-least-once; the processing absorbs duplicates: Graphite keeps
// the last value of a path and timestamp).
//
// Rebalances are blocked while a polled batch is written out (franz-go's
// BlockRebalanceOnPoll), so the partitions of a batch are this member's.
// When partitions are revoked (or lost), the snapshots of those partitions
// still waiting are dropped (their directories removed; the new owner
// consumes them from the committed offset); those already handed out stay
// with their caller, but their Done no longer commits anything for the
// partition, even if it comes back to this member.
//
// # Lifecycle and concurrency
//
// [New] and [FromSettings] check the configuration and start nothing.
// [Consumer.Run] removes what an earlier run left in Dir (snapshot and
// temporary directories of <Dir>/<host>/), creates the client, joins the
// group and consumes until its context ends. Then it stops fetching and
// handing out (Next returns [ErrClosed]), drops the waiting snapshots,
// waits at most StopTimeout for the handed-out ones to be reported, commits
// what was delivered, leaves the group and returns. Done after that
// removes the directory and commits nothing. Run is called once.
//
// Next, Done and Stats are safe for concurrent use by many workers.
package snapsource
