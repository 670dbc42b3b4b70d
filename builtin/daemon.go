package builtin

import (
	"context"
	"math"
	"sort"
	"strconv"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/counters"
	"github.com/haproxystats-go/haproxystats/internal/spool"
)

// Daemon computes the `show info` metrics (SPEC §5.1): sums and averages
// over processes, CpuUsagePct percentiles and standard deviation, the
// optional percentages and per-process metrics, and MetricsHAProxy.
type Daemon struct {
	opts Options
	ctr  *counterPart // nil without monotonic counters
}

func newDaemon(opts Options) *Daemon {
	return &Daemon{opts: opts, ctr: newCounterPart(opts.Counters, partDaemon, newSeries(DaemonSummed, nil, nil), counters.IsInfoCounter)}
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

// Columns implements engine.Folder: the daemon stage reads no `show stat`
// column.
func (d *Daemon) Columns() []string { return nil }

// KindColumns implements engine.KindColumner: no column in any row.
func (d *Daemon) KindColumns(uint8) []string { return nil }

// NewFold implements engine.Folder: the daemon stage needs only the
// `show info` table, which the pipeline hands to Finish.
func (d *Daemon) NewFold() engine.Fold {
	f := &daemonFold{d: d}
	if d.ctr != nil {
		f.ctr = d.ctr.newSample()
	}
	return f
}

type daemonFold struct {
	d   *Daemon
	ctr *foldCounters // nil without monotonic counters
}

func (f *daemonFold) Reset(name string) {
	if f.ctr != nil {
		f.ctr.reset(name)
	}
}

func (*daemonFold) Rows(*engine.StatTable) {}

// CanMerge implements engine.Merger: the fold reads no row, so there is
// nothing to merge.
func (*daemonFold) CanMerge() bool { return true }

// Merge implements engine.Merger.
func (*daemonFold) Merge(engine.Fold) {}

func (f *daemonFold) Finish(ctx context.Context, s *engine.Snapshot, emit engine.Emitter) error {
	return f.d.process(ctx, s, emit, f.ctr)
}

func (f *daemonFold) Size() int64 {
	if f.ctr == nil || f.ctr.sample == nil {
		return 0
	}
	return f.ctr.sample.Size()
}

// daemonObject is the one object of the daemon's counter part.
const daemonObject = "daemon"

// process computes the metrics of the `show info` table. A cell whose
// value was not an integer (InfoTable.Dropped) is left out of the sums,
// averages and percentiles, and its per-process line is not sent. Sums are
// computed in float64, so that they cannot wrap. With monotonic counters
// (ctr not nil), the sums of the cumulative keys get the offsets of the
// processes that left; the per-process lines stay as each process reports.
func (d *Daemon) process(ctx context.Context, s *engine.Snapshot, emit engine.Emitter, ctr *foldCounters) error {
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
	offsets, err := d.counters(ctx, s, ctr)
	if err != nil {
		return err
	}
	count := 1
	out := func(scope engine.Scope, object, name string, v float64) {
		emit.Emit(engine.Metric{Scope: scope, Object: object, Name: name, Value: v})
		count++
	}
	var summed []int // indexes of the DaemonSummed keys present
	for i, key := range DaemonSummed {
		k := t.Key(key)
		if k < 0 {
			continue
		}
		summed = append(summed, k)
		total, _ := sumKey(t, k)
		if offsets != nil && d.ctr.of[i] >= 0 {
			total += offsets[d.ctr.of[i]]
		}
		out(engine.ScopeDaemon, "", key, total)
	}
	for _, key := range DaemonAveraged {
		if k := t.Key(key); k >= 0 {
			if total, n := sumKey(t, k); n > 0 {
				out(engine.ScopeDaemon, "", key, total/float64(n))
			}
		}
	}
	idle := t.Key("Idle_pct")
	if idle >= 0 {
		var cpu []float64
		for row, v := range t.Values[idle] {
			if t.Has[idle][row] {
				cpu = append(cpu, 100-float64(v))
			}
		}
		if n := len(cpu); n >= 2 {
			sort.Float64s(cpu)
			for _, p := range cpuPercentiles {
				out(engine.ScopeDaemon, "", p.name, cpu[int(math.RoundToEven(p.q*float64(n-1)))])
			}
			out(engine.ScopeDaemon, "", "StdCpuUsagePct", sampleStd(cpu))
		}
	}
	if d.opts.CalculatePercentages {
		for _, p := range percentages {
			v, l := t.Key(p.value), t.Key(p.limit)
			if v < 0 || l < 0 {
				continue
			}
			value, _ := sumKey(t, v)
			limit, _ := sumKey(t, l)
			out(engine.ScopeDaemon, "", p.title, percent(value, limit))
		}
	}
	if d.opts.PerProcessMetrics {
		labels := processLabels(s)
		uptime := t.Key("Uptime_sec")
		cell := func(k, row int) (float64, bool) {
			if k < 0 || !t.Has[k][row] {
				return 0, false
			}
			return float64(t.Values[k][row]), true
		}
		for row, label := range labels {
			for _, k := range summed {
				if v, ok := cell(k, row); ok {
					out(engine.ScopeProcess, label, t.Keys[k], v)
				}
			}
			if v, ok := cell(idle, row); ok {
				out(engine.ScopeProcess, label, "CpuUsagePct", 100-v)
				out(engine.ScopeProcess, label, "Idle_pct", v)
			}
			if v, ok := cell(uptime, row); ok {
				out(engine.ScopeProcess, label, "Uptime_sec", v)
			}
			if !d.opts.CalculatePercentages {
				continue
			}
			for _, p := range percentages {
				value, okv := cell(t.Key(p.value), row)
				limit, okl := cell(t.Key(p.limit), row)
				if okv && okl {
					out(engine.ScopeProcess, label, p.title, percent(value, limit))
				}
			}
		}
	}
	emit.Emit(engine.Metric{Scope: engine.ScopeSelf, Name: "MetricsHAProxy", Value: float64(count)})
	return nil
}

// sumKey returns the sum of key k over the rows that have a value, and
// their number.
func sumKey(t *engine.InfoTable, k int) (float64, int) {
	var total float64
	n := 0
	for row, v := range t.Values[k] {
		if t.Has[k][row] {
			total += float64(v)
			n++
		}
	}
	return total, n
}

// counters collects the cumulative keys of every process into the
// daemon's counter part, advances it and returns the offsets, one per
// counter of the part; nil without monotonic counters.
func (d *Daemon) counters(ctx context.Context, s *engine.Snapshot, ctr *foldCounters) ([]float64, error) {
	if ctr == nil {
		return nil, nil
	}
	if smp := ctr.sample; smp != nil {
		t := &s.Info
		o := smp.Object(daemonObject)
		for row, proc := range t.Procs {
			w := smp.Worker(proc)
			e := smp.Entry(w, o)
			for i, key := range DaemonSummed {
				c := d.ctr.of[i]
				if c < 0 {
					continue
				}
				if k := t.Key(key); k >= 0 && t.Has[k][row] {
					smp.AddAt(e, c, float64(t.Values[k][row]))
				}
			}
		}
	}
	if err := ctr.advance(ctx, s); err != nil {
		return nil, err
	}
	return ctr.sample.Offsets(0), nil
}

// processLabels names each process of the snapshot for the per-process
// metrics (spool.ProcessLabels): a master CLI's workers by master and role
// (<master>.worker, <master>.leaving1 ...), never by PID, so that paths
// stay the same across reloads; plain sockets by the original's rule,
// their Process_num, or their socket name when that key is missing or
// repeats across files (several HAProxy 2.x instances all report 1).
func processLabels(s *engine.Snapshot) []string {
	t := &s.Info
	num, start, uptime := t.Key("Process_num"), t.Key("Start_time_sec"), t.Key("Uptime_sec")
	now, _ := strconv.ParseInt(s.Name, 10, 64)
	procs := make([]spool.Process, t.Rows())
	for row, socket := range t.Procs {
		p := spool.Process{Socket: socket}
		if num >= 0 && t.Has[num][row] {
			p.ProcessNum, p.HasProcessNum = t.Values[num][row], true
		}
		switch {
		case start >= 0 && t.Has[start][row]:
			p.Started = t.Values[start][row]
		case uptime >= 0 && t.Has[uptime][row] && now > 0:
			p.Started = now - t.Values[uptime][row]
		}
		procs[row] = p
	}
	return spool.ProcessLabels(procs, engine.PathName)
}

// percent is int(100 * value / limit) as the original computed it, 0 when
// the limit is 0.
func percent(value, limit float64) float64 {
	if limit == 0 {
		return 0
	}
	return math.Trunc(100 * value / limit)
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
