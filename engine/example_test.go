package engine_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/haproxystats-go/haproxystats/engine"
)

// A stage that reports, per backend, how many server rows it has in this
// snapshot, under the backend's path.
func Example() {
	countServers := engine.StageFunc(func(_ context.Context, s *engine.Snapshot, emit engine.Emitter) error {
		n := map[string]int{}
		var order []string
		for i, kind := range s.Stats.Kind {
			if kind != engine.KindServer {
				continue
			}
			if n[s.Stats.PxName[i]] == 0 {
				order = append(order, s.Stats.PxName[i])
			}
			n[s.Stats.PxName[i]]++
		}
		for _, b := range order {
			emit.Emit(engine.Metric{Scope: engine.ScopeBackend, Object: b, Name: "ServerRows", Value: float64(n[b])})
		}
		return nil
	})
	p, err := engine.NewPipeline(
		engine.Config{Paths: &engine.Paths{Prefix: "loadbalancers.haproxy"}},
		engine.StageSpec{Name: "CountServers", Stage: countServers},
	)
	if err != nil {
		panic(err)
	}
	files := []engine.File{{Name: "admin1.sock_stat", Data: []byte(
		"# pxname,svname,scur,type,\n" +
			"www.example.com,FRONTEND,3,0,\n" +
			"api.v1,web.01,1,2,\n" +
			"api.v1,web.02,2,2,\n" +
			"api.v1,BACKEND,3,1,\n")}}
	var out bytes.Buffer
	if _, err := p.ProcessFiles(context.Background(), "1795507783", files, &out); err != nil {
		panic(err)
	}
	fmt.Print(out.String()[:len("loadbalancers.haproxy.backend.api_v1.ServerRows 2 1795507783\n")])
	// Output:
	// loadbalancers.haproxy.backend.api_v1.ServerRows 2 1795507783
}
