package engine

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// Regression: a line's fixed-size copies assumed room that a long piece
// (a prefix or a name part over the fixed array, a value in its long
// form) had taken: EmitObject panicked, failing the snapshot, for some
// name lengths and buffer positions. Each case writes its lines, and they
// are the lines Emit writes.
func TestEmitObjectLongPieces(t *testing.T) {
	for _, tc := range []struct {
		name   string
		m      Metric
		names  []string
		values []float64
		free   []int // the buffer's room when the first line is written
	}{
		{"long prefix", Metric{Scope: ScopeBackend, Object: strings.Repeat("b", 240)}, []string{"n"}, []float64{1}, []int{0, 320, 330, 340, 400}},
		{"long value", Metric{Scope: ScopeBackend, Object: strings.Repeat("b", 80)}, []string{strings.Repeat("n", 90)}, []float64{1.2345e-40}, []int{0, 320}},
		{"long name part", Metric{Scope: ScopeServer, Object: "be", Server: "s"}, []string{strings.Repeat("n", 120), "x"}, []float64{1, math.NaN()}, []int{0, 100, 320}},
	} {
		for _, free := range tc.free {
			var want, got bytes.Buffer
			var we, wo lineWriter
			we.start(&Paths{Prefix: "p"}, "100", &output{w: &want}, true)
			wo.start(&Paths{Prefix: "p"}, "100", &output{w: &got}, true)
			wo.buf = make([]byte, 0, free)
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s, %d bytes free: EmitObject panicked: %v", tc.name, free, r)
					}
				}()
				wo.EmitObject(tc.m, tc.names, tc.values)
			}()
			for i, n := range tc.names {
				m := tc.m
				m.Name, m.Value = n, tc.values[i]
				we.Emit(m)
			}
			we.flush()
			wo.flush()
			if want.Len() == 0 || got.String() != want.String() {
				t.Errorf("%s, %d bytes free: EmitObject wrote %q, Emit %q", tc.name, free, got.String(), want.String())
			}
		}
	}
	// Objects of every server name length, as a fold writes them in
	// chunks: the buffer's room at each line varies.
	for sl := 150; sl < 300; sl++ {
		var out bytes.Buffer
		var w lineWriter
		w.start(&Paths{Prefix: "ns.host.haproxy"}, "1700000000", &output{w: &out}, false)
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("server name of %d bytes: EmitObject panicked: %v", sl, r)
				}
			}()
			for range 2000 {
				w.EmitObject(Metric{Scope: ScopeAggrServer, Server: strings.Repeat("s", sl)}, []string{"bin", "bout", "scur", "qcur", "econ"}, []float64{12345, 1, 2, 3, 4})
			}
			w.flush()
		}()
		if lines := bytes.Count(out.Bytes(), []byte{'\n'}); lines != 10000 {
			t.Fatalf("server name of %d bytes: %d lines, want 10000", sl, lines)
		}
	}
}

// EmitObject writes what Emit writes for pieces of every length around
// the size of its fixed copies (prefix and name part each of 80 to 100
// bytes), values of one digit, more, and none, timestamps that fit its
// copy of the tail and one that does not, and buffers of any room.
func TestEmitObjectEveryPieceLength(t *testing.T) {
	values := []float64{7, 0, 12, 1.5, math.NaN(), 1e300, -3}
	for _, ts := range []string{"1700000000", "170000000000000000"} {
		for ol := 69; ol <= 89; ol++ {
			for nl := 79; nl <= 99; nl++ {
				m := Metric{Scope: ScopeBackend, Object: strings.Repeat("b", ol)}
				names := make([]string, len(values))
				for i := range names {
					names[i] = strings.Repeat(string(rune('m'+i)), nl)
				}
				for _, free := range []int{0, 193, 250} {
					var want, got bytes.Buffer
					var we, wo lineWriter
					we.start(&Paths{Prefix: "p"}, ts, &output{w: &want}, true)
					wo.start(&Paths{Prefix: "p"}, ts, &output{w: &got}, true)
					wo.buf = make([]byte, 0, free)
					wo.EmitObject(m, names, values)
					for i, n := range names {
						m.Name, m.Value = n, values[i]
						we.Emit(m)
					}
					we.flush()
					wo.flush()
					if want.Len() == 0 || got.String() != want.String() {
						t.Fatalf("prefix %d, name %d, ts %s, %d free: EmitObject wrote\n%q\nEmit\n%q", ol+11, nl+1, ts, free, got.String(), want.String())
					}
				}
			}
		}
	}
}
