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

// Reused from snapshot to snapshot: the rows grouped by object (a
// backend's BACKEND rows, a server's rows in every process), the sums per
// object, a column of zeros for the columns a snapshot lacks.
var (
	objects        hsabi.Grouping
	errors, totals []float64
	zeros          []float64
)

func process(snap *hsabi.Snapshot, out *hsabi.Emitter) error {
	t := &snap.Stats
	if t.Column("hrsp_5xx") == nil {
		return nil // no HTTP proxy in this snapshot
	}
	c1, c2, c3 := values(t, "hrsp_1xx"), values(t, "hrsp_2xx"), values(t, "hrsp_3xx")
	c4, c5, co := values(t, "hrsp_4xx"), values(t, "hrsp_5xx"), values(t, "hrsp_other")
	n := objects.Group(t, hsabi.Kinds(hsabi.KindBackend, hsabi.KindServer))
	errors, totals = hsabi.Zeros(errors, n), hsabi.Zeros(totals, n)
	// One pass over the rows; null cells are 0.
	for i, o := range objects.Slot {
		if o < 0 {
			continue
		}
		errors[o] += c5[i]
		totals[o] += c1[i] + c2[i] + c3[i] + c4[i] + c5[i] + co[i]
	}
	for o, row := range objects.First {
		if totals[o] == 0 {
			continue
		}
		if t.Kind[row] == hsabi.KindServer {
			out.Server(t.Px(int(row)), t.Sv(int(row)), "hrsp_5xx_ratio", errors[o]/totals[o])
		} else {
			out.Backend(t.Px(int(row)), "hrsp_5xx_ratio", errors[o]/totals[o])
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
