package wasmstage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/haproxystats-go/haproxystats/engine"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzDecode from the examples' outputs")

// output builds an output buffer: the header, then one record per name
// (daemon scope, value 1), then tail.
func output(reserved uint32, names []string, tail []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, outputMagic)
	b = binary.LittleEndian.AppendUint32(b, statusOK)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(names)))
	b = binary.LittleEndian.AppendUint32(b, reserved)
	for _, n := range names {
		b = append(b, abiScopeDaemon, 0, 0, 0, 0, 0)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(n)))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(1))
		b = append(b, n...)
	}
	return append(b, tail...)
}

// TestDecodeReservedHeader: ABI 5.1's reserved field must be 0.
func TestDecodeReservedHeader(t *testing.T) {
	var d decoder
	if _, err := d.decode(output(0, []string{"x"}, nil), 10, &recorder{}); err != nil {
		t.Fatalf("decode(reserved 0) = %v", err)
	}
	for _, reserved := range []uint32{1, 0x80000000} {
		if _, err := d.decode(output(reserved, []string{"x"}, nil), 10, &recorder{}); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("decode(reserved %#x) = %v, want ErrMalformed", reserved, err)
		}
	}
}

// TestDecoderCache: a failed decode leaves the cache as it found it; the
// cache stays within its bounds in names and bytes.
func TestDecoderCache(t *testing.T) {
	var d decoder
	long := func(i int) string { return fmt.Sprintf("%05d%s", i, strings.Repeat("n", 60000)) }
	if _, err := d.decode(output(0, []string{"kept"}, nil), 10, &recorder{}); err != nil {
		t.Fatal(err)
	}
	for call := range 12 {
		names := make([]string, 50)
		for i := range names {
			names[i] = long(call*100 + i)
		}
		bad := []byte{9, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'x'} // unknown scope
		b := output(0, names, nil)
		binary.LittleEndian.PutUint32(b[8:], 51)
		if _, err := d.decode(append(b, bad...), 100, &recorder{}); !errors.Is(err, ErrMalformed) {
			t.Fatalf("decode(bad last record) = %v", err)
		}
		if len(d.names) != 1 || d.bytes != len("kept") {
			t.Fatalf("after failed call %d the cache holds %d names, %d bytes; want only %q", call, len(d.names), d.bytes, "kept")
		}
	}
	for call := range 30 {
		names := make([]string, 50)
		for i := range names {
			names[i] = long(call*100 + i)
		}
		if _, err := d.decode(output(0, names, nil), 100, &recorder{}); err != nil {
			t.Fatal(err)
		}
		if len(d.names) > maxCachedNames || d.bytes > maxCachedNameBytes {
			t.Fatalf("cache of %d names, %d bytes; limits %d, %d", len(d.names), d.bytes, maxCachedNames, maxCachedNameBytes)
		}
	}
	for i := range maxCachedNames + 10 {
		if _, err := d.decode(output(0, []string{"m" + strconv.Itoa(i)}, nil), 10, &recorder{}); err != nil {
			t.Fatal(err)
		}
		if len(d.names) > maxCachedNames {
			t.Fatalf("cache of %d names, limit %d", len(d.names), maxCachedNames)
		}
	}
}

// FuzzDecode feeds the output decoder arbitrary buffers, seeded with real
// outputs of the examples (testdata/fuzz/FuzzDecode, see
// TestFuzzDecodeSeeds): it must never panic, every metric it emits must
// have names that cannot break a Graphite line, and a failed decode must
// leave nothing in the name cache.
//
//	go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 30s ./internal/wasmstage/
func FuzzDecode(f *testing.F) {
	f.Add(output(1, []string{"a"}, nil))
	f.Add((&out{}).rec(5, "app", "srv", "x", 1).rec(7, "", "", "a.b", 2).bytes())
	f.Add((&out{}).rec(1, "", "", "a\nb", 1).bytes())
	f.Add([]byte("HSO1\x01\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00boom!"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d decoder
		if _, err := d.decode(output(0, []string{"primed"}, nil), 10, &recorder{}); err != nil {
			t.Fatal(err)
		}
		var r recorder
		n, err := d.decode(b, 1000, &r)
		sum := 0
		for k, v := range d.names {
			if k != v {
				t.Fatalf("cache maps %q to %q", k, v)
			}
			sum += len(k)
		}
		if sum != d.bytes || len(d.names) > maxCachedNames || d.bytes > maxCachedNameBytes {
			t.Fatalf("cache: %d names of %d bytes, counted %d", len(d.names), sum, d.bytes)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrGuest) && !errors.Is(err, ErrTooManyMetrics) {
				t.Fatalf("decode = %v, not a sentinel error", err)
			}
			if len(d.names) != 1 || d.names["primed"] == "" {
				t.Fatalf("failed decode left %d names in the cache", len(d.names))
			}
			return
		}
		if n != len(r.metrics) {
			t.Fatalf("decode = %d, emitted %d", n, len(r.metrics))
		}
		for _, m := range r.metrics {
			for _, s := range []string{m.Name, m.Object, m.Server} {
				if !utf8.ValidString(s) || strings.ContainsFunc(s, func(c rune) bool { return c <= ' ' || c == 0x7f || c == 0x85 || c == 0x2028 || c == 0x2029 }) {
					t.Fatalf("emitted %+v: a name that breaks a line", m)
				}
			}
			if m.Name == "" {
				t.Fatalf("emitted %+v without a name", m)
			}
		}
	})
}

// TestFuzzDecodeSeeds checks that the seeds of FuzzDecode are what the
// examples return (decode without error, with metrics) and, with
// -update-seeds, writes them again from the examples' outputs on the
// dev4-two-snapshots snapshots.
func TestFuzzDecodeSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if *updateSeeds {
		snaps := []*engine.Snapshot{
			loadSnapshot(t, conformance+"/dev4-two-snapshots/incoming/1795507783"),
			loadSnapshot(t, conformance+"/dev4-two-snapshots/incoming/1795507784"),
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range goExamples {
			s := newStage(t, Options{Name: name, Module: example(t, name), Timeout: 10 * time.Second})
			var out []byte
			for _, snap := range snaps {
				out = rawOutput(t, s, snap)
			}
			seed := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(out)))
			if err := os.WriteFile(filepath.Join(dir, name), []byte(seed), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 4 {
		t.Fatalf("%d seeds in %s, want one per example", len(entries), dir)
	}
	for _, e := range entries {
		text, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lit, ok := bytes.CutPrefix(bytes.TrimSpace(text), []byte("go test fuzz v1\n[]byte("))
		if !ok {
			t.Fatalf("%s: not a fuzz seed", e.Name())
		}
		s, err := strconv.Unquote(string(bytes.TrimSuffix(lit, []byte(")"))))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		var d decoder
		var r recorder
		if _, err := d.decode([]byte(s), DefaultMaxMetrics, &r); err != nil || len(r.metrics) == 0 {
			t.Errorf("%s: decode = %v with %d metrics, want a real output", e.Name(), err, len(r.metrics))
		}
	}
}

// rawOutput runs snap through s as Process does and returns a copy of the
// output buffer before it is decoded.
func rawOutput(t *testing.T, s *Stage, snap *engine.Snapshot) []byte {
	t.Helper()
	ctx := context.Background()
	s.sem <- struct{}{}
	defer func() { <-s.sem }()
	s.run.beginCall()
	size, err := s.enc.plan(snap, s.columns)
	if err != nil {
		t.Fatal(err)
	}
	ptr, buf, err := s.run.input(ctx, size)
	if err != nil {
		t.Fatal(err)
	}
	s.enc.write(buf, snap)
	out, err := s.run.process(ctx, ptr, size)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), out...)
}
