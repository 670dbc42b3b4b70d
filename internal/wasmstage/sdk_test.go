package wasmstage

import (
	"math"
	"sync"
	"testing"
	"unsafe"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/wasm-examples/sdk/go/hsabi"
)

// alignedBuffer returns n bytes at an 8-byte aligned address, as hs_alloc
// must.
func alignedBuffer(n int) []byte {
	words := make([]uint64, (n+7)/8+1)
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), n)
}

// TestSDKRoundTrip checks the host encoder against the Go SDK's decoder and
// the SDK's emitter against the host decoder, outside WebAssembly.
var registerSDKStage sync.Once

func TestSDKRoundTrip(t *testing.T) {
	snap := loadSnapshot(t, conformance+"/dev4-two-snapshots/incoming/1795507784")
	columns := []string{"scur", "slim", "missing", "hrsp_5xx"}
	var e encoder
	size, err := e.plan(snap, columns)
	if err != nil {
		t.Fatal(err)
	}
	in := alignedBuffer(size)
	e.write(in, snap)

	var got hsabi.Snapshot
	if err := got.Decode(in); err != nil {
		t.Fatalf("Decode = %v", err)
	}
	if got.Name != snap.Name || got.Time != 1795507784 {
		t.Errorf("name, time = %q, %d", got.Name, got.Time)
	}
	info := &snap.Info
	for k, key := range info.Keys {
		for row := range info.Procs {
			v, ok := got.Info.Value(key, row)
			if v != info.Values[k][row] || ok != info.Has[k][row] || got.Info.Procs[row] != info.Procs[row] {
				t.Errorf("info %s row %d = %d %v", key, row, v, ok)
			}
		}
	}
	st := &snap.Stats
	if got.Stats.Rows() != st.Rows() || len(got.Stats.Columns) != 3 {
		t.Fatalf("rows, columns = %d, %d", got.Stats.Rows(), len(got.Stats.Columns))
	}
	for i := 0; i < st.Rows(); i++ {
		if got.Stats.Procs[got.Stats.Proc[i]] != st.Procs[st.Proc[i]] || got.Stats.Px(i) != st.PxName[i] ||
			got.Stats.Sv(i) != st.SvName[i] || uint8(got.Stats.Kind[i]) != st.Kind[i] ||
			got.Str(got.Stats.ProcIDs[got.Stats.Proc[i]]) != st.Procs[st.Proc[i]] {
			t.Errorf("row %d keys differ", i)
		}
		for _, name := range []string{"scur", "slim", "hrsp_5xx"} {
			c := got.Stats.Column(name)
			v, ok := c.Get(i)
			want := st.Column(name)
			if ok == want.Null(i) || ok && v != want.Values[i] {
				t.Errorf("%s row %d = %v %v", name, i, v, ok)
			}
		}
	}
	if got.Stats.Column("missing") != nil {
		t.Error("absent column decoded")
	}
	// IDs are stable from one snapshot to the next.
	pxID, svID := got.Stats.PxID[3], got.Stats.SvID[3]
	snap2 := loadSnapshot(t, conformance+"/dots-defaults/incoming/"+firstSnapshot(t, conformance+"/dots-defaults"))
	size2, _ := e.plan(snap2, columns)
	in2 := alignedBuffer(size2)
	e.write(in2, snap2)
	if err := got.Decode(in2); err != nil {
		t.Fatal(err)
	}
	if err := got.Decode(in); err != nil {
		t.Fatal(err)
	}
	if got.Stats.PxID[3] != pxID || got.Stats.SvID[3] != svID || got.Stats.Px(3) != st.PxName[3] {
		t.Errorf("IDs changed: %d %d -> %d %d", pxID, svID, got.Stats.PxID[3], got.Stats.SvID[3])
	}

	// Emitter -> host decoder, through the SDK's Run. The SDK takes one
	// registration per program: once per test binary (go test -count=N).
	registerSDKStage.Do(func() {
		hsabi.Register(hsabi.Stage{
			Columns: columns,
			Process: func(s *hsabi.Snapshot, out *hsabi.Emitter) error {
				out.Daemon("rows", float64(s.Stats.Rows()))
				out.Process("admin1.sock", "p", 1)
				out.Frontend("fe", "f", 2)
				out.Backend("be", "b", 3)
				out.Server("be", "s1", "s", 4)
				out.AggrServer("s1", "a", 5)
				out.Path("x.y.z", math.Inf(1))
				return nil
			},
		})
	})
	var r recorder
	var d decoder
	if _, err := d.decode(hsabi.Run(in), 100, &r); err != nil {
		t.Fatalf("decode(SDK output) = %v", err)
	}
	want := []engine.Metric{
		{Scope: engine.ScopeDaemon, Name: "rows", Value: float64(st.Rows())},
		{Scope: engine.ScopeProcess, Object: "admin1.sock", Name: "p", Value: 1},
		{Scope: engine.ScopeFrontend, Object: "fe", Name: "f", Value: 2},
		{Scope: engine.ScopeBackend, Object: "be", Name: "b", Value: 3},
		{Scope: engine.ScopeServer, Object: "be", Server: "s1", Name: "s", Value: 4},
		{Scope: engine.ScopeAggrServer, Server: "s1", Name: "a", Value: 5},
		{Scope: engine.ScopePath, Name: "x.y.z", Value: math.Inf(1)},
	}
	if len(r.metrics) != len(want) {
		t.Fatalf("got %s", r.String())
	}
	for i := range want {
		if r.metrics[i] != want[i] {
			t.Errorf("metric %d = %+v, want %+v", i, r.metrics[i], want[i])
		}
	}
}
