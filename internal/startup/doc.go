// Package startup lets a stop signal end a program's start-up at once.
//
// The programs catch SIGTERM, SIGHUP and SIGINT with signal.NotifyContext,
// so that a stop is graceful once they run. Before that, while they read
// the configuration, check directories and compile WebAssembly stages,
// nothing looks at the context: a stop would wait for the start-up to end,
// or forever if a step blocks. Do runs such a step so that a stop ends it
// at once; the program then logs the stop and exits 0, as after a normal
// stop.
//
// Concurrency: Do runs its function in a goroutine of its own, which it
// abandons on a stop; the caller is expected to exit then.
package startup
