// Command headroom is a haproxystats WASM stage: how close frontends,
// backends and servers are to their session limits.
//
// For every frontend and backend with a session limit it sends
//
//	P.frontend.<frontend>.SessionUsagePct     100 * scur / slim
//	P.frontend.<frontend>.SessionHeadroomPct  100 - SessionUsagePct
//
// (the same under P.backend.<backend>.), scur and slim summed over the
// HAProxy processes. For the N servers with the most current sessions (N
// is the `top` option of the stage's section, default 3; servers without
// sessions are left out; ties go to the backend and server names in
// order) it sends
//
//	P.backend.<backend>.server.<server>.TopSessionsRank   1 for the busiest
//	P.backend.<backend>.server.<server>.SessionUsagePct   when it has a slim
//
// and the free path P.session_headroom.min_pct, the smallest
// SessionHeadroomPct of all frontends and backends.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o headroom/headroom.wasm ./headroom
// (from wasm-examples/).
package main

import (
	"fmt"
	"strconv"

	"github.com/haproxystats-go/haproxystats/wasm-examples/sdk/go/hsabi"
)

func init() {
	hsabi.Register(hsabi.Stage{
		Columns: []string{"scur", "slim"},
		Init:    initialize,
		Process: process,
	})
}

func main() {}

var top = 3

func initialize(params map[string]string) error {
	for k, v := range params {
		switch k {
		case "top":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1000 {
				return fmt.Errorf("top = %q: want a number of servers between 0 and 1000", v)
			}
			top = n
		default:
			return fmt.Errorf("unknown option %q (known: top)", k)
		}
	}
	return nil
}

// object is a frontend, a backend or a server (sv is the ID of FRONTEND,
// BACKEND or the server name).
type object struct {
	kind   hsabi.Kind
	px, sv hsabi.ID
}

// Reused from snapshot to snapshot.
var (
	rows       hsabi.Grouping
	objects    []object
	scur, slim []float64
	busiest    []int32 // object slots of the top servers, busiest first
)

func process(snap *hsabi.Snapshot, out *hsabi.Emitter) error {
	t := &snap.Stats
	scurCol, slimCol := t.Column("scur"), t.Column("slim")
	if scurCol == nil || slimCol == nil {
		return nil
	}
	// An object is a frontend, backend or server (svname FRONTEND, BACKEND
	// or the server name) over all processes.
	n := rows.Group(t, hsabi.Kinds(hsabi.KindFrontend, hsabi.KindBackend, hsabi.KindServer))
	objects = objects[:0]
	for _, r := range rows.First {
		objects = append(objects, object{t.Kind[r], t.PxID[r], t.SvID[r]})
	}
	scur, slim = hsabi.Zeros(scur, n), hsabi.Zeros(slim, n)
	// One pass over the rows; null cells are 0.
	sc, sl := scurCol.Values, slimCol.Values
	for i, o := range rows.Slot {
		if o < 0 {
			continue
		}
		scur[o] += sc[i]
		slim[o] += sl[i]
	}

	minHeadroom, found := 0.0, false
	busiest = busiest[:0]
	for o, obj := range objects {
		if obj.kind == hsabi.KindServer {
			if scur[o] > 0 {
				rank(snap, int32(o))
			}
			continue
		}
		if slim[o] <= 0 {
			continue
		}
		usage := 100 * scur[o] / slim[o]
		name := snap.Str(obj.px)
		if obj.kind == hsabi.KindFrontend {
			out.Frontend(name, "SessionUsagePct", usage)
			out.Frontend(name, "SessionHeadroomPct", 100-usage)
		} else {
			out.Backend(name, "SessionUsagePct", usage)
			out.Backend(name, "SessionHeadroomPct", 100-usage)
		}
		if !found || 100-usage < minHeadroom {
			minHeadroom, found = 100-usage, true
		}
	}
	if found {
		out.Path("session_headroom.min_pct", minHeadroom)
	}
	for r, o := range busiest {
		obj := objects[o]
		px, sv := snap.Str(obj.px), snap.Str(obj.sv)
		out.Server(px, sv, "TopSessionsRank", float64(r+1))
		if slim[o] > 0 {
			out.Server(px, sv, "SessionUsagePct", 100*scur[o]/slim[o])
		}
	}
	return nil
}

// rank inserts server o into busiest if it is among the top ones.
func rank(snap *hsabi.Snapshot, o int32) {
	if top == 0 {
		return
	}
	pos := len(busiest)
	for pos > 0 && before(snap, o, busiest[pos-1]) {
		pos--
	}
	if pos >= top {
		return
	}
	if len(busiest) < top {
		busiest = append(busiest, 0)
	}
	copy(busiest[pos+1:], busiest[pos:])
	busiest[pos] = o
}

// before reports whether server a ranks before server b: more sessions,
// then backend and server name.
func before(snap *hsabi.Snapshot, a, b int32) bool {
	if scur[a] != scur[b] {
		return scur[a] > scur[b]
	}
	oa, ob := objects[a], objects[b]
	if oa.px != ob.px {
		return snap.Str(oa.px) < snap.Str(ob.px)
	}
	return snap.Str(oa.sv) < snap.Str(ob.sv)
}
