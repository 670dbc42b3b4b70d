package counters

import (
	"context"
	"strconv"
	"testing"

	"github.com/haproxystats-go/haproxystats/internal/spool"
)

// benchNames are 25 counters, as many as a fold of the original's server
// list has.
var benchNames = func() []string {
	var out []string
	for i := range 25 {
		out = append(out, "c"+strconv.Itoa(i))
	}
	return out
}()

// benchSample fills s like a fold would: objects servers "be<i>/srv<j>",
// every process having every object, every counter set.
func benchSample(s *Sample, procs, objects int, base float64) {
	s.Reset()
	for o := range objects {
		s.Object("server", "be"+strconv.Itoa(o/10), "srv"+strconv.Itoa(o%10))
	}
	for p := range procs {
		w := s.Worker(spool.WorkerSocketName("master.sock", 7, 1000+p, p > 0))
		for o := range objects {
			for c := range len(benchNames) {
				s.Add(w, o, c, base+float64(o+c))
			}
		}
	}
}

// BenchmarkAdvance measures advancing a part by one snapshot, for 1
// worker and 11,000 objects, and 8 workers (88,000 process-object pairs),
// 25 counters, after a reload so that carried values and offset tables
// exist. BenchmarkSampleAdd measures filling the sample.
func BenchmarkAdvance(b *testing.B) {
	for _, tc := range []struct{ procs, objects int }{{1, 11000}, {8, 11000}} {
		b.Run(strconv.Itoa(tc.procs)+"workers-"+strconv.Itoa(tc.objects)+"objects", func(b *testing.B) {
			st, err := Open(Options{})
			if err != nil {
				b.Fatal(err)
			}
			p, err := st.Part("server", benchNames)
			if err != nil {
				b.Fatal(err)
			}
			s := p.NewSample()
			ctx := context.Background()
			// A reload first: a worker that leaves.
			benchSample(s, tc.procs+1, tc.objects, 1)
			if _, err := p.Advance(ctx, 1, s); err != nil {
				b.Fatal(err)
			}
			ts := int64(2)
			for range departedGrace + 1 {
				benchSample(s, tc.procs, tc.objects, float64(ts))
				if _, err := p.Advance(ctx, ts, s); err != nil {
					b.Fatal(err)
				}
				ts++
			}
			// The sample is not changed by Advance: advance it again and
			// again (the values stay equal, which is no reset).
			benchSample(s, tc.procs, tc.objects, float64(ts))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := p.Advance(ctx, ts, s); err != nil {
					b.Fatal(err)
				}
				ts++
			}
			b.StopTimer()
			b.ReportMetric(float64(p.Size()), "state-bytes")
		})
	}
}

// BenchmarkSampleAdd measures what a fold adds to its work: registering
// 11,000 objects and 8 processes, and one Add per value of their 88,000
// process-object pairs of 25 counters, into a warm sample.
func BenchmarkSampleAdd(b *testing.B) {
	st, _ := Open(Options{})
	p, _ := st.Part("server", benchNames)
	s := p.NewSample()
	const procs, objects = 8, 11000
	benchSample(s, procs, objects, 1)
	b.ReportAllocs()
	for b.Loop() {
		s.Reset()
		for o := range objects {
			s.Object("server", "be", "srv"+strconv.Itoa(o)) // one allocation: the name
		}
		for w := range procs {
			s.Worker(spool.WorkerSocketName("master.sock", 7, 1000+w, w > 0))
			for o := range objects {
				for c := range len(benchNames) {
					s.Add(w, o, c, float64(o+c))
				}
			}
		}
	}
}

// BenchmarkFlush measures writing the state file of 1 worker and 11,000
// objects after a reload.
func BenchmarkFlush(b *testing.B) {
	st, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	p, err := st.Part("server", benchNames)
	if err != nil {
		b.Fatal(err)
	}
	s := p.NewSample()
	ctx := context.Background()
	for ts := int64(1); ts <= 5; ts++ {
		benchSample(s, 1, 11000, float64(ts)*1e6)
		s.workers[0].name = spool.ParseSocketName(spool.WorkerSocketName("master.sock", 7, 1000+int(ts/3), false))
		if _, err := p.Advance(ctx, ts, s); err != nil {
			b.Fatal(err)
		}
	}
	size := len(st.encode())
	b.ReportAllocs()
	for b.Loop() {
		st.gen.Add(1)
		if err := st.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size), "file-bytes")
}

// BenchmarkSampleAddAt is BenchmarkSampleAdd the way a columnar fold
// would do it: the entries of the rows looked up once, then AddAt column
// by column.
func BenchmarkSampleAddAt(b *testing.B) {
	st, _ := Open(Options{})
	p, _ := st.Part("server", benchNames)
	s := p.NewSample()
	const procs, objects = 8, 11000
	benchSample(s, procs, objects, 1)
	ents := make([]int, objects)
	b.ReportAllocs()
	for b.Loop() {
		s.Reset()
		for o := range objects {
			s.Object("server", "be", "srv"+strconv.Itoa(o))
		}
		for w := range procs {
			s.Worker(spool.WorkerSocketName("master.sock", 7, 1000+w, w > 0))
			for o := range objects {
				ents[o] = s.Entry(w, o)
			}
			for c := range len(benchNames) {
				for o, e := range ents {
					s.AddAt(e, c, float64(o+c))
				}
			}
		}
	}
}
