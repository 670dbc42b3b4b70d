// Package haproxy talks to HAProxy's stats socket (the CLI, "stats socket" in
// haproxy.cfg) and to its master CLI (haproxy -W -S) over a UNIX or TCP
// socket.
//
// A [Client] is a plain value holding where the socket is and how to connect
// to it (connect timeout, retries, pause between attempts, read size, the
// longest answer accepted, whether to half-close after sending).
// [Client.Stream] opens one connection, sends one command, and copies the
// answer to a writer through a buffer of at most [MaxReadSize] bytes until
// HAProxy closes the connection (the CLI in non-interactive mode answers one
// command and closes; a master CLI closes once the client has shut its
// sending side down, see Client.HalfClose). [Client.Command] returns the
// answer in memory. An empty answer ([ErrEmptyAnswer]) and one longer than
// Client.MaxAnswer ([ErrAnswerTooLarge]) are errors. Every error names the
// socket and the command.
//
// [ParseShowProc] reads a master CLI's "show proc" (HAProxy 2.6 to 3.x),
// [WorkerCommand] addresses a command to one worker through the master, and
// [CheckWorkerAnswer] tells a worker's answer from the master's complaint
// that the worker is gone.
//
// Lifecycle: there is none. A Client holds no connection between calls and
// starts no goroutine that outlives a call; the context passed to Command or
// Stream bounds connecting, retrying, writing and reading.
//
// Concurrency: a Client is safe for concurrent use by many goroutines as long
// as its fields are not changed meanwhile; each call uses its own connection
// (and the caller's buffer, which must not be shared between calls in
// flight).
package haproxy
