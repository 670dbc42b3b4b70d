// Package haproxy talks to HAProxy's stats socket (the CLI, "stats socket" in
// haproxy.cfg) over a UNIX or TCP socket.
//
// A [Client] is a plain value holding where the socket is and how to connect
// to it (connect timeout, retries, pause between attempts, read chunk size).
// [Client.Command] opens one connection, sends one command, reads the answer
// until HAProxy closes the connection (the CLI in non-interactive mode answers
// one command and closes) and returns it. An empty answer is an error
// ([ErrEmptyAnswer]). Every error names the socket and the command.
//
// Lifecycle: there is none. A Client holds no connection between calls and
// starts no goroutine that outlives a call; the context passed to Command
// bounds connecting, retrying, writing and reading.
//
// Concurrency: a Client is safe for concurrent use by many goroutines as long
// as its fields are not changed meanwhile; each call uses its own connection.
package haproxy
