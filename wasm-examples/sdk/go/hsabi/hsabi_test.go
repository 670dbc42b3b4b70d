package hsabi

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"unsafe"
)

func aligned(n int) []byte {
	w := make([]uint64, (n+7)/8+1)
	return unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), n)
}

// header returns a 64-byte input header with the given counts and offsets.
func header(size int) []byte {
	b := aligned(size)
	le := binary.LittleEndian
	le.PutUint32(b, inputMagic)
	le.PutUint32(b[4:], Version)
	le.PutUint32(b[8:], uint32(size))
	le.PutUint32(b[48:], 64)
	le.PutUint32(b[52:], 64)
	le.PutUint32(b[56:], 64)
	return b
}

func TestDecodeRejects(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name string
		b    func() []byte
	}{
		{"short", func() []byte { return aligned(10) }},
		{"magic", func() []byte { b := header(64); b[0] = 'X'; return b }},
		{"version", func() []byte { b := header(64); le.PutUint32(b[4:], 2); return b }},
		{"length", func() []byte { b := header(64); le.PutUint32(b[8:], 65); return b }},
		{"strings outside", func() []byte { b := header(64); le.PutUint32(b[12:], 100); return b }},
		{"name outside", func() []byte { b := header(64); le.PutUint32(b[24:], 3); return b }},
		{"rows outside", func() []byte { b := header(72); le.PutUint32(b[12:], 1); le.PutUint32(b[40:], 1000); return b }},
		{"section offset outside", func() []byte { b := header(64); le.PutUint32(b[56:], 1<<30); le.PutUint32(b[36:], 1); return b }},
	}
	for _, tt := range tests {
		var s Snapshot
		if err := s.Decode(tt.b()); !errors.Is(err, ErrInput) {
			t.Errorf("%s: Decode = %v, want ErrInput", tt.name, err)
		}
	}
}

func TestDecodeMinimal(t *testing.T) {
	// Name "7", one string ("x"), no rows.
	b := header(88)
	le := binary.LittleEndian
	le.PutUint32(b[12:], 1)
	le.PutUint64(b[16:], 7)
	le.PutUint32(b[24:], 1)
	b[64] = '7'
	le.PutUint32(b[48:], 72)
	le.PutUint32(b[72:], 80)
	le.PutUint32(b[76:], 1)
	b[80] = 'x'
	le.PutUint32(b[52:], 88)
	le.PutUint32(b[56:], 88)
	var s Snapshot
	if err := s.Decode(b); err != nil {
		t.Fatal(err)
	}
	if s.Name != "7" || s.Time != 7 || s.Str(0) != "x" || s.Stats.Rows() != 0 || s.Info.Rows() != 0 {
		t.Errorf("decoded %+v", s)
	}
	if c := s.Stats.Column("scur"); c != nil {
		t.Error("column in an empty snapshot")
	}
	if _, ok := (*Column)(nil).Get(0); ok {
		t.Error("nil column has a value")
	}
	// The same-rows flag: a new rows generation unless it is set.
	for i, step := range []struct {
		flags uint32
		same  bool
		gen   uint64
	}{{0, false, 2}, {1, true, 2}, {1, true, 2}, {0, false, 3}, {3, true, 3}} {
		le.PutUint32(b[60:], step.flags)
		if err := s.Decode(b); err != nil {
			t.Fatal(err)
		}
		if s.SameRows != step.same || s.rowsGen != step.gen {
			t.Errorf("decode %d with flags %d: SameRows %v, generation %d; want %v, %d", i, step.flags, s.SameRows, s.rowsGen, step.same, step.gen)
		}
	}
}

func TestDecodeParams(t *testing.T) {
	b := []byte{2, 0, 0, 0, 1, 0, 0, 0, 'a', 0, 0, 0, 0, 3, 0, 0, 0, 't', 'o', 'p', 1, 0, 0, 0, '5'}
	p, err := decodeParams(b)
	if err != nil || len(p) != 2 || p["a"] != "" || p["top"] != "5" {
		t.Errorf("decodeParams = %v, %v", p, err)
	}
	if _, err := decodeParams(b[:20]); !errors.Is(err, ErrInput) {
		t.Errorf("decodeParams(truncated) = %v", err)
	}
}

func TestEmitterError(t *testing.T) {
	var e Emitter
	e.reset()
	e.Daemon("x", 1)
	out := e.finish(errors.New("boom"))
	le := binary.LittleEndian
	if le.Uint32(out) != outputMagic || le.Uint32(out[4:]) != statusError || string(out[16:]) != "boom" || le.Uint32(out[8:]) != 4 {
		t.Errorf("error buffer % x", out)
	}
	e.reset()
	e.Backend("be", "n", 2)
	out = e.finish(nil)
	if le.Uint32(out[4:]) != statusOK || le.Uint32(out[8:]) != 1 || len(out) != 16+16+len("be")+len("n") {
		t.Errorf("ok buffer % x", out)
	}
}

func TestIndex(t *testing.T) {
	var x Index
	if x.Lookup(5) != -1 {
		t.Error("Lookup on empty index")
	}
	for round := 0; round < 2; round++ {
		for i := uint64(0); i < 1000; i++ {
			if s, added := x.Slot(i * 7919); s != int(i) || !added {
				t.Fatalf("Slot(%d) = %d, %v", i*7919, s, added)
			}
		}
		for i := uint64(0); i < 1000; i++ {
			if s, added := x.Slot(i * 7919); s != int(i) || added {
				t.Fatalf("second Slot(%d) = %d, %v", i*7919, s, added)
			}
			if x.Lookup(i*7919) != int(i) {
				t.Fatalf("Lookup(%d)", i*7919)
			}
		}
		if x.Len() != 1000 || x.Lookup(1) != -1 {
			t.Fatalf("Len = %d", x.Len())
		}
		x.Reset()
	}
}

func TestGrouping(t *testing.T) {
	// Two processes with the same rows: a frontend, backend b1 with
	// servers s1 s2, backend b2 with server s1. gen stands for the rows
	// generation Decode keeps (a new one when the host's same-rows flag is
	// not set).
	table := func(gen uint64) *StatTable {
		one := struct {
			kind   []Kind
			px, sv []ID
		}{
			[]Kind{KindFrontend, KindServer, KindServer, KindBackend, KindServer, KindBackend},
			[]ID{1, 2, 2, 2, 3, 3},
			[]ID{9, 4, 5, 8, 4, 8},
		}
		st := StatTable{snap: &Snapshot{rowsGen: gen}}
		for range 2 {
			st.Kind = append(st.Kind, one.kind...)
			st.PxID = append(st.PxID, one.px...)
			st.SvID = append(st.SvID, one.sv...)
		}
		return &st
	}
	var g Grouping
	mask := Kinds(KindBackend, KindServer)
	if n := g.Group(table(1), mask); n != 5 {
		t.Fatalf("Group = %d objects, want 5", n)
	}
	wantSlot := []int32{-1, 0, 1, 2, 3, 4, -1, 0, 1, 2, 3, 4}
	if !slices.Equal(g.Slot, wantSlot) || !slices.Equal(g.First, []int32{1, 2, 3, 4, 5}) {
		t.Fatalf("Slot = %v, First = %v; want %v, [1 2 3 4 5]", g.Slot, g.First, wantSlot)
	}
	// The same rows generation: kept, not grouped again.
	if n := g.Group(table(1), mask); n != 5 || g.regrouped != 1 || !slices.Equal(g.Slot, wantSlot) {
		t.Fatalf("same rows: %d objects, %d groupings, Slot %v; want 5, 1, %v", n, g.regrouped, g.Slot, wantSlot)
	}
	// New rows, another mask, or a table without a snapshot: grouped
	// again, as a fresh Grouping would.
	gen := uint64(1)
	for name, change := range map[string]func(*StatTable) KindMask{
		"server renamed": func(st *StatTable) KindMask { st.SvID[8] = 7; return mask },
		"proxy changed":  func(st *StatTable) KindMask { st.PxID[4] = 2; return mask },
		"row removed": func(st *StatTable) KindMask {
			st.Kind, st.PxID, st.SvID = st.Kind[:11], st.PxID[:11], st.SvID[:11]
			return mask
		},
		"mask changed":    func(st *StatTable) KindMask { st.snap.rowsGen = gen; return Kinds(KindServer) },
		"no snapshot":     func(st *StatTable) KindMask { st.snap = nil; st.Kind[0] = KindServer; return mask },
		"same rows again": func(st *StatTable) KindMask { st.snap.rowsGen = gen; return mask },
	} {
		gen++
		g.Group(table(gen), mask)
		before := g.regrouped
		st := table(gen + 1)
		m := change(st) // may set st's generation back to gen: same rows
		gen++
		n := g.Group(st, m)
		if reused := g.regrouped == before; reused != (name == "same rows again") {
			t.Errorf("%s: reused the previous grouping: %v", name, reused)
		}
		var fresh Grouping
		if fn := fresh.Group(st, m); fn != n || !slices.Equal(fresh.Slot, g.Slot) || !slices.Equal(fresh.First, g.First) {
			t.Errorf("%s: %d objects %v %v, a fresh grouping gives %d %v %v", name, n, g.Slot, g.First, fn, fresh.Slot, fresh.First)
		}
	}
}
