// Package publish sends the snapshots of a spool directory to Kafka, one
// record each: the Kafka side of haproxystats-pull with [pull] destination
// = kafka or both (central processing).
//
// # What it does
//
// haproxystats-pull commits every complete round into the publisher's own
// spool, [pull] kafka-dst-dir (internal/pull; with destination = both the
// same round is also committed into dst-dir for haproxystats-process, the
// two directories sharing the files by hard links, so the two consumers
// never share a directory). A [Publisher] watches that spool
// (spool.Watcher) and takes its snapshots one at a time, oldest first:
// it encodes the directory into one record (internal/snaprecord, at most
// MaxSnapshotBytes; with Config.Cluster the record carries the cluster,
// version 2), produces it to [kafka] snapshot-topic keyed by the cluster
// name when there is one, else by the host name (murmur2 partitioning:
// every host of a cluster, or one host's snapshots, go to one partition,
// in order), waits for the acknowledgement (acks=all, the
// idempotent producer of internal/kafka) and only then removes the
// directory. The spool is the durable buffer: nothing is removed before
// Kafka has it.
//
// # Failures
//
// Broker down or unreachable: the record waits in the producer, which
// retries forever with backoff; the snapshots pile up in the spool, where
// [pull] queue-size stops the rounds for Kafka when it is full, and
// nothing is lost. A snapshot that fails (a record the broker refuses, as
// MESSAGE_TOO_LARGE above the topic's max.message.bytes, a snapshot larger
// than MaxSnapshotBytes, a file that cannot be read) stays in the spool
// and is tried again after a backoff (RetryBackoff, doubled each time up
// to RetryBackoffMax), before any newer one: the host's order is kept, so
// such a snapshot holds the ones after it until the operator acts (the
// error, logged at most every 30 s, says which option). A directory that
// disappears before it is published is skipped.
//
// A snapshot is published at least once: if the publisher stops (or
// crashes) after the broker stored the record but before the directory is
// removed, it is published again at the next start. Consumers absorb
// duplicates (internal/snapsource's commit rules, Graphite's last write).
//
// # Lifecycle and concurrency
//
// [New] and [FromSettings] check their arguments and start nothing.
// [Publisher.Run] creates the directory, runs the watcher and the
// producer, publishes until its context ends, and then stops taking
// snapshots; the one in flight gets the producer's stop (at most
// StopTimeout, about 2 s when nothing is acknowledged at all) and is
// removed if it was acknowledged by then. Run is called once. Stats is
// safe for concurrent use.
package publish
