package testenv

import (
	"strings"
	"testing"
)

func TestCompareAtLeastOnce(t *testing.T) {
	const expected = "a.x 1 100\na.y * 100\na.z nan 100\nb.x 2 200\n"
	for _, tt := range []struct {
		name, produced string
		dups           int
		mismatches     []string // kinds, in order
	}{
		{"exact", "a.x 1 100\na.y 0.5 100\nb.x 2 200\n", 0, nil},
		{"duplicates", "a.x 1 100\nb.x 2 200\na.x 1 100\na.y 0.5 100\nb.x 2.0 200\nb.x 2 200\n", 3, nil},
		{"missing", "a.x 1 100\na.y 0.5 100\n", 0, []string{"missing"}},
		{"extra", "a.x 1 100\na.y 0.5 100\nb.x 2 200\nc.x 3 300\n", 0, []string{"extra"}},
		{"value", "a.x 7 100\na.y 0.5 100\nb.x 2 200\n", 0, []string{"value"}},
		{"duplicate with another value", "a.x 1 100\na.y 0.5 100\nb.x 2 200\na.x 5 100\n", 0, []string{"extra"}},
		{"malformed", "a.x 1 100\na.y 0.5 100\nb.x 2 200\nbroken\n", 0, []string{"malformed"}},
	} {
		got, dups := CompareAtLeastOnce([]byte(expected), []byte(tt.produced))
		var kinds []string
		for _, m := range got {
			kinds = append(kinds, m.Kind)
		}
		if dups != tt.dups || strings.Join(kinds, " ") != strings.Join(tt.mismatches, " ") {
			t.Errorf("%s: CompareAtLeastOnce = %v, %d dups; want %v, %d dups", tt.name, got, dups, tt.mismatches, tt.dups)
		}
	}
}
