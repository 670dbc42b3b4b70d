package engine_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/haproxystats-go/haproxystats/builtin"
	"github.com/haproxystats-go/haproxystats/engine"
)

// rowHash is a Stage that hashes every cell of every row it is given, with
// its row's names, process and kind, per column, so that two pipelines can
// be compared on the whole table, not only on the built-in metrics.
type rowHash struct{}

func (rowHash) Process(_ context.Context, snap *engine.Snapshot, emit engine.Emitter) error {
	t := snap.Stats
	put := func(name string, h hash.Hash64) {
		sum := h.Sum64()
		emit.Emit(engine.Metric{Scope: engine.ScopePath, Name: "hash." + name + ".hi", Value: float64(sum >> 32)})
		emit.Emit(engine.Metric{Scope: engine.ScopePath, Name: "hash." + name + ".lo", Value: float64(sum & (1<<32 - 1))})
	}
	h := fnv.New64a()
	for r := range t.Rows() {
		fmt.Fprintf(h, "%s,%s,%s,%d\n", t.PxName[r], t.SvName[r], t.Procs[t.Proc[r]], t.Kind[r])
	}
	put("names", h)
	var b []byte
	for _, c := range t.Columns() {
		b = b[:0]
		for r := range t.Rows() {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(c.Values[r]))
			if c.Null(r) {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
		h := fnv.New64a()
		h.Write(b)
		put(c.Name, h)
	}
	emit.Emit(engine.Metric{Scope: engine.ScopePath, Name: "rows", Value: float64(t.Rows())})
	return nil
}

// TestParallelParseSameOutput parses two files of the large snapshot, with
// records of every kind the parser handles differently mixed in (quoted,
// short, "\r\n", cells that are not numbers, long numbers), with the
// numbers of each batch read on two goroutines and on one: the output is
// the same, byte for byte, and under -race the two goroutines are seen not
// to share a write.
func TestParallelParseSameOutput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "1795507862")
	if err := generateLarge(filepath.Join("..", "testdata", "conformance", "medium-defaults", "incoming", "1795507862"), dir); err != nil {
		t.Fatal(err)
	}
	files, err := engine.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var stat []engine.File
	for _, f := range files {
		if strings.HasSuffix(f.Name, engine.StatSuffix) && len(stat) < 2 {
			stat = append(stat, f)
		}
	}
	lines := strings.Split(string(stat[0].Data), "\n")
	for i := 150; i < len(lines)-1; i += 97 {
		l := lines[i]
		switch i % 5 {
		case 0: // a quoted name
			lines[i] = `"q,` + l[:strings.IndexByte(l, ',')] + `"` + l[strings.IndexByte(l, ','):]
		case 1: // a short record
			lines[i] = l[:len(l)/3]
		case 2: // "\r\n"
			lines[i] = l + "\r"
		case 3: // a cell that is not a number, and a long number
			f := strings.Split(l, ",")
			f[7], f[8] = "12x", "123456789012345678901"
			lines[i] = strings.Join(f, ",")
		}
	}
	stat[0].Data = []byte(strings.Join(lines, "\n"))

	out := func(parallel bool) string {
		p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "lb"}},
			append(builtin.Stages(builtin.Options{}), engine.StageSpec{Name: "hash", Stage: rowHash{}})...)
		if err != nil {
			t.Fatal(err)
		}
		engine.SetParallel(p, parallel)
		var b bytes.Buffer
		for _, name := range []string{"1795507862", "1795507872"} { // twice: the caches of the second
			if _, err := p.ProcessFiles(context.Background(), name, stat, &b); err != nil {
				t.Fatal(err)
			}
		}
		// The stages write concurrently, and the self-metrics time them:
		// the lines sorted, without the timings.
		var keep []string
		for _, l := range strings.Split(b.String(), "\n") {
			if !strings.Contains(l, "WallClockTime") && !strings.Contains(l, ".haproxystats.") {
				keep = append(keep, l)
			}
		}
		slices.Sort(keep)
		return strings.Join(keep, "\n")
	}
	serial, parallel := out(false), out(true)
	if !strings.Contains(serial, "lb.rows 22200 1795507872") || !strings.Contains(serial, "lb.hash.bin.hi ") {
		t.Fatalf("the hash stage did not see the rows:\n%.2000s", serial)
	}
	if serial != parallel {
		a, b := strings.Split(serial, "\n"), strings.Split(parallel, "\n")
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("line %d differs:\nserial   %s\nparallel %s", i+1, a[i], b[i])
			}
		}
		t.Fatalf("%d lines serial, %d parallel", len(a), len(b))
	}
}
