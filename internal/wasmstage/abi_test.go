package wasmstage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/haproxystats-go/haproxystats/engine"
)

const conformance = "../../testdata/conformance"

// docReader reads an input buffer following docs/ABI.md section 3, written
// independently of the encoder so that the two check each other.
type docReader struct {
	t *testing.T
	b []byte
}

func (r docReader) u32(off int) uint32 { return binary.LittleEndian.Uint32(r.b[off:]) }
func (r docReader) u64(off int) uint64 { return binary.LittleEndian.Uint64(r.b[off:]) }

func (r docReader) str(id uint32) string {
	off := pad8(64 + int(r.u32(24)))
	if got := int(r.u32(48)); got != off {
		r.t.Fatalf("string table at %d, want %d", got, off)
	}
	e := off + 8*int(id)
	so, sl := int(r.u32(e)), int(r.u32(e+4))
	return string(r.b[so : so+sl])
}

func pad8(n int) int { return (n + 7) / 8 * 8 }

func TestInputLayout(t *testing.T) {
	snap := loadSnapshot(t, conformance+"/dev4-two-snapshots/incoming/1795507783")
	columns := []string{"scur", "no_such_column", "slim", "hrsp_5xx"}
	var e encoder
	size, err := e.plan(snap, columns)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	for i := range b {
		b[i] = 0xAA // the encoder must write every byte
	}
	e.write(b, snap)
	r := docReader{t, b}

	if r.u32(0) != 0x31495348 || string(b[:4]) != "HSI1" || r.u32(4) != 1 || int(r.u32(8)) != size || r.u32(60) != 0 {
		t.Fatalf("header % x", b[:64])
	}
	if ts := int64(r.u64(16)); ts != 1795507783 {
		t.Errorf("time = %d", ts)
	}
	if name := string(b[64 : 64+r.u32(24)]); name != "1795507783" {
		t.Errorf("name = %q", name)
	}
	// Strings are unique.
	seen := map[string]bool{}
	for i := uint32(0); i < r.u32(12); i++ {
		s := r.str(i)
		if seen[s] {
			t.Errorf("string %q twice", s)
		}
		seen[s] = true
	}

	// Daemon section.
	R, K := int(r.u32(28)), int(r.u32(32))
	info := &snap.Info
	if R != len(info.Procs) || K != len(info.Keys) || R != 4 {
		t.Fatalf("R, K = %d, %d; want %d, %d", R, K, len(info.Procs), len(info.Keys))
	}
	off := int(r.u32(52))
	for i := 0; i < R; i++ {
		if got := r.str(r.u32(off + 4*i)); got != info.Procs[i] {
			t.Errorf("info proc %d = %q, want %q", i, got, info.Procs[i])
		}
	}
	off += pad8(4 * R)
	for k := 0; k < K; k++ {
		if got := r.str(r.u32(off + 4*k)); got != info.Keys[k] {
			t.Errorf("info key %d = %q, want %q", k, got, info.Keys[k])
		}
	}
	off += pad8(4 * K)
	for k := 0; k < K; k++ {
		for row := 0; row < R; row++ {
			v := int64(r.u64(off + 8*row))
			null := r.u64(off+8*R+8*(row/64))&(1<<(row%64)) != 0
			if v != info.Values[k][row] || null == info.Has[k][row] {
				t.Errorf("info %s row %d = %d null %v, want %d has %v", info.Keys[k], row, v, null, info.Values[k][row], info.Has[k][row])
			}
		}
		off += 8*R + 8*((R+63)/64)
	}
	if off != int(r.u32(56)) {
		t.Errorf("stat section at %d, daemon section ends at %d", r.u32(56), off)
	}

	// Statistics section.
	st := &snap.Stats
	P, N, C := int(r.u32(36)), int(r.u32(40)), int(r.u32(44))
	if P != len(st.Procs) || N != st.Rows() || N != 25 || C != 3 {
		t.Fatalf("P, N, C = %d, %d, %d", P, N, C)
	}
	for i := 0; i < P; i++ {
		if got := r.str(r.u32(off + 4*i)); got != st.Procs[i] {
			t.Errorf("stat proc %d = %q", i, got)
		}
	}
	off += pad8(4 * P)
	procs, px, sv := off, off+pad8(4*N), off+2*pad8(4*N)
	kinds := off + 3*pad8(4*N)
	for i := 0; i < N; i++ {
		if int32(r.u32(procs+4*i)) != st.Proc[i] || r.str(r.u32(px+4*i)) != st.PxName[i] ||
			r.str(r.u32(sv+4*i)) != st.SvName[i] || b[kinds+i] != st.Kind[i] {
			t.Errorf("row %d keys differ", i)
		}
	}
	off = kinds + pad8(N)
	for _, name := range []string{"scur", "slim", "hrsp_5xx"} {
		if got := r.str(r.u32(off)); got != name || r.u32(off+4) != 0 {
			t.Fatalf("column %q, want %q", got, name)
		}
		col := st.Column(name)
		off += 8
		for i := 0; i < N; i++ {
			v := math.Float64frombits(r.u64(off + 8*i))
			null := r.u64(off+8*N+8*(i/64))&(1<<(i%64)) != 0
			if v != col.Values[i] || null != col.Null(i) {
				t.Errorf("%s row %d = %v null %v, want %v %v", name, i, v, null, col.Values[i], col.Null(i))
			}
		}
		// Bits past the last row are zero.
		if last := r.u64(off + 8*N + 8*((N+63)/64-1)); last>>(N%64) != 0 {
			t.Errorf("%s: bits past the last row set: %x", name, last)
		}
		off += 8*N + 8*((N+63)/64)
	}
	if off != size {
		t.Errorf("buffer ends at %d, size %d", off, size)
	}

	// The string table lives as long as the instance: a second snapshot
	// keeps the first one's strings and ids and appends its own.
	snap2 := loadSnapshot(t, conformance+"/dots-defaults/incoming/"+firstSnapshot(t, conformance+"/dots-defaults"))
	size2, _ := e.plan(snap2, columns)
	b2 := make([]byte, size2)
	e.write(b2, snap2)
	r2 := docReader{t, b2}
	if r2.u32(12) <= r.u32(12) {
		t.Errorf("second table has %d strings, first %d", r2.u32(12), r.u32(12))
	}
	for i := uint32(0); i < r.u32(12); i++ {
		if r2.str(i) != r.str(i) {
			t.Errorf("string %d = %q, was %q", i, r2.str(i), r.str(i))
		}
	}
	// After a reset (new instance) the encoder starts afresh.
	e.reset()
	size2, _ = e.plan(snap2, columns)
	b2 = make([]byte, size2)
	e.write(b2, snap2)
	var fresh encoder
	size3, _ := fresh.plan(snap2, columns)
	b3 := make([]byte, size3)
	fresh.write(b3, snap2)
	if !bytes.Equal(b2, b3) {
		t.Error("reset encoder differs from a fresh one")
	}
}

func TestInputEmptySnapshot(t *testing.T) {
	var e encoder
	snap := &engine.Snapshot{Name: "not-a-number"}
	size, err := e.plan(snap, []string{"scur"})
	if err != nil || size != 80 {
		t.Fatalf("plan(empty) = %d, %v; want 80 (header + name)", size, err)
	}
	b := make([]byte, size)
	e.write(b, snap)
	if ts := int64(binary.LittleEndian.Uint64(b[16:])); ts != -1 {
		t.Errorf("time = %d, want -1", ts)
	}
}

// out builds an output buffer.
type out struct {
	b     []byte
	count int
}

func (o *out) rec(scope byte, object, server, name string, v float64) *out {
	if o.b == nil {
		o.b = make([]byte, 16)
	}
	h := make([]byte, 16)
	h[0] = scope
	binary.LittleEndian.PutUint16(h[2:], uint16(len(object)))
	binary.LittleEndian.PutUint16(h[4:], uint16(len(server)))
	binary.LittleEndian.PutUint16(h[6:], uint16(len(name)))
	binary.LittleEndian.PutUint64(h[8:], math.Float64bits(v))
	o.b = append(append(o.b, h...), object+server+name...)
	o.count++
	return o
}

func (o *out) bytes() []byte {
	if o.b == nil {
		o.b = make([]byte, 16)
	}
	binary.LittleEndian.PutUint32(o.b, outputMagic)
	binary.LittleEndian.PutUint32(o.b[8:], uint32(o.count))
	return o.b
}

func TestDecode(t *testing.T) {
	good := (&out{}).
		rec(1, "", "", "CpuUsage", 1).
		rec(2, "admin1.sock", "", "x", 2).
		rec(3, "www.example", "", "req.rate", 3).
		rec(4, "app", "", "ratio", 0.5).
		rec(5, "app", "srv1", "ratio", 0.25).
		rec(6, "", "srv1", "ratio", 0.125).
		rec(7, "", "", "custom.path.x", math.NaN()).
		rec(3, "fé", "", "ünïcode", 4).
		bytes()
	var r recorder
	var d decoder
	n, err := d.decode(good, 100, &r)
	if err != nil || n != 8 {
		t.Fatalf("decode(good) = %d, %v", n, err)
	}
	want := []engine.Metric{
		{Scope: engine.ScopeDaemon, Name: "CpuUsage", Value: 1},
		{Scope: engine.ScopeProcess, Object: "admin1.sock", Name: "x", Value: 2},
		{Scope: engine.ScopeFrontend, Object: "www.example", Name: "req.rate", Value: 3},
		{Scope: engine.ScopeBackend, Object: "app", Name: "ratio", Value: 0.5},
		{Scope: engine.ScopeServer, Object: "app", Server: "srv1", Name: "ratio", Value: 0.25},
		{Scope: engine.ScopeAggrServer, Server: "srv1", Name: "ratio", Value: 0.125},
		{Scope: engine.ScopePath, Name: "custom.path.x", Value: math.NaN()},
		{Scope: engine.ScopeFrontend, Object: "fé", Name: "ünïcode", Value: 4},
	}
	for i, m := range r.metrics {
		w := want[i]
		if m.Scope != w.Scope || m.Object != w.Object || m.Server != w.Server || m.Name != w.Name ||
			!(m.Value == w.Value || math.IsNaN(m.Value) && math.IsNaN(w.Value)) {
			t.Errorf("metric %d = %+v, want %+v", i, m, w)
		}
	}

	errorBuf := func(msg string, n uint32) []byte {
		b := make([]byte, 16)
		binary.LittleEndian.PutUint32(b, outputMagic)
		binary.LittleEndian.PutUint32(b[4:], 1)
		binary.LittleEndian.PutUint32(b[8:], n)
		return append(b, msg...)
	}
	reserved := (&out{}).rec(1, "", "", "x", 1).bytes()
	reserved[17] = 1
	status := (&out{}).bytes()
	status[4] = 7
	tests := []struct {
		name string
		b    []byte
		want error
		msg  string
	}{
		{"short", []byte("HSO1"), ErrMalformed, "shorter than"},
		{"magic", append([]byte("HSO2"), make([]byte, 12)...), ErrMalformed, "magic"},
		{"status", status, ErrMalformed, "status 7"},
		{"error", errorBuf("it broke", 8), ErrGuest, `"it broke"`},
		{"error length past end", errorBuf("short", 1000), ErrGuest, `"short"`},
		{"too many", (&out{}).rec(1, "", "", "a", 1).rec(1, "", "", "b", 1).bytes(), ErrTooManyMetrics, "2 metrics, limit 1"},
		{"empty name", (&out{}).rec(1, "", "", "", 1).bytes(), ErrMalformed, "empty name"},
		{"newline", (&out{}).rec(1, "", "", "a\nb", 1).bytes(), ErrMalformed, "control"},
		{"space in object", (&out{}).rec(4, "a b", "", "x", 1).bytes(), ErrMalformed, "space"},
		{"tab in server", (&out{}).rec(5, "a", "b\tc", "x", 1).bytes(), ErrMalformed, "control"},
		{"DEL", (&out{}).rec(1, "", "", "a\x7f", 1).bytes(), ErrMalformed, "control"},
		{"NUL", (&out{}).rec(1, "", "", "a\x00", 1).bytes(), ErrMalformed, "control"},
		{"invalid UTF-8", (&out{}).rec(1, "", "", "a\xff", 1).bytes(), ErrMalformed, "UTF-8"},
		{"line separator", (&out{}).rec(1, "", "", "a\u2028b", 1).bytes(), ErrMalformed, "control"},
		{"NEL", (&out{}).rec(1, "", "", "a\u0085b", 1).bytes(), ErrMalformed, "control"},
		{"missing object", (&out{}).rec(4, "", "", "x", 1).bytes(), ErrMalformed, "empty object"},
		{"missing server", (&out{}).rec(5, "app", "", "x", 1).bytes(), ErrMalformed, "empty server"},
		{"object in daemon scope", (&out{}).rec(1, "app", "", "x", 1).bytes(), ErrMalformed, "not allowed"},
		{"server in backend scope", (&out{}).rec(4, "app", "s", "x", 1).bytes(), ErrMalformed, "not allowed"},
		{"scope 0", (&out{}).rec(0, "", "", "x", 1).bytes(), ErrMalformed, "unknown scope 0"},
		{"self scope", (&out{}).rec(8, "", "", "x", 1).bytes(), ErrMalformed, "unknown scope 8"},
		{"path leading dot", (&out{}).rec(7, "", "", ".a", 1).bytes(), ErrMalformed, "empty segment"},
		{"path trailing dot", (&out{}).rec(7, "", "", "a.", 1).bytes(), ErrMalformed, "empty segment"},
		{"path double dot", (&out{}).rec(7, "", "", "a..b", 1).bytes(), ErrMalformed, "empty segment"},
		{"reserved", reserved, ErrMalformed, "reserved"},
		{"trailing", append((&out{}).rec(1, "", "", "x", 1).bytes(), 0), ErrMalformed, "after the last metric"},
		{"truncated strings", (&out{}).rec(1, "", "", "xyz", 1).bytes()[:34], ErrMalformed, "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			_, err := d.decode(tt.b, 1, &r)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("decode = %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
}

func TestEncodeParams(t *testing.T) {
	b := encodeParams([]string{"a", "top"}, map[string]string{"a": "", "top": "5"})
	want := []byte{2, 0, 0, 0, 1, 0, 0, 0, 'a', 0, 0, 0, 0, 3, 0, 0, 0, 't', 'o', 'p', 1, 0, 0, 0, '5'}
	if !bytes.Equal(b, want) {
		t.Errorf("encodeParams = % x, want % x", b, want)
	}
}

func firstSnapshot(t *testing.T, caseDir string) string {
	t.Helper()
	entries, err := osReadDir(caseDir + "/incoming")
	if err != nil || len(entries) == 0 {
		t.Fatalf("no snapshot in %s: %v", caseDir, err)
	}
	return entries[0]
}

func TestInputSameRowsFlag(t *testing.T) {
	// Bit 0 of the header's flags is set when the row keys are those of
	// the instance's previous input, whatever the values.
	first := loadSnapshot(t, conformance+"/dev4-two-snapshots/incoming/1795507783")
	second := loadSnapshot(t, conformance+"/dev4-two-snapshots/incoming/1795507784")
	other := loadSnapshot(t, conformance+"/single-defaults/incoming/1795507997")
	var e encoder
	flags := func(snap *engine.Snapshot) uint32 {
		size, err := e.plan(snap, []string{"scur"})
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		e.write(b, snap)
		return binary.LittleEndian.Uint32(b[60:])
	}
	for i, step := range []struct {
		name  string
		snap  *engine.Snapshot
		reset bool
		want  uint32
	}{
		{"first input of an instance", first, false, 0},
		{"same snapshot again", first, false, 1},
		{"next snapshot, same rows, other values", second, false, 1},
		{"other rows", other, false, 0},
		{"back to the first rows", first, false, 0},
		{"again", first, false, 1},
		{"after the instance was re-created", first, true, 0},
	} {
		if step.reset {
			e.reset()
		}
		if got := flags(step.snap); got != step.want {
			t.Errorf("step %d (%s): flags = %d, want %d", i, step.name, got, step.want)
		}
	}
}

// TestInputNamesWhenRowsMove checks every row's proxy and server names in
// inputs whose rows change from one to the next: the encoder tries the id
// of the same row of the last input first, and must never keep it for
// another name.
func TestInputNamesWhenRowsMove(t *testing.T) {
	const header = "# pxname,svname,scur,type,\n"
	snapshot := func(name string, rows ...string) *engine.Snapshot {
		files := []engine.File{{Name: "a_stat", Data: []byte(header + strings.Join(rows, "\n") + "\n")}}
		return engine.NewParser([]string{"scur"}).Parse(name, files)
	}
	steps := []*engine.Snapshot{
		snapshot("1795507783", "be1,s1,1,2,", "be1,s2,1,2,", "be1,BACKEND,2,1,", "be2,s1,1,2,", "be2,BACKEND,1,1,"),
		// Servers swapped, a proxy renamed at the same rows.
		snapshot("1795507784", "be1,s2,1,2,", "be1,s1,1,2,", "be1,BACKEND,2,1,", "bex,s1,1,2,", "bex,BACKEND,1,1,"),
		// Fewer rows, then more than ever, names new and old.
		snapshot("1795507785", "be2,s2,1,2,", "be2,BACKEND,1,1,"),
		snapshot("1795507786", "be2,s2,1,2,", "be2,BACKEND,1,1,", "be1,s1,1,2,", "be1,s3,1,2,", "be1,s2,1,2,", "be1,BACKEND,3,1,", "bey,s9,1,2,"),
		// The same rows again.
		snapshot("1795507787", "be2,s2,1,2,", "be2,BACKEND,1,1,", "be1,s1,1,2,", "be1,s3,1,2,", "be1,s2,1,2,", "be1,BACKEND,3,1,", "bey,s9,1,2,"),
	}
	// The same tables again, then more numberings than the encoder keeps
	// (each Parse numbers names anew), then the first ones again: ids kept
	// per NameEpoch must follow each table's own numbering.
	steps = append(steps, steps...)
	for i := range maxNumberings + 1 {
		steps = append(steps, snapshot(fmt.Sprint(1795507790+i), fmt.Sprintf("be%d,s%d,1,2,", i, 9-i), "bex,s1,1,2,"))
	}
	steps = append(steps, steps[:4]...)
	var e encoder
	for step, snap := range steps {
		if step == 4 {
			e.reset() // a new instance: the ids of the last input are gone
		}
		size, err := e.plan(snap, []string{"scur"})
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		e.write(b, snap)
		r := docReader{t, b}
		st := &snap.Stats
		P, N := int(r.u32(36)), int(r.u32(40))
		if N != st.Rows() || N == 0 {
			t.Fatalf("step %d: %d rows, want %d", step, N, st.Rows())
		}
		off := int(r.u32(56)) + pad8(4*P)
		px, sv := off+pad8(4*N), off+2*pad8(4*N)
		for i := range N {
			if got := r.str(r.u32(px + 4*i)); got != st.PxName[i] {
				t.Errorf("step %d row %d: proxy %q, want %q", step, i, got, st.PxName[i])
			}
			if got := r.str(r.u32(sv + 4*i)); got != st.SvName[i] {
				t.Errorf("step %d row %d: server %q, want %q", step, i, got, st.SvName[i])
			}
		}
	}
}
