// Package process is the haproxystats-process daemon: workers take
// snapshot directories from the spool, run the pipeline over them with
// every line streamed, chunk by chunk, to each destination (Graphite,
// Kafka, the local store), and remove a directory only once every
// destination has every line computed from it.
//
// Delivery is what makes the spool a durable queue. A snapshot is removed
// after each destination's Waiter reports it delivered: Graphite once its
// lines were acknowledged by the relay's TCP stack (not merely written),
// Kafka once every record was acknowledged by the brokers, the local store
// once its file was written and fsynced. Nothing holds a snapshot's lines
// for a resend: a snapshot whose delivery failed is processed again from
// the spool, where it still is, after RetryDelay (a destination that is
// down makes the workers wait in Open, the snapshots waiting unread in the
// spool). After a crash or a restart, snapshots not yet removed are
// processed again; replay is harmless because Graphite overwrites a point
// with the same path and timestamp, and Kafka consumers absorb duplicates.
//
// The Queue owns the snapshots: the daemon reports each one with
// Done(name, delivered), and the queue removes a delivered one. With
// [process] source = spool the queue is the spool watcher (spool.Watcher):
// a snapshot the pipeline cannot process stays in the spool until the next
// start. With source = kafka it is the Kafka source (source.go): the
// snapshots of internal/snapsource's consumer, <consumer-dir>/<host>/<epoch>,
// each processed with the prefix its own host would use (a view of the
// pipeline per host, engine.Pipeline.WithPaths), and the cluster buckets of
// internal/cluster, <consumer-dir>/_cluster/<cluster>/<bucket>/view/<bucket>,
// processed with the cluster's prefix; a host snapshot is reported to the
// consumer (which commits its offset) only once its own metrics and the
// bucket counting it were delivered, and one the pipeline cannot process
// is moved to <consumer-dir>/_failed/ (Failer) and reported delivered, so
// that its partition moves on.
//
// Lifecycle: New validates and starts nothing; Run(ctx) starts the spool
// watcher, the destinations and the workers, and returns after ctx is
// cancelled: it stops taking snapshots, gives the ones in flight
// StopTimeout to be delivered, unless a destination reports that it can
// deliver nothing (Staller: not connected, or nothing acknowledged for
// StallTimeout), in which case they are left in the spool at once; then it
// stops the destinations and releases the pipeline (Config.Release). Run is
// called once.
//
// With [process] monotonic-counters, FromConfig gives the daemon the
// counters store as its Sequencer: Pending is called in hand-out order,
// Done once the pipeline returned (the state file is written before the
// snapshot can be removed; a failed write keeps it in the spool), and a
// snapshot enters the pipeline only once the one handed out before it
// holds its working memory, so that stages waiting for earlier snapshots
// never deadlock on the memory budget (see Sequencer).
//
// A panic while processing one snapshot is recovered, logged with the
// snapshot name and counted; the snapshot stays in the spool and is not
// retried until the next start (from Kafka: it is set aside), so one
// poisonous snapshot cannot stop the program or spin a worker.
package process
