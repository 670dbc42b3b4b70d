// Command errratio is a haproxystats WASM stage: the share of 5xx
// responses per backend and per server.
//
// For every backend and every server it sends
//
//	P.backend.<backend>.hrsp_5xx_ratio
//	P.backend.<backend>.server.<server>.hrsp_5xx_ratio
//
// = hrsp_5xx / (hrsp_1xx + hrsp_2xx + hrsp_3xx + hrsp_4xx + hrsp_5xx +
// hrsp_other), the counters summed over the HAProxy processes, between 0
// and 1. An object that has answered no HTTP response yet (total 0, or a
// TCP proxy without the columns) gets no line.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o errratio/errratio.wasm ./errratio
// (from wasm-examples/).
package main

import (
	"github.com/haproxystats-go/haproxystats/wasm-examples/sdk/go/hsabi"
)

var responses = []string{"hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"}

func init() {
	hsabi.Register(hsabi.Stage{Columns: responses, Process: process})
}

func main() {}

// object is a backend (sv is the ID of "BACKEND") or a server.
type object struct {
	px, sv hsabi.ID
	server bool
}

// Reused from snapshot to snapshot: the objects in order of their first
// row, their sums, a column of zeros for the columns a snapshot lacks.
var (
	index          hsabi.Index
	objects        []object
	errors, totals []float64
	zeros          []float64
)

func process(snap *hsabi.Snapshot, out *hsabi.Emitter) error {
	t := &snap.Stats
	if t.Column("hrsp_5xx") == nil {
		return nil // no HTTP proxy in this snapshot
	}
	var cols [6][]float64
	for c, name := range responses {
		cols[c] = values(t, name)
	}
	index.Reset()
	objects, errors, totals = objects[:0], errors[:0], totals[:0]
	// One pass over the rows. A backend is its BACKEND rows, a server its
	// rows in every process; svname tells them apart (no server is called
	// BACKEND). Null cells are 0.
	for i, kind := range t.Kind {
		if kind != hsabi.KindBackend && kind != hsabi.KindServer {
			continue
		}
		key := hsabi.Pair(t.PxID[i], t.SvID[i])
		o := index.Home(key) // inlined: no call for objects seen before
		if o < 0 {
			var added bool
			if o, added = index.Slot(key); added {
				objects = append(objects, object{t.PxID[i], t.SvID[i], kind == hsabi.KindServer})
				errors, totals = append(errors, 0), append(totals, 0)
			}
		}
		errors[o] += cols[4][i]
		totals[o] += cols[0][i] + cols[1][i] + cols[2][i] + cols[3][i] + cols[4][i] + cols[5][i]
	}
	for o, obj := range objects {
		if totals[o] == 0 {
			continue
		}
		if obj.server {
			out.Server(snap.Str(obj.px), snap.Str(obj.sv), "hrsp_5xx_ratio", errors[o]/totals[o])
		} else {
			out.Backend(snap.Str(obj.px), "hrsp_5xx_ratio", errors[o]/totals[o])
		}
	}
	return nil
}

// values returns the values of a column, zeros when the snapshot lacks it.
func values(t *hsabi.StatTable, name string) []float64 {
	if c := t.Column(name); c != nil {
		return c.Values
	}
	if cap(zeros) < t.Rows() {
		zeros = make([]float64, t.Rows())
	}
	return zeros[:t.Rows()]
}
