package builtin

import (
	"context"

	"github.com/haproxystats-go/haproxystats/internal/counters"

	"github.com/haproxystats-go/haproxystats/engine"
)

// Frontends sums the FRONTEND rows per frontend name over processes
// (SPEC §5.3) and reports MetricsFrontend.
type Frontends struct {
	series  []series
	exclude *Exclusions
	ctr     *counterPart // nil without monotonic counters
	size    sizeHint     // shared by the Folds' aggregators
}

func newFrontends(opts Options) *Frontends {
	metrics := opts.FrontendMetrics
	if metrics == nil {
		metrics = FrontendSummed
	}
	ss := newSeries(metrics, nil, nil)
	return &Frontends{series: ss, exclude: opts.ExcludeFrontends,
		ctr: newCounterPart(opts.Counters, partFrontend, ss, counters.IsStatCounter)}
}

// Columns implements engine.Folder.
func (f *Frontends) Columns() []string { return columns(f.series) }

// KindColumns implements engine.KindColumner: FRONTEND rows only.
func (f *Frontends) KindColumns(kind uint8) []string {
	if kind == engine.KindFrontend {
		return f.Columns()
	}
	return nil
}

// NewFold implements engine.Folder.
func (f *Frontends) NewFold() engine.Fold {
	return &proxyFold{scope: engine.ScopeFrontend, kind: engine.KindFrontend, count: "MetricsFrontend",
		exclusions: f.exclude, agg: newAggregator(f.series, false, f.ctr, &f.size)}
}

// proxyFold aggregates the rows of one kind (FRONTEND or BACKEND) per
// proxy name.
type proxyFold struct {
	scope      engine.Scope
	kind       uint8
	count      string // the self-metric counting the values
	exclusions *Exclusions
	exclude    map[string]bool
	agg        *aggregator
	rows       bool
}

func (f *proxyFold) Reset(name string) {
	f.agg.reset(name)
	f.exclude = f.exclusions.Current(name)
	f.rows = false
}

func (f *proxyFold) Rows(b *engine.StatTable) {
	f.rows = true
	f.agg.fold(b,
		func(r int) bool { return b.Kind[r] == f.kind && !f.exclude[b.PxName[r]] },
		func(r int) uint64 { return uint64(b.PxID[r]) },
		func(r int) objectName { return objectName{object: b.PxName[r]} })
}

func (f *proxyFold) Finish(ctx context.Context, snap *engine.Snapshot, emit engine.Emitter) error {
	if !f.rows {
		return engine.ErrSkip
	}
	if err := f.agg.advance(ctx, snap); err != nil {
		return err
	}
	f.agg.emit(emit, func(o int) engine.Metric {
		return engine.Metric{Scope: f.scope, Object: f.agg.names[o].object}
	})
	emit.Emit(engine.Metric{Scope: engine.ScopeSelf, Name: f.count, Value: float64(1 + len(f.agg.order)*f.agg.present())})
	return nil
}

func (f *proxyFold) Size() int64 { return f.agg.Size() }

// CanMerge implements engine.Merger: not with monotonic counters.
func (f *proxyFold) CanMerge() bool { return f.agg.ctr == nil }

// Merge implements engine.Merger.
func (f *proxyFold) Merge(other engine.Fold) {
	o := other.(*proxyFold)
	f.agg.merge(o.agg)
	f.rows = f.rows || o.rows
}
