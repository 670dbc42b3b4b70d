package builtin

import (
	"context"

	"github.com/haproxystats-go/haproxystats/engine"
)

// Frontends sums the FRONTEND rows per frontend name over processes
// (SPEC §5.3) and reports MetricsFrontend.
type Frontends struct {
	metrics []string
	exclude map[string]bool
}

func newFrontends(opts Options) *Frontends {
	metrics := opts.FrontendMetrics
	if metrics == nil {
		metrics = FrontendSummed
	}
	return &Frontends{metrics: metrics, exclude: nameSet(opts.ExcludeFrontends)}
}

// Columns implements engine.ColumnUser.
func (f *Frontends) Columns() []string { return f.metrics }

// Process implements engine.Stage.
func (f *Frontends) Process(_ context.Context, s *engine.Snapshot, emit engine.Emitter) error {
	t := &s.Stats
	if t.Rows() == 0 {
		return engine.ErrSkip
	}
	g, names := groupRows(t.Rows(), func(i int) (string, bool) {
		return t.PxName[i], t.Kind[i] == engine.KindFrontend && !f.exclude[t.PxName[i]]
	})
	cols := aggregate(t, g, f.metrics, nil, nil)
	for gi, name := range names {
		for _, c := range cols {
			emit.Emit(engine.Metric{Scope: engine.ScopeFrontend, Object: name, Name: c.name, Value: c.values[gi]})
		}
	}
	emit.Emit(engine.Metric{Scope: engine.ScopeSelf, Name: "MetricsFrontend", Value: float64(1 + len(names)*len(cols))})
	return nil
}
