package counters_test

import (
	"context"
	"fmt"

	"github.com/haproxystats-go/haproxystats/internal/counters"
	"github.com/haproxystats-go/haproxystats/internal/spool"
)

// Example shows the daemon's calls (Pending when a snapshot is handed
// out, Done when it is processed) and a fold's (fill a Sample, Advance,
// add the offsets to its sums) through a reload: the frontend's stot sent
// stays at what the workers counted, old worker included.
func Example() {
	store, err := counters.Open(counters.Options{}) // Dir: "" keeps the state in memory
	if err != nil {
		panic(err)
	}
	part, err := store.Part("frontend", []string{"stot"})
	if err != nil {
		panic(err)
	}
	sample := part.NewSample()

	// Per snapshot: the workers' socket names and their stot of frontend fe1.
	snapshots := []map[string]float64{
		{spool.WorkerSocketName("haproxy-master.sock", 812, 1250, false): 100},
		{spool.WorkerSocketName("haproxy-master.sock", 812, 1250, true): 120, // reloaded: 1250 leaves
			spool.WorkerSocketName("haproxy-master.sock", 812, 1311, false): 5},
		{spool.WorkerSocketName("haproxy-master.sock", 812, 1311, false): 9}, // 1250 exited
	}
	for i, procs := range snapshots {
		t := int64(1700000000 + 10*i)
		store.Pending(t) // the daemon, when it hands the snapshot out

		// The fold: one object, its value in each process.
		sample.Reset()
		o := sample.Object("frontend", "fe1")
		var sum float64
		for socket, stot := range procs {
			sample.Add(sample.Worker(socket), o, 0, stot)
			sum += stot
		}
		if _, err := part.Advance(context.Background(), t, sample); err != nil {
			panic(err)
		}
		fmt.Printf("%d: sum %v, sent %v\n", t, sum, sum+sample.Offset(o, 0))

		if err := store.Done(t); err != nil { // the daemon, before removing the snapshot
			panic(err)
		}
	}
	// Output:
	// 1700000000: sum 100, sent 100
	// 1700000010: sum 125, sent 125
	// 1700000020: sum 9, sent 129
}
