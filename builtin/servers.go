package builtin

import (
	"context"

	"github.com/haproxystats-go/haproxystats/engine"
)

// Servers computes the server rows (type 2) per (backend, server) (SPEC
// §5.3): the summed list, throttle/weight averaged, the response times
// averaged over rows with lbtot > 0, TotalServers per backend, and with
// aggr-server-metrics the same per server name across every backend
// (default list, exclusions ignored); and MetricsServer.
type Servers struct {
	metrics []string
	exclude map[string]bool
	aggr    bool
}

func newServers(opts Options) *Servers {
	metrics := opts.ServerMetrics
	if metrics == nil {
		metrics = ServerSummed
	}
	return &Servers{metrics: metrics, exclude: nameSet(opts.ExcludeBackends), aggr: opts.AggrServerMetrics}
}

// Columns implements engine.ColumnUser.
func (sv *Servers) Columns() []string {
	cols := union(sv.metrics, ServerAveraged, ServerTimes, []string{"lbtot"})
	if sv.aggr {
		cols = union(cols, ServerSummed)
	}
	return cols
}

type serverKey struct{ backend, server string }

// Process implements engine.Stage.
func (sv *Servers) Process(_ context.Context, s *engine.Snapshot, emit engine.Emitter) error {
	t := &s.Stats
	if t.Rows() == 0 {
		return engine.ErrSkip
	}
	count := 1
	g, keys := groupRows(t.Rows(), func(i int) (serverKey, bool) {
		return serverKey{t.PxName[i], t.SvName[i]}, t.Kind[i] == engine.KindServer && !sv.exclude[t.PxName[i]]
	})
	cols := aggregate(t, g, sv.metrics, ServerAveraged, ServerTimes)
	total := map[string]int{}
	var backends []string
	for gi, k := range keys {
		for _, c := range cols {
			emit.Emit(engine.Metric{Scope: engine.ScopeServer, Object: k.backend, Server: k.server, Name: c.name, Value: c.values[gi]})
		}
		if _, seen := total[k.backend]; !seen {
			backends = append(backends, k.backend)
		}
		total[k.backend]++
	}
	count += len(keys) * len(cols)
	for _, b := range backends {
		emit.Emit(engine.Metric{Scope: engine.ScopeBackend, Object: b, Name: "TotalServers", Value: float64(total[b])})
		count++
	}
	if sv.aggr {
		g, names := groupRows(t.Rows(), func(i int) (string, bool) {
			return t.SvName[i], t.Kind[i] == engine.KindServer
		})
		cols := aggregate(t, g, ServerSummed, ServerAveraged, ServerTimes)
		for gi, name := range names {
			for _, c := range cols {
				emit.Emit(engine.Metric{Scope: engine.ScopeAggrServer, Server: name, Name: c.name, Value: c.values[gi]})
			}
		}
		count += len(names) * len(cols)
	}
	emit.Emit(engine.Metric{Scope: engine.ScopeSelf, Name: "MetricsServer", Value: float64(count)})
	return nil
}
