// Package graphite delivers metric lines to Graphite (carbon-c-relay,
// carbon-cache, go-carbon ...) over one TCP connection speaking the plaintext
// protocol.
//
// The lines are formatted elsewhere ("path value timestamp\n"); the lines of
// one snapshot go through a [Stream] from [Client.Open], written in chunks
// of whole lines as the pipeline produces them: a snapshot's output is never
// held whole. [Stream.Finish] returns a Waiter that reports when every byte
// of the snapshot was delivered.
//
// # Delivery semantics
//
// A snapshot is delivered when every one of its bytes was written to the
// connection AND acknowledged by the peer's TCP stack. A returning write()
// is not enough: the bytes may still sit in our kernel's send queue and die
// there when the relay resets or restarts. On Linux the client therefore
// reads the number of unacknowledged bytes of the socket with
// ioctl(SIOCOUTQ), and a snapshot counts as delivered once the acknowledged
// part of the stream covers its last byte while the connection is still
// established. If the acknowledgements stop advancing for
// Config.WriteTimeout, a write fails or times out, or the peer closes the
// connection, every snapshot not yet confirmed on that connection fails
// with [ErrConnectionLost]: the caller sends it again from the spool, where
// it still is. A point may thus reach Graphite twice; Graphite overwrites a
// point with the same path and timestamp, so this is harmless. The client
// keeps no line for a resend: its memory does not depend on the snapshots'
// size. Bytes acknowledged by the peer's kernel but never read by the relay
// (it crashed with them in its receive buffer) are beyond what TCP can tell
// us.
//
// On other operating systems SIOCOUTQ is not available and a snapshot
// counts as delivered as soon as its last write returned.
//
// Writes (at most a chunk of about 64 KiB each) are bounded by
// Config.WriteTimeout; the streams of several snapshots interleave their
// chunks, each a run of whole lines. A failed connect, write or
// acknowledgement wait is retried: after the first failure the client waits
// Config.Interval, then Interval*Backoff, Interval*Backoff², ... for
// Config.Retries attempts; when they all failed it logs a warning, pauses
// Config.Delay, and starts the next round. It does so forever while its
// context is alive and a stream wants a connection. A connection closed by
// the peer while idle (relay restart) is replaced when the next snapshot
// arrives, without counting as a failure.
//
// # Lifecycle
//
// [New] validates the configuration and starts nothing. [Client.Run] owns
// the connection and is called once; it returns nil when its context is
// done, after closing the connection: Waiters still pending then report
// [ErrClosed] (their snapshots are still in the spool and will be
// replayed). [Client.Stalled] tells a stopping daemon that nothing can be
// delivered, so that it need not wait out its stop timeout.
//
// # Concurrency
//
// Open, Stalled, Stats and the Waiters are safe for concurrent use by many
// goroutines (one per worker). A Stream is used by one goroutine at a time.
package graphite
