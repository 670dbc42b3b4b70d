//go:build !wasip1

package hsabi

import (
	"fmt"
	"os"
)

// hostLog writes to standard error outside WebAssembly, so that stage code
// can be unit-tested with the ordinary toolchain.
func hostLog(level Level, msg string) { fmt.Fprintf(os.Stderr, "hsabi log %d: %s\n", level, msg) }

// Run decodes an input buffer (docs/ABI.md) and runs the registered stage
// over it, as hs_process does; it returns the output buffer. It exists
// for tests of stage code outside WebAssembly.
func Run(in []byte) []byte { return runProcess(in) }
