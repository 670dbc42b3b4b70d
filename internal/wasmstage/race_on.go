//go:build race

package wasmstage

// raceEnabled: built with the race detector, whose shadow memory rules out
// a data limit in the child process (see setDataLimit).
const raceEnabled = true
