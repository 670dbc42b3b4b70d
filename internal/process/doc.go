// Package process is the haproxystats-process daemon: workers take
// snapshot directories from the spool, run the pipeline over them and hand
// the lines to Graphite and the optional local store, and remove a
// directory only once every line computed from it was delivered.
//
// Delivery is what makes the spool a durable queue. A snapshot is removed
// after the Graphite client reports its lines acknowledged by the relay's
// TCP stack (not merely written) and, with a local store, after its file
// was written and fsynced. A snapshot that was not fully handed on stays
// in the spool and is processed again after a restart; replay is harmless
// because Graphite overwrites a point with the same path and timestamp.
//
// Lifecycle: New validates and starts nothing; Run(ctx) starts the spool
// watcher, the Graphite connection and the workers, and returns after ctx
// is cancelled: it stops taking snapshots, gives the ones in flight
// StopTimeout to be delivered (the rest stay in the spool), then closes
// the connection. Run is called once.
//
// A panic while processing one snapshot is recovered, logged with the
// snapshot name and counted; the snapshot stays in the spool and is not
// retried until the next start, so one poisonous snapshot cannot stop the
// program or spin a worker.
package process
