// Package cluster aggregates the snapshots of the hosts of a cluster
// (central processing, [process] cluster-name): for each cluster and each
// bucket of cluster-interval seconds, one snapshot per host, computed by
// the pipeline as one snapshot whose files are every host's files, so
// that the built-in stages aggregate across host x process exactly as
// they do across processes (sums, means, percentiles).
//
// # Buckets
//
// A host snapshot of epoch e counts in bucket e - e%Interval of its
// cluster, whose lines carry that epoch. One snapshot per host and bucket:
// a second one replaces the first. A bucket is handed out (Next) as soon
// as it is complete, every host expected having reported, or Wait after
// its first snapshot arrived, with the hosts it has. A host is expected in
// a bucket when it counted in an earlier bucket within HostsExpiry and in
// no newer one (one host's snapshots arrive in order: a host that reported
// a newer bucket skipped this one). A cluster the aggregator saw no host
// of before (at the start, or after its partition moved here) has no
// expected hosts: its first bucket waits.
//
// A host arriving after its bucket was sent (Late) makes the bucket sent
// again with every host (Graphite keeps the last value of a path and
// timestamp), as long as the bucket is kept: Late after its delivery, and
// until a bucket Late newer was sent. Later, or for a bucket never seen
// here that is older than the newest sent (the previous owner of the
// partition sent it), the host is TooLate: only its own metrics are sent.
//
// # Holding snapshots, and the source's bound
//
// The source (internal/snapsource) may report a host snapshot delivered,
// which commits its offset and lets it be removed, only once its own
// metrics and the bucket counting it were delivered: Add, HostDone and End
// return the Releases that say when. The source holds at most QueueSize
// snapshots, and fetches nothing more while it holds that many: when every
// one of them is held here waiting for a bucket and no bucket is in
// flight, nothing else can arrive, so the oldest bucket not sent is handed
// out at once with the hosts it has ("queue full"); its hosts arriving
// later make it sent again. Set [kafka] consumer-queue-size to at least
// twice the hosts of a cluster to avoid that.
//
// # Files
//
// A Store keeps each bucket's files as hard links to the host snapshots'
// files (AddHost), so that the bucket survives the removal of the host
// snapshots it counts (a late host recomputes it), and makes for each
// emission a snapshot directory of <host>.<file> links (View), which the
// pipeline reads as any snapshot.
//
// # Concurrency
//
// An Aggregator and a Store are not safe for concurrent use: the caller
// (internal/process's Kafka source) serialises every call, its file work
// included, under one lock. Time is a parameter of every call (tests use a
// fake clock).
package cluster
