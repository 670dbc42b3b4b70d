package builtin

import (
	"context"

	"github.com/haproxystats-go/haproxystats/engine"
)

// Backends computes the BACKEND rows per backend name (SPEC §5.3): the
// summed list, act/bck/weight averaged over all rows, the response times
// averaged over rows with lbtot > 0; and MetricsBackend.
type Backends struct {
	metrics []string
	exclude map[string]bool
}

func newBackends(opts Options) *Backends {
	metrics := opts.BackendMetrics
	if metrics == nil {
		metrics = BackendSummed
	}
	return &Backends{metrics: metrics, exclude: nameSet(opts.ExcludeBackends)}
}

// Columns implements engine.ColumnUser.
func (b *Backends) Columns() []string {
	return union(b.metrics, BackendAveraged, BackendTimes, []string{"lbtot"})
}

// Process implements engine.Stage.
func (b *Backends) Process(_ context.Context, s *engine.Snapshot, emit engine.Emitter) error {
	t := &s.Stats
	if t.Rows() == 0 {
		return engine.ErrSkip
	}
	g, names := groupRows(t.Rows(), func(i int) (string, bool) {
		return t.PxName[i], t.Kind[i] == engine.KindBackend && !b.exclude[t.PxName[i]]
	})
	cols := aggregate(t, g, b.metrics, BackendAveraged, BackendTimes)
	for gi, name := range names {
		for _, c := range cols {
			emit.Emit(engine.Metric{Scope: engine.ScopeBackend, Object: name, Name: c.name, Value: c.values[gi]})
		}
	}
	emit.Emit(engine.Metric{Scope: engine.ScopeSelf, Name: "MetricsBackend", Value: float64(1 + len(names)*len(cols))})
	return nil
}
