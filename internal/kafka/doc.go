// Package kafka is the Kafka destination of haproxystats-process: it
// produces the Graphite plaintext lines of every snapshot to one Kafka topic
// with github.com/twmb/franz-go, and reports when a snapshot's records were
// all acknowledged, so that the daemon removes the snapshot from the spool
// only then.
//
// # Records, key and partitions
//
// A [Stream] carries the lines of one snapshot, written in chunks of whole
// lines ("path value timestamp\n"). The lines are packed, in the order
// written, into records of at most Config.MaxRecordBytes: a record ends
// only before a line that would not fit, so it always ends with a newline
// and a line is never split across records. A line longer than the limit
// on its own is left out: it is logged (a [LineTooLongError], once per
// metric path every 30 s) and counted in Stats.Errors, and the stream goes
// on without it and can still succeed, for sending the snapshot again would
// not make the line shorter. A record holds lines of one stream only. This is what go-carbon's Kafka receiver reads with
// parse-protocol "plain": it splits a record's value on newlines and
// requires the last line to end with one.
//
// Every record has the key Config.Key, the host name the daemon passes in,
// and is assigned a partition by murmur2(key) modulo the partition count, as
// Kafka's Java producer does: one load balancer's lines all go to one
// partition, in the order of each stream. Records are timestamped when
// produced (the metric timestamps are in the lines).
//
// # Delivery
//
// The producer is idempotent with acks=all (franz-go's defaults, kept), and
// retries every failed request and connection forever with an exponential
// backoff (Config.RetryBackoff to Config.RetryBackoffMax): records are
// never failed for a broker down. A stream's [Delivery] succeeds only when
// every one of its records was acknowledged; a record that fails (a topic
// that does not exist, a record the broker refuses, the stop) fails it. A
// snapshot whose delivery failed, or whose stream was aborted, is processed
// again from the spool, so a line may reach Kafka more than once.
//
// Memory is bounded: records produced and not yet finished may hold at most
// Config.MaxBufferedBytes (key, value and 256 bytes of bookkeeping each);
// beyond it Write and Finish wait for room until the context given to Open
// ends. franz-go's own limits (MaxBufferedBytes, MaxBufferedRecords) are
// set above that bound, so that its Produce never blocks. Add one record
// being filled per open stream (Config.MaxRecordBytes).
//
// # Lifecycle
//
// [New] (or [FromSettings], from the [kafka] section) checks the
// configuration and starts nothing. [Producer.Run] owns the client: it
// creates it, and when its context ends it stops taking new streams,
// delivers what is still unacknowledged for at most Config.FlushTimeout,
// and gives up earlier when nothing can be delivered (a broker
// unreachable): once records have waited Config.StallTimeout (2 s) without
// any record finished, counted from the last progress before the stop too;
// it then closes the client, which fails every record still
// unacknowledged, and with it every open Delivery, with [ErrClosed]. The
// daemon ends Run only once every snapshot was delivered or left in the
// spool, and gives a short FlushTimeout: what is left then would only
// arrive twice. Open
// waits for Run to have created the client, not for a broker: records wait
// in memory, within the bound, until one is reachable.
//
// Failed broker connections (dial, TLS, SASL) are logged once per broker
// every 30 s, and the client's own warnings once per message every 30 s.
//
// # Concurrency
//
// Open, Stats and the Delivery methods are safe for concurrent use. A
// Stream's methods are called by one goroutine at a time (the worker of its
// snapshot); any number of streams may be open at once. Write copies what
// it keeps.
//
// The daemon's Destination interface (internal/process) returns its own
// Stream and Waiter interfaces; Go has no covariant return types, so the
// daemon wraps [Producer.Open] and [Stream.Finish] in a two-method adapter
// (the tests use one, destinationAdapter, to check the shape).
package kafka
