// Package graphite delivers metric lines to Graphite (carbon-c-relay,
// carbon-cache, go-carbon ...) over one TCP connection speaking the plaintext
// protocol.
//
// The lines are formatted elsewhere ("path value timestamp\n"); a caller
// hands over the lines of one snapshot as one batch with [Client.Send] and
// gets a [Delivery] that reports when the whole batch has been delivered.
//
// # Delivery semantics
//
// A batch is delivered when every one of its bytes was written to the
// connection AND acknowledged by the peer's TCP stack. A returning write()
// is not enough: the bytes may still sit in our kernel's send queue and die
// there when the relay resets or restarts. On Linux the client therefore
// reads the number of unacknowledged bytes of the socket with
// ioctl(SIOCOUTQ) after writing, and a batch counts as delivered once the
// acknowledged part of the stream covers its last byte while the connection
// is still established. If the acknowledgements stop advancing for
// Config.WriteTimeout, or the connection fails or is closed by the peer
// first, every batch not yet confirmed is sent again, whole and in order, on
// the next connection. A point may thus reach Graphite twice; Graphite
// overwrites a point with the same path and timestamp, so this is harmless.
// Bytes acknowledged by the peer's kernel but never read by the relay (it
// crashed with them in its receive buffer) are beyond what TCP can tell us.
//
// On other operating systems SIOCOUTQ is not available and a batch counts as
// delivered as soon as its last write returned.
//
// Batches are written in the order Send accepted them, in writes of up to
// 128 KiB, each bounded by Config.WriteTimeout. A failed connect, write or
// acknowledgement wait is retried: after the first failure the client waits
// Config.Interval, then Interval*Backoff, Interval*Backoff², ... for
// Config.Retries attempts; when they all failed it logs a warning, pauses
// Config.Delay, and starts the next round. It does so forever while its
// context is alive. A connection closed by the peer while idle (relay
// restart) is replaced when the next batch arrives.
//
// At most Config.QueueSize lines are held in memory (accepted and not yet
// delivered); Send blocks, first come first served, until there is room.
// A batch larger than QueueSize on its own is accepted once nothing else is
// held, so it cannot deadlock.
//
// # Lifecycle
//
// [New] validates the configuration and starts nothing. [Client.Run] owns
// the connection and is called once; it returns nil when its context is done,
// after one final delivery attempt bounded by Config.FlushTimeout (one
// connect, no retries). Batches still undelivered then are finished with
// [ErrClosed]; they are still in the spool and will be replayed.
//
// # Concurrency
//
// Send, Stats and the Delivery methods are safe for concurrent use by many
// goroutines (one per worker). Send takes ownership of the slice it is
// given: the caller must not modify it afterwards.
package graphite
