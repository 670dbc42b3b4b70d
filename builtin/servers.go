package builtin

import (
	"context"
	"slices"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/counters"
)

// Servers computes the server rows (type 2) per (backend, server) (SPEC
// §5.3): the summed list, throttle/weight averaged, the response times
// averaged over rows with lbtot > 0, TotalServers per backend, and with
// aggr-server-metrics the same per server name across every backend
// (default list, exclusions ignored); and MetricsServer.
type Servers struct {
	series  []series
	aggr    []series // nil without aggr-server-metrics
	exclude *Exclusions
	// The counter parts of series and aggr; nil without monotonic counters.
	ctr, aggrCtr *counterPart
	// Shared by the Folds' aggregators of series and aggr.
	size, aggrSize sizeHint
}

func newServers(opts Options) *Servers {
	metrics := opts.ServerMetrics
	if metrics == nil {
		metrics = ServerSummed
	}
	s := &Servers{series: newSeries(metrics, ServerAveraged, ServerTimes), exclude: opts.ExcludeBackends}
	s.ctr = newCounterPart(opts.Counters, partServer, s.series, counters.IsStatCounter)
	if opts.AggrServerMetrics {
		s.aggr = newSeries(ServerSummed, ServerAveraged, ServerTimes)
		s.aggrCtr = newCounterPart(opts.Counters, partAggrServer, s.aggr, counters.IsStatCounter)
	}
	return s
}

// Columns implements engine.Folder.
func (sv *Servers) Columns() []string {
	return columns(append(slices.Clip(sv.series), sv.aggr...))
}

// KindColumns implements engine.KindColumner: server rows only.
func (sv *Servers) KindColumns(kind uint8) []string {
	if kind == engine.KindServer {
		return sv.Columns()
	}
	return nil
}

// NewFold implements engine.Folder.
func (sv *Servers) NewFold() engine.Fold {
	f := &serverFold{exclusions: sv.exclude, agg: newAggregator(sv.series, true, sv.ctr, &sv.size)}
	if sv.aggr != nil {
		f.aggr = newAggregator(sv.aggr, false, sv.aggrCtr, &sv.aggrSize)
	}
	return f
}

type serverFold struct {
	exclusions *Exclusions
	exclude    map[string]bool
	agg        *aggregator
	aggr       *aggregator // nil without aggr-server-metrics
	rows       bool

	// TotalServers, kept from one snapshot to the next for their memory:
	// the backends in first-seen order, their counts, and each one's
	// index in both.
	backends []string
	counts   []int
	backend  map[string]int
}

func (f *serverFold) Reset(name string) {
	f.agg.reset(name)
	if f.aggr != nil {
		f.aggr.reset(name)
	}
	f.exclude = f.exclusions.Current(name)
	f.rows = false
}

func (f *serverFold) Rows(b *engine.StatTable) {
	f.rows = true
	f.agg.fold(b,
		func(r int) bool { return b.Kind[r] == engine.KindServer && !f.exclude[b.PxName[r]] },
		func(r int) uint64 { return uint64(b.PxID[r])<<32 | uint64(b.SvID[r]) },
		func(r int) objectName { return objectName{b.PxName[r], b.SvName[r]} })
	if f.aggr != nil {
		f.aggr.fold(b,
			func(r int) bool { return b.Kind[r] == engine.KindServer },
			func(r int) uint64 { return uint64(b.SvID[r]) },
			func(r int) objectName { return objectName{server: b.SvName[r]} })
	}
}

func (f *serverFold) Finish(ctx context.Context, snap *engine.Snapshot, emit engine.Emitter) error {
	if !f.rows {
		return engine.ErrSkip
	}
	// Both parts advance before anything is sent: an error loses the
	// stage's lines, never sends sums without their offsets.
	if err := f.agg.advance(ctx, snap); err != nil {
		return err
	}
	if f.aggr != nil {
		if err := f.aggr.advance(ctx, snap); err != nil {
			return err
		}
	}
	count := 1
	per := f.agg.present()
	f.agg.emit(emit, func(o int) engine.Metric {
		k := f.agg.names[o]
		return engine.Metric{Scope: engine.ScopeServer, Object: k.object, Server: k.server}
	})
	f.totalServers()
	count += len(f.agg.order) * per
	for i, b := range f.backends {
		emit.Emit(engine.Metric{Scope: engine.ScopeBackend, Object: b, Name: "TotalServers", Value: float64(f.counts[i])})
		count++
	}
	if f.aggr != nil {
		f.aggr.emit(emit, func(o int) engine.Metric {
			return engine.Metric{Scope: engine.ScopeAggrServer, Server: f.aggr.names[o].server}
		})
		count += len(f.aggr.order) * f.aggr.present()
	}
	emit.Emit(engine.Metric{Scope: engine.ScopeSelf, Name: "MetricsServer", Value: float64(count)})
	return nil
}

// totalServers counts the servers of each backend, in first-seen order:
// the keys are distinct (backend, server) pairs, so a backend's count is
// its number of objects. HAProxy lists a backend's servers together, so
// a backend is looked up by name only when it is not the last one's.
func (f *serverFold) totalServers() {
	clear(f.backends) // the names of the last snapshot, which forget may have dropped
	f.backends, f.counts = f.backends[:0], f.counts[:0]
	if f.backend == nil {
		f.backend = make(map[string]int)
	}
	clear(f.backend)
	last := -1
	for _, o := range f.agg.order {
		b := f.agg.names[o].object
		if last < 0 || b != f.backends[last] {
			i, ok := f.backend[b]
			if !ok {
				i = len(f.backends)
				f.backend[b] = i
				f.backends = append(f.backends, b)
				f.counts = append(f.counts, 0)
			}
			last = i
		}
		f.counts[last]++
	}
}

// CanMerge implements engine.Merger: not with monotonic counters.
func (f *serverFold) CanMerge() bool { return f.agg.ctr == nil && (f.aggr == nil || f.aggr.ctr == nil) }

// Merge implements engine.Merger.
func (f *serverFold) Merge(other engine.Fold) {
	o := other.(*serverFold)
	f.agg.merge(o.agg)
	if f.aggr != nil {
		f.aggr.merge(o.aggr)
	}
	f.rows = f.rows || o.rows
}

func (f *serverFold) Size() int64 {
	// A backend's name, count and index entry.
	n := f.agg.Size() + int64(cap(f.backends))*(16+8+32)
	if f.aggr != nil {
		n += f.aggr.Size()
	}
	return n
}
