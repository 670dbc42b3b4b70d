package counters

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"math"
	"testing"
)

// sampleState returns the encoded state of a store that saw reloads, a
// departed worker, two instances and an object gone, for round trips and
// as the fuzz seed.
func sampleState(t testing.TB) []byte {
	st, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.Part("frontend", counterNames)
	if err != nil {
		t.Fatal(err)
	}
	d, err := st.Part("daemon", []string{"CumConns"})
	if err != nil {
		t.Fatal(err)
	}
	s, ds := p.NewSample(), d.NewSample()
	other := Key("frontend", "fe2")
	snaps := [][]proc{
		{wk("m", 7, 11, false, map[string][]float64{fe: {10, 1e15}, other: {1, 0.5}}), plain("legacy", obj(fe, 3, 3))},
		{wk("m", 7, 11, true, obj(fe, 11, 1e15+1)), wk("m", 7, 12, false, obj(fe, 1, 1)), plain("legacy", obj(fe, 4, 4))},
		{wk("m", 7, 12, false, obj(fe, 2, 2))},
		{wk("m", 7, 12, false, obj(fe, 3, 3))},
		{wk("m", 7, 12, false, obj(fe, 4, 4)), wk("m", 7, 13, false, obj(fe, 1, 1))},
		{wk("m", 7, 13, false, obj(fe, 2, 2))},
	}
	for i, procs := range snaps {
		ts := int64(100 + 10*i)
		fillSample(s, procs)
		if _, err := p.Advance(context.Background(), ts, s); err != nil {
			t.Fatal(err)
		}
		ds.Reset()
		for _, pr := range procs {
			ds.Add(ds.Worker(pr.socket), ds.Object("daemon"), 0, float64(i+1))
		}
		if _, err := d.Advance(context.Background(), ts, ds); err != nil {
			t.Fatal(err)
		}
	}
	return st.encode()
}

func TestStateRoundTrip(t *testing.T) {
	data := sampleState(t)
	parts, err := decodeState(data)
	if err != nil {
		t.Fatalf("decodeState: %v", err)
	}
	if len(parts) != 2 {
		t.Fatalf("%d parts, want 2", len(parts))
	}
	again := encodeParts(parts)
	if !bytes.Equal(again, data) {
		t.Errorf("encode(decode(state)) differs from state")
	}
	fe := parts[1]
	if fe.name != "frontend" || len(fe.versions) == 0 || len(fe.insts) != 2 || fe.totals == nil {
		t.Errorf("decoded part %q: %d versions, %d instances, totals %v", fe.name, len(fe.versions), len(fe.insts), fe.totals)
	}
}

// encodeParts encodes decoded parts as Store.encode does.
func encodeParts(parts []*partState) []byte {
	e := newEncoder()
	e.begin(len(parts))
	for _, p := range parts {
		e.part(p)
	}
	return e.finish()
}

func TestValueEncoding(t *testing.T) {
	for _, v := range []float64{1, 2, 1 << 61, 1<<62 - 1, 1 << 62, 1 << 63, 0.5, -1, math.Copysign(0, -1), 1e300, math.SmallestNonzeroFloat64} {
		e := &encoder{}
		e.value(v)
		d := &decoder{b: e.b}
		got := d.value()
		if d.err != nil || math.Float64bits(got) != math.Float64bits(v) || d.off != len(e.b) {
			t.Errorf("value %v: decoded %v (%v), %d of %d bytes", v, got, d.err, d.off, len(e.b))
		}
	}
}

// withChecksum makes body a state file with a valid magic and checksum,
// so that the fuzzer reaches the body decoder.
func withChecksum(body []byte) []byte {
	b := append([]byte(stateMagic), body...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// FuzzDecodeState checks that the decoder never panics nor allocates
// without bound, and that what it accepts encodes back to the same bytes
// and can be advanced.
func FuzzDecodeState(f *testing.F) {
	good := sampleState(f)
	f.Add(good[len(stateMagic) : len(good)-4])
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, body []byte) {
		// A dense table is objects × counters, both declared by the file
		// and each costing at least 2 bytes of it: memory is quadratic in
		// the size of a (valid) file. Keep the inputs small enough for
		// the fuzzer's memory.
		if len(body) > 2048 {
			return
		}
		data := withChecksum(body)
		parts, err := decodeState(data)
		if err != nil {
			return
		}
		if again := encodeParts(parts); !bytes.Equal(again, data) {
			// Decoding is strict, so what decodes is what was encoded.
			t.Fatalf("re-encoding differs:\n%x\n%x", data, again)
		}
		// A decoded state can be used.
		st, _ := Open(Options{})
		for _, ps := range parts {
			st.loaded[ps.name] = ps
			p, err := st.Part(ps.name, ps.counters)
			if err != nil {
				t.Fatal(err)
			}
			s := p.NewSample()
			s.Add(s.Worker("x:master-1:worker-2"), s.Object("a"), 0, 1)
			if _, err := p.Advance(context.Background(), ps.t+1, s); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Advance(context.Background(), max(1, ps.t/2), s); err != nil {
				t.Fatal(err)
			}
		}
	})
}
