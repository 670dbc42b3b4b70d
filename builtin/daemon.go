package builtin

import (
	"context"
	"math"
	"sort"
	"strconv"

	"github.com/haproxystats-go/haproxystats/engine"
)

// Daemon computes the `show info` metrics (SPEC §5.1): sums and averages
// over processes, CpuUsagePct percentiles and standard deviation, the
// optional percentages and per-process metrics, and MetricsHAProxy.
type Daemon struct {
	opts Options
}

// percentage is one of the calculate-percentages metrics: 100*value/limit.
type percentage struct{ title, value, limit string }

var percentages = []percentage{
	{"ConnPercentage", "CurrConns", "Maxconn"},
	{"ConnRatePercentage", "ConnRate", "ConnRateLimit"},
	{"SslConnPercentage", "CurrSslConns", "MaxSslConns"},
	{"SslRatePercentage", "SslRate", "SslRateLimit"},
}

var cpuPercentiles = []struct {
	name string
	q    float64
}{
	{"25PercentileCpuUsagePct", 0.25},
	{"50PercentileCpuUsagePct", 0.50},
	{"75PercentileCpuUsagePct", 0.75},
	{"95PercentileCpuUsagePct", 0.95},
	{"99PercentileCpuUsagePct", 0.99},
}

// Columns implements engine.ColumnUser: the daemon stage reads no
// `show stat` column.
func (d *Daemon) Columns() []string { return []string{} }

// Process implements engine.Stage.
func (d *Daemon) Process(_ context.Context, s *engine.Snapshot, emit engine.Emitter) error {
	if s.InfoFiles == 0 {
		return engine.ErrSkip
	}
	t := &s.Info
	if t.Rows() == 0 {
		d.opts.Logger.Error("no daemon statistics in any *_info file", "snapshot", s.Name)
		return nil
	}
	if !t.Uniform() {
		d.opts.Logger.Warn("*_info files carry different keys, daemon metrics skipped", "snapshot", s.Name)
		return nil
	}
	n := t.Rows()
	count := 1
	out := func(scope engine.Scope, object, name string, v float64) {
		emit.Emit(engine.Metric{Scope: scope, Object: object, Name: name, Value: v})
		count++
	}
	var summed []int // indexes of the DaemonSummed keys present
	for _, key := range DaemonSummed {
		k := t.Key(key)
		if k < 0 {
			continue
		}
		summed = append(summed, k)
		out(engine.ScopeDaemon, "", key, float64(sumInts(t.Values[k])))
	}
	for _, key := range DaemonAveraged {
		if k := t.Key(key); k >= 0 {
			out(engine.ScopeDaemon, "", key, float64(sumInts(t.Values[k]))/float64(n))
		}
	}
	idle := t.Key("Idle_pct")
	if idle >= 0 && n >= 2 {
		cpu := make([]float64, n)
		for i, v := range t.Values[idle] {
			cpu[i] = float64(100 - v)
		}
		sort.Float64s(cpu)
		for _, p := range cpuPercentiles {
			out(engine.ScopeDaemon, "", p.name, cpu[int(math.RoundToEven(p.q*float64(n-1)))])
		}
		out(engine.ScopeDaemon, "", "StdCpuUsagePct", sampleStd(cpu))
	}
	if d.opts.CalculatePercentages {
		for _, p := range percentages {
			v, l := t.Key(p.value), t.Key(p.limit)
			if v < 0 || l < 0 {
				continue
			}
			out(engine.ScopeDaemon, "", p.title, percent(sumInts(t.Values[v]), sumInts(t.Values[l])))
		}
	}
	if d.opts.PerProcessMetrics {
		labels := processLabels(t)
		uptime := t.Key("Uptime_sec")
		for row, label := range labels {
			for _, k := range summed {
				out(engine.ScopeProcess, label, t.Keys[k], float64(t.Values[k][row]))
			}
			if idle >= 0 {
				out(engine.ScopeProcess, label, "CpuUsagePct", float64(100-t.Values[idle][row]))
				out(engine.ScopeProcess, label, "Idle_pct", float64(t.Values[idle][row]))
			}
			if uptime >= 0 {
				out(engine.ScopeProcess, label, "Uptime_sec", float64(t.Values[uptime][row]))
			}
			if !d.opts.CalculatePercentages {
				continue
			}
			for _, p := range percentages {
				v, l := t.Key(p.value), t.Key(p.limit)
				if v < 0 || l < 0 {
					continue
				}
				out(engine.ScopeProcess, label, p.title, percent(t.Values[v][row], t.Values[l][row]))
			}
		}
	}
	emit.Emit(engine.Metric{Scope: engine.ScopeSelf, Name: "MetricsHAProxy", Value: float64(count)})
	return nil
}

// processLabels names each process: its Process_num, or, when that key is
// missing or repeats across files (several HAProxy 2.x instances all report
// 1), the socket name.
func processLabels(t *engine.InfoTable) []string {
	labels := make([]string, t.Rows())
	if k := t.Key("Process_num"); k >= 0 {
		seen := make(map[int64]bool, t.Rows())
		unique := true
		for _, v := range t.Values[k] {
			if seen[v] {
				unique = false
				break
			}
			seen[v] = true
		}
		if unique {
			for i, v := range t.Values[k] {
				labels[i] = strconv.FormatInt(v, 10)
			}
			return labels
		}
	}
	for i, p := range t.Procs {
		labels[i] = engine.GraphiteName(p)
	}
	return labels
}

// percent is int(100 * value / limit) as the original computed it, 0 when
// the limit is 0.
func percent(value, limit int64) float64 {
	if limit == 0 {
		return 0
	}
	return math.Trunc(float64(100*value) / float64(limit))
}

func sumInts(v []int64) int64 {
	var s int64
	for _, x := range v {
		s += x
	}
	return s
}

// sampleStd is the standard deviation with n-1 in the denominator.
func sampleStd(v []float64) float64 {
	var mean float64
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return math.Sqrt(ss / float64(len(v)-1))
}
