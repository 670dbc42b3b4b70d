// Command child is the child process of the WASM stages of the tests when
// the test binary is built with the race detector, whose shadow memory
// rules out the data limit the containment tests check: a program built
// without -race that only runs stage children, as the daemons' main does
// first thing.
package main

import (
	"fmt"
	"os"

	"github.com/haproxystats-go/haproxystats/internal/wasmstage"
)

func main() {
	if wasmstage.IsChild() {
		os.Exit(wasmstage.ChildMain())
	}
	fmt.Fprintln(os.Stderr, "child: only runs as the child process of a WASM stage")
	os.Exit(2)
}
