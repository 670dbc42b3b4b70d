package daemon_test

import (
	"context"
	"log"
	"os/signal"
	"syscall"

	"github.com/haproxystats-go/haproxystats/daemon"
	"github.com/haproxystats-go/haproxystats/engine"
)

// A program that runs haproxystats-process with a Go stage of its own:
// per backend, the share of its servers that are up, under the backend's
// path (loadbalancers.<host>.haproxy.backend.<backend>.UpRatio).
func Example() {
	upRatio := engine.StageFunc(func(_ context.Context, s *engine.Snapshot, emit engine.Emitter) error {
		t := &s.Stats
		act := t.Column("act") // 1 for an active server that is up
		if act == nil {
			return engine.ErrSkip
		}
		type count struct{ up, all float64 }
		counts := map[string]*count{}
		var order []string
		for i, kind := range t.Kind {
			if kind != engine.KindServer {
				continue
			}
			c := counts[t.PxName[i]]
			if c == nil {
				c = &count{}
				counts[t.PxName[i]] = c
				order = append(order, t.PxName[i])
			}
			c.all++
			c.up += act.Values[i]
		}
		for _, b := range order {
			emit.Emit(engine.Metric{Scope: engine.ScopeBackend, Object: b, Name: "UpRatio", Value: counts[b].up / counts[b].all})
		}
		return nil
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT)
	defer stop()
	err := daemon.Run(ctx, daemon.Options{
		File: "/etc/haproxystats.conf",
		// columnStage makes the parser read only the column it needs.
		Stages: []engine.StageSpec{{Name: "UpRatio", Stage: columnStage{upRatio, []string{"act"}}}},
	})
	if err != nil {
		log.Fatal(err)
	}
}

// columnStage declares the columns a Stage reads (engine.ColumnUser), so
// that only those are kept for it.
type columnStage struct {
	engine.Stage
	columns []string
}

func (c columnStage) Columns() []string { return c.columns }
