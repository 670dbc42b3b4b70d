package ctest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// guest is an SDK test module instantiated directly on wazero, without
// internal/wasmstage: the tests call its exports with buffers they write
// byte by byte, malformed ones included, which the host never sends.
type guest struct {
	t      *testing.T
	mod    api.Module
	logs   []string
	stderr bytes.Buffer
}

func newGuest(t *testing.T, module string) *guest {
	t.Helper()
	ctx := context.Background()
	wasm, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	g := &guest{t: t}
	_, err = r.NewHostModuleBuilder("hs").NewFunctionBuilder().
		WithFunc(func(_ context.Context, m api.Module, level, ptr, n uint32) {
			b, _ := m.Memory().Read(ptr, n)
			g.logs = append(g.logs, fmt.Sprintf("%d %s", level, b))
		}).Export("log").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// _initialize runs when exported (wasi-libc); the Rust module has none.
	cfg := wazero.NewModuleConfig().WithStartFunctions("_initialize").WithStderr(&g.stderr)
	if g.mod, err = r.InstantiateWithConfig(ctx, wasm, cfg); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *guest) call(name string, args ...uint64) uint64 {
	g.t.Helper()
	res, err := g.mod.ExportedFunction(name).Call(context.Background(), args...)
	if err != nil {
		g.t.Fatalf("%s%v: %v", name, args, err)
	}
	return res[0]
}

// alloc asks hs_alloc for len(b) bytes, writes b there, and returns the
// address.
func (g *guest) alloc(b []byte) uint32 {
	g.t.Helper()
	ptr := uint32(g.call("hs_alloc", uint64(len(b))))
	if ptr == 0 || ptr%8 != 0 {
		g.t.Fatalf("hs_alloc(%d) = %#x, want a non-zero multiple of 8", len(b), ptr)
	}
	if !g.mod.Memory().Write(ptr, b) {
		g.t.Fatalf("hs_alloc(%d) = %#x: outside memory", len(b), ptr)
	}
	return ptr
}

// read returns the buffer a packed ptr<<32|len result points to.
func (g *guest) read(packed uint64) []byte {
	g.t.Helper()
	if packed == 0 {
		return nil
	}
	b, ok := g.mod.Memory().Read(uint32(packed>>32), uint32(packed))
	if !ok {
		g.t.Fatalf("buffer %#x outside memory", packed)
	}
	return slices.Clone(b)
}

// process runs hs_process over in (written at an hs_alloc address, the
// length passed as given) and decodes the output buffer by hand: the
// metrics as "scope object server name value" lines, or the error
// message.
func (g *guest) process(in []byte, length int) (metrics []string, errMsg string) {
	g.t.Helper()
	ptr := g.alloc(in)
	out := g.read(g.call("hs_process", uint64(ptr), uint64(uint32(length))))
	le := binary.LittleEndian
	if len(out) < 16 || le.Uint32(out) != 0x314F5348 || le.Uint32(out[12:]) != 0 {
		g.t.Fatalf("output header % x", out[:min(16, len(out))])
	}
	switch status, n := le.Uint32(out[4:]), le.Uint32(out[8:]); status {
	case 1:
		if int(n) != len(out)-16 || n > 512 {
			g.t.Fatalf("error output: length %d, %d bytes follow", n, len(out)-16)
		}
		return nil, string(out[16:])
	case 0:
		rec := out[16:]
		for i := uint32(0); i < n; i++ {
			if len(rec) < 16 || rec[1] != 0 {
				g.t.Fatalf("record %d of %d: % x", i, n, rec)
			}
			lo, ls, ln := int(le.Uint16(rec[2:])), int(le.Uint16(rec[4:])), int(le.Uint16(rec[6:]))
			v := math.Float64frombits(le.Uint64(rec[8:]))
			if len(rec) < 16+lo+ls+ln {
				g.t.Fatalf("record %d truncated", i)
			}
			s := rec[16:]
			metrics = append(metrics, fmt.Sprintf("%d %q %q %q %v", rec[0], s[:lo], s[lo:lo+ls], s[lo+ls:lo+ls+ln], v))
			rec = rec[16+lo+ls+ln:]
		}
		if len(rec) != 0 {
			g.t.Fatalf("%d bytes after the last record", len(rec))
		}
		return metrics, ""
	default:
		g.t.Fatalf("output status %d", status)
	}
	return nil, ""
}

// minimalInput is a valid input buffer (docs/ABI.md section 3) written by
// hand: snapshot "1795507806", strings "scur" and "slim", no `show info`
// row, no statistics row, and the columns scur and slim (empty).
func minimalInput() []byte {
	le := binary.LittleEndian
	b := make([]byte, 64, 256)
	b = append(b, "1795507806"...)
	b = pad8(b)
	strOff := len(b)
	strs := []string{"scur", "slim"}
	b = append(b, make([]byte, 8*len(strs))...)
	for i, s := range strs {
		le.PutUint32(b[strOff+8*i:], uint32(len(b)))
		le.PutUint32(b[strOff+8*i+4:], uint32(len(s)))
		b = append(b, s...)
	}
	b = pad8(b)
	infoOff := len(b) // no process, no key: empty
	statOff := len(b) // no process, no row: the column blocks only
	for id := range strs {
		b = le.AppendUint32(b, uint32(id))
		b = le.AppendUint32(b, 0)
	}
	le.PutUint32(b[0:], 0x31495348)
	le.PutUint32(b[4:], 1)
	le.PutUint32(b[8:], uint32(len(b)))
	le.PutUint32(b[12:], uint32(len(strs)))
	le.PutUint64(b[16:], 1795507806)
	le.PutUint32(b[24:], 10)
	le.PutUint32(b[44:], 2) // columns
	le.PutUint32(b[48:], uint32(strOff))
	le.PutUint32(b[52:], uint32(infoOff))
	le.PutUint32(b[56:], uint32(statOff))
	return b
}

func pad8(b []byte) []byte {
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

// TestABI checks the exports of the C and Rust SDKs byte by byte against
// docs/ABI.md: version, column list, hs_alloc, the output encoding of a
// hand-written input, hs_init's parameter decoding, and that every
// malformed input fails the call with the SDK's message instead of being
// read out of bounds.
func TestABI(t *testing.T) {
	for _, name := range sdkModules {
		t.Run(name, func(t *testing.T) {
			g := newGuest(t, built(t, name))
			if v := int32(g.call("hs_abi_version")); v != 1 {
				t.Errorf("hs_abi_version() = %d, want 1", v)
			}
			if cols := string(g.read(g.call("hs_columns"))); cols != "scur nosuchcol slim" {
				t.Errorf("hs_columns() = %q, want %q", cols, "scur nosuchcol slim")
			}
			if p := int32(g.call("hs_alloc", uint64(uint32(math.MaxUint32)))); p != 0 {
				t.Errorf("hs_alloc(-1) = %#x, want 0", p)
			}

			// hs_init: alpha = -42, beta = "two words", in the layout of
			// section 4; then a count that promises more than follows.
			le := binary.LittleEndian
			params := le.AppendUint32(nil, 2)
			for _, s := range []string{"alpha", "-42", "beta", "two words"} {
				params = le.AppendUint32(params, uint32(len(s)))
				params = append(params, s...)
			}
			if rc := int32(g.call("hs_init", uint64(g.alloc(params)), uint64(len(params)))); rc != 0 {
				t.Fatalf("hs_init(alpha, beta) = %d, stderr %q", rc, g.stderr.String())
			}
			bad := slices.Clone(params)
			le.PutUint32(bad, 3)
			if rc := int32(g.call("hs_init", uint64(g.alloc(bad)), uint64(len(bad)))); rc == 0 {
				t.Errorf("hs_init(count 3, 2 parameters) = 0, want a refusal")
			}

			in := minimalInput()
			got, errMsg := g.process(in, len(in))
			if errMsg != "" {
				t.Fatalf("hs_process(minimal input) failed: %s", errMsg)
			}
			d := func(name string, v float64) string { return fmt.Sprintf("1 \"\" \"\" %q %v", name, v) }
			p := func(name string, v float64) string { return fmt.Sprintf("7 \"\" \"\" %q %v", name, v) }
			want := []string{
				d("Rows", 0), d("Columns", 2), d("Time", 1795507806), d("NameLen", 10), d("Procs", 0),
				d("InfoRows", 0), d("MissingColumn", 1), d("FirstColumnIsScur", 1), d("ParamCount", 2),
				d("ParamAlpha", -42), d("ParamBetaLen", 9), d("FindOK", 1), d("StableID", 1), d("SameRows", 0),
				p("sdk.kind.other", 0), p("sdk.kind.frontend", 0), p("sdk.kind.backend", 0), p("sdk.kind.server", 0),
			}
			if !slices.Equal(got, want) {
				t.Errorf("hs_process(minimal input) records:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// Bit 0 of the flags at offset 60: the same rows as before.
			in = minimalInput()
			binary.LittleEndian.PutUint32(in[60:], 1)
			if got, errMsg = g.process(in, len(in)); errMsg != "" || !slices.Contains(got, d("SameRows", 1)) {
				t.Errorf("hs_process(input flagged same rows) = %q (error %q), want SameRows 1", got, errMsg)
			}

			set32 := func(off int, v uint32) func([]byte) []byte {
				return func(b []byte) []byte { le.PutUint32(b[off:], v); return b }
			}
			for _, tt := range []struct {
				name   string
				change func([]byte) []byte
				want   string
			}{
				{"short", func(b []byte) []byte { return b[:40] }, "shorter than its header"},
				{"magic", set32(0, 0x31495349), "magic is not HSI1"},
				{"version", set32(4, 2), "ABI version"},
				{"length", set32(8, 1000), "length does not match"},
				{"name", set32(24, 1000), "snapshot name outside"},
				{"unaligned section", set32(52, 81), "not a multiple of 8"},
				{"string table", set32(12, 1000), "string table outside"},
				{"string", set32(80, 1000), "string outside"},
				{"daemon section", set32(28, 1000), "daemon section outside"},
				{"statistics rows", set32(40, 1000), "statistics section outside"},
				{"statistics columns", set32(44, 3), "statistics section outside"},
			} {
				in := tt.change(minimalInput())
				// The length in the header, except for a buffer
				// cut short: the host passes what it wrote.
				if got, msg := g.process(in, len(in)); !strings.Contains(msg, tt.want) {
					t.Errorf("hs_process(%s) = %q, error %q; want an error containing %q", tt.name, got, msg, tt.want)
				}
			}
			// An input that is not where hs_alloc put it.
			ptr := g.alloc(in)
			out := g.read(g.call("hs_process", uint64(ptr+8), uint64(len(in)-8)))
			if len(out) < 16 || le.Uint32(out[4:]) != 1 || !strings.Contains(string(out[16:]), "not in the buffer hs_alloc returned") {
				t.Errorf("hs_process(ptr+8) = % x, want an error", out)
			}
			// After all that the module still works.
			if got, msg := g.process(in, len(in)); msg != "" || len(got) != len(want) {
				t.Errorf("hs_process(minimal input) again = %d records, error %q", len(got), msg)
			}
			if !slices.ContainsFunc(g.logs, func(l string) bool { return strings.HasPrefix(l, "1 "+name+": init done") }) {
				t.Errorf("logs %q: no info line from init", g.logs)
			}
		})
	}
}
