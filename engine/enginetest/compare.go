package enginetest

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Mismatch kinds of conformance/README.md §6.3.
const (
	Missing   = "missing"
	Extra     = "extra"
	Value     = "value"
	Malformed = "malformed"
	Folders   = "folders"
)

// Mismatch is one difference between expected and produced output.
type Mismatch struct {
	Kind string
	// Path and Timestamp identify the line; Want and Got are the values
	// (empty when absent). For Malformed, Got is the whole line; for
	// Folders, Path lists the folders.
	Path, Timestamp, Want, Got string
	// Counted is false for kinds a reference-failure case does not count.
	Counted bool
}

func (m Mismatch) String() string {
	switch m.Kind {
	case Malformed:
		return fmt.Sprintf("malformed line %q", m.Got)
	case Folders:
		return fmt.Sprintf("folders %s", m.Path)
	}
	s := fmt.Sprintf("%-7s %s %s want %s got %s", m.Kind, m.Path, m.Timestamp, orDash(m.Want), orDash(m.Got))
	if !m.Counted {
		s += " (not counted: reference failed)"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type key struct{ path, ts string }

// Compare matches produced lines against expected lines by the rules of
// conformance/README.md §6.2: lines are keyed by (path, timestamp), an
// expected `*` matches any finite number, an expected `nan` may be absent,
// other values match within a relative 1e-9. With referenceFailed, extra
// lines are reported but not counted.
func Compare(expected, produced []byte, referenceFailed bool) []Mismatch {
	var out []Mismatch
	want := map[key][]string{}
	var keys []key
	for _, line := range lines(expected) {
		f := strings.Split(line, " ")
		if len(f) != 3 {
			continue
		}
		k := key{f[0], f[2]}
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
		want[k] = append(want[k], f[1])
	}
	got := map[key][]string{}
	for _, line := range lines(produced) {
		f := strings.Split(line, " ")
		if len(f) != 3 || f[0] == "" || f[1] == "" || f[2] == "" {
			out = append(out, Mismatch{Kind: Malformed, Got: line, Counted: true})
			continue
		}
		k := key{f[0], f[2]}
		if _, ok := want[k]; !ok {
			if _, ok := got[k]; !ok {
				keys = append(keys, k)
			}
		}
		got[k] = append(got[k], f[1])
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].path != keys[j].path {
			return keys[i].path < keys[j].path
		}
		return keys[i].ts < keys[j].ts
	})
	for _, k := range keys {
		w, g := want[k], got[k]
		n := min(len(w), len(g))
		for i := 0; i < n; i++ {
			if !valueMatches(w[i], g[i]) {
				out = append(out, Mismatch{Kind: Value, Path: k.path, Timestamp: k.ts, Want: w[i], Got: g[i], Counted: true})
			}
		}
		for _, v := range w[n:] {
			if strings.EqualFold(v, "nan") {
				continue
			}
			out = append(out, Mismatch{Kind: Missing, Path: k.path, Timestamp: k.ts, Want: v, Counted: true})
		}
		for _, v := range g[n:] {
			out = append(out, Mismatch{Kind: Extra, Path: k.path, Timestamp: k.ts, Got: v, Counted: !referenceFailed})
		}
	}
	return out
}

func valueMatches(want, got string) bool {
	g, err := strconv.ParseFloat(got, 64)
	if err != nil {
		return false
	}
	switch {
	case want == "*":
		return !math.IsNaN(g) && !math.IsInf(g, 0)
	case strings.EqualFold(want, "nan"):
		return math.IsNaN(g)
	}
	w, err := strconv.ParseFloat(want, 64)
	if err != nil || math.IsNaN(g) || math.IsInf(g, 0) {
		return false
	}
	return math.Abs(g-w) <= 1e-9*math.Max(math.Abs(g), math.Abs(w))
}

// lines splits data into its non-empty lines.
func lines(data []byte) []string {
	var out []string
	for _, l := range bytes.Split(data, []byte{'\n'}) {
		if len(l) > 0 {
			out = append(out, string(l))
		}
	}
	return out
}

// Normalize sorts lines by byte value and replaces the value of every
// line whose path contains WallClockTime by `*`, the form of expected.txt.
func Normalize(produced []byte) []byte {
	ls := lines(produced)
	for i, l := range ls {
		f := strings.Split(l, " ")
		if len(f) == 3 && strings.Contains(f[0], "WallClockTime") {
			ls[i] = f[0] + " * " + f[2]
		}
	}
	sort.Strings(ls)
	var b bytes.Buffer
	for _, l := range ls {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// withoutTotalWallClockTime drops TotalWallClockTime lines, which the
// original wrote into the next snapshot's local-store file.
func withoutTotalWallClockTime(data []byte) []byte {
	var b bytes.Buffer
	for _, l := range lines(data) {
		if strings.Contains(l, ".haproxystats.TotalWallClockTime ") {
			continue
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
