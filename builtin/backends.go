package builtin

import (
	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/counters"
)

// Backends computes the BACKEND rows per backend name (SPEC §5.3): the
// summed list, act/bck/weight averaged over all rows, the response times
// averaged over rows with lbtot > 0; and MetricsBackend.
type Backends struct {
	series  []series
	exclude *Exclusions
	ctr     *counterPart // nil without monotonic counters
	size    sizeHint     // shared by the Folds' aggregators
}

func newBackends(opts Options) *Backends {
	metrics := opts.BackendMetrics
	if metrics == nil {
		metrics = BackendSummed
	}
	ss := newSeries(metrics, BackendAveraged, BackendTimes)
	return &Backends{series: ss, exclude: opts.ExcludeBackends,
		ctr: newCounterPart(opts.Counters, partBackend, ss, counters.IsStatCounter)}
}

// Columns implements engine.Folder.
func (b *Backends) Columns() []string { return columns(b.series) }

// KindColumns implements engine.KindColumner: BACKEND rows only.
func (b *Backends) KindColumns(kind uint8) []string {
	if kind == engine.KindBackend {
		return b.Columns()
	}
	return nil
}

// NewFold implements engine.Folder.
func (b *Backends) NewFold() engine.Fold {
	return &proxyFold{scope: engine.ScopeBackend, kind: engine.KindBackend, count: "MetricsBackend",
		exclusions: b.exclude, agg: newAggregator(b.series, false, b.ctr, &b.size)}
}
