package wasmstage

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestDocumentedLimits checks that docs/ABI.md states the limits the code
// enforces, with the values it enforces.
func TestDocumentedLimits(t *testing.T) {
	b, err := os.ReadFile("../../docs/ABI.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(b)), " ") // line breaks do not matter
	for _, want := range []string{
		fmt.Sprintf("%s columns, in a list of at most %d KiB", thousands(maxColumns), maxColumnsBytes>>10),
		fmt.Sprintf("%s bytes each (the `u16` lengths", thousands(65535)),
		fmt.Sprintf("| `timeout` (seconds, float) | %.1f |", DefaultTimeout.Seconds()),
		fmt.Sprintf("| `memory-limit` (MiB) | %d |", DefaultMemoryLimitMiB),
		fmt.Sprintf("| `max-metrics` | %d |", DefaultMaxMetrics),
		fmt.Sprintf("| `module-size-limit` (MiB) | %d |", DefaultModuleSizeLimitMiB),
		fmt.Sprintf("| `compile-timeout` (seconds, float) | %.0f |", DefaultCompileTimeout.Seconds()),
		fmt.Sprintf("%d per call, %s bytes each", maxLogLines, thousands(maxLogBytes)),
		fmt.Sprintf("%s strings or %d MiB", thousands(maxStrings), maxStringBytes>>20),
		fmt.Sprintf("at most %s names and %d MiB", thousands(maxCachedNames), maxCachedNameBytes>>20),
		fmt.Sprintf("%d MiB + %d × the module's size while it compiles, then what the child holds after compiling + %d MiB", childDataBase>>20, childDataPerByte, childRunHeadroom>>20),
		fmt.Sprintf("kept when at most %d MiB", maxKeptOutput>>20),
		"`module`, `timeout`, `memory-limit`, `max-metrics`, `module-size-limit` and `compile-timeout`",
		"if wasmstage.IsChild() {",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/ABI.md does not say %q", want)
		}
	}
}

// thousands formats n with commas: 1,024.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
