package testenv

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// TestGenerateLarge checks the port against shared/perf/README.md: `cd DST
// && sha256sum * | sha256sum` gives 24355ffa....
func TestGenerateLarge(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "large")
	if err := GenerateLarge("../../testdata/conformance/medium-defaults/incoming/1795507862", dst); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	list := sha256.New()
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dst, n))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(list, "%x  %s\n", sha256.Sum256(data), n)
	}
	const want = "24355ffa305699858bc3f3dceb70389692c397ec97d4813db6df890e0c8c5a7e"
	if got := fmt.Sprintf("%x", list.Sum(nil)); got != want || len(names) != 16 {
		t.Errorf("generated %d files with checksum %s, want 16 and %s", len(names), got, want)
	}
}
