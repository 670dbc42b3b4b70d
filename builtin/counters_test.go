package builtin

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/counters"
	"github.com/haproxystats-go/haproxystats/internal/spool"
)

// runAt processes files as the snapshot name with p and returns the lines
// as path -> value, and the problems.
func runAt(t *testing.T, p *engine.Pipeline, name string, files ...engine.File) (map[string]string, []error) {
	t.Helper()
	var out bytes.Buffer
	res, err := p.ProcessFiles(context.Background(), name, files, &out)
	if err != nil {
		t.Fatalf("snapshot %s: %v", name, err)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		f := strings.Split(l, " ")
		if len(f) != 3 || f[2] != name {
			t.Fatalf("snapshot %s: malformed line %q", name, l)
		}
		if _, dup := got[f[0]]; dup {
			t.Fatalf("snapshot %s: path %s sent twice", name, f[0])
		}
		got[f[0]] = f[1]
	}
	return got, res.Problems
}

func pipeline(t *testing.T, opts Options) *engine.Pipeline {
	t.Helper()
	p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "lb.haproxy"}}, Stages(opts)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const master = "haproxy-master.sock"

// mw is one worker of a master CLI in a test snapshot: its socket name
// and what it counted (the frontend's, the backend's and its server's
// stot, req_tot and hrsp_2xx are all n; scur is 1; CumConns is n).
type mw struct {
	mpid, pid int
	leaving   bool
	started   int64
	n         int
}

const counterCSV = "# pxname,svname,scur,stot,req_tot,hrsp_2xx,lbtot,rtime,weight,type,\n"

func (w mw) files() []engine.File {
	sock := spool.WorkerSocketName(master, w.mpid, w.pid, w.leaving)
	return []engine.File{
		info(sock, "Process_num", 1, "CumConns", w.n, "CurrConns", 1, "Idle_pct", 90, "Uptime_sec", 5, "Start_time_sec", w.started),
		{Name: sock + "_stat", Data: []byte(counterCSV + fmt.Sprintf(
			"fe,FRONTEND,1,%[1]d,%[1]d,%[1]d,,,,0,\nbe,s1,1,%[1]d,%[1]d,%[1]d,%[1]d,3,1,2,\nbe,BACKEND,1,%[1]d,%[1]d,%[1]d,%[1]d,3,1,1,\n", w.n))},
	}
}

func snapshot(ws ...mw) []engine.File {
	var files []engine.File
	for _, w := range ws {
		files = append(files, w.files()...)
	}
	return files
}

// counterPaths are the summed cumulative counters of the test snapshots,
// one of each stage.
var counterPaths = []string{
	"lb.haproxy.frontend.fe.stot", "lb.haproxy.frontend.fe.req_tot", "lb.haproxy.frontend.fe.hrsp_2xx",
	"lb.haproxy.backend.be.stot", "lb.haproxy.backend.be.hrsp_2xx", "lb.haproxy.backend.be.lbtot",
	"lb.haproxy.backend.be.server.s1.stot", "lb.haproxy.backend.be.server.s1.hrsp_2xx",
	"lb.haproxy.server.s1.stot", "lb.haproxy.server.s1.lbtot",
	"lb.haproxy.daemon.CumConns",
}

// TestMonotonicCountersThroughReload runs a master's snapshots through a
// reload (the old worker leaving, then gone), a missed pull and a restart
// of HAProxy: with a counters store every summed counter of every stage
// goes on from what the old worker had counted, gauges and per-process
// lines are as the workers report, and a restart starts again from the
// live values; without one, the sums drop when the old worker exits.
func TestMonotonicCountersThroughReload(t *testing.T) {
	steps := []struct {
		name    string
		workers []mw
		plain   string // every counter path's sum over the workers
		mono    string // with monotonic counters
		scur    string // a gauge: never offset
	}{
		{"100", []mw{{7, 10, false, 50, 100}}, "100", "100", "1"},
		{"110", []mw{{7, 10, true, 50, 120}, {7, 11, false, 105, 5}}, "125", "125", "2"},
		{"120", []mw{{7, 11, false, 105, 9}}, "9", "129", "1"},
		{"130", []mw{{7, 11, false, 105, 20}}, "20", "140", "1"},
		{"140", nil, "", "", ""}, // the master was not pulled: nothing sent
		{"150", []mw{{7, 11, false, 105, 30}}, "30", "150", "1"},
		// HAProxy restarted: new master PID, a reset as graphs expect.
		{"160", []mw{{8, 20, false, 155, 3}}, "3", "3", "1"},
		{"170", []mw{{8, 20, false, 155, 4}}, "4", "4", "1"},
	}
	store, err := counters.Open(counters.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{AggrServerMetrics: true, PerProcessMetrics: true}
	plain := pipeline(t, opts)
	opts.Counters = store
	mono := pipeline(t, opts)
	for _, st := range steps {
		files := snapshot(st.workers...)
		if len(files) == 0 {
			continue
		}
		gotPlain, _ := runAt(t, plain, st.name, files...)
		gotMono, problems := runAt(t, mono, st.name, files...)
		if len(problems) > 0 {
			t.Fatalf("snapshot %s: problems %v", st.name, problems)
		}
		for _, path := range counterPaths {
			if gotPlain[path] != st.plain {
				t.Errorf("snapshot %s without counters: %s = %q, want %s", st.name, path, gotPlain[path], st.plain)
			}
			if gotMono[path] != st.mono {
				t.Errorf("snapshot %s with counters: %s = %q, want %s", st.name, path, gotMono[path], st.mono)
			}
		}
		for _, path := range []string{"lb.haproxy.frontend.fe.scur", "lb.haproxy.backend.be.server.s1.scur", "lb.haproxy.daemon.CurrConns"} {
			if gotMono[path] != st.scur {
				t.Errorf("snapshot %s with counters: gauge %s = %q, want %s", st.name, path, gotMono[path], st.scur)
			}
		}
		// Every summed counter is offset; the other lines are the same.
		for path, v := range gotPlain {
			metric := path[strings.LastIndexByte(path, '.')+1:]
			switch {
			case strings.Contains(path, "WallClockTime"):
			case !strings.Contains(path, ".process.") && (counters.IsStatCounter(metric) || counters.IsInfoCounter(metric)):
				if gotMono[path] != st.mono {
					t.Errorf("snapshot %s with counters: %s = %q, want %s", st.name, path, gotMono[path], st.mono)
				}
			case gotMono[path] != v:
				t.Errorf("snapshot %s: %s = %q with counters, %q without", st.name, path, gotMono[path], v)
			}
		}
		if !slices.Equal(slices.Sorted(maps.Keys(gotPlain)), slices.Sorted(maps.Keys(gotMono))) {
			t.Errorf("snapshot %s: counters changed the set of paths", st.name)
		}
		// Per-process lines are each worker's own value.
		if v := gotMono["lb.haproxy.daemon.process.haproxy-master_sock_worker.CumConns"]; v != fmt.Sprint(st.workers[len(st.workers)-1].n) {
			t.Errorf("snapshot %s: the current worker's CumConns = %q, want its own %d", st.name, v, st.workers[len(st.workers)-1].n)
		}
	}
}

// TestCounterPartErrorFailsStage checks that a stage whose counter part
// cannot be had (here: a part of that name with other counters already in
// the store) fails for the snapshot instead of sending sums without their
// offsets, and that the other stages are sent.
func TestCounterPartErrorFailsStage(t *testing.T) {
	store, err := counters.Open(counters.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Part(partFrontend, []string{"dreq"}); err != nil {
		t.Fatal(err)
	}
	got, problems := runAt(t, pipeline(t, Options{Counters: store}), "100", snapshot(mw{7, 10, false, 50, 100})...)
	for path := range got {
		if strings.Contains(path, ".frontend.") || strings.HasSuffix(path, "MetricsFrontend") {
			t.Errorf("the frontend stage sent %s although its counters could not be advanced", path)
		}
	}
	if got["lb.haproxy.backend.be.stot"] != "100" {
		t.Errorf("backend stot = %q, want 100 (the other stages are sent)", got["lb.haproxy.backend.be.stot"])
	}
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), "stage frontends") || !strings.Contains(problems[0].Error(), "counters") {
		t.Errorf("problems = %v, want the frontend stage's counters error", problems)
	}
}

// TestMonotonicCountersWaitInOrder checks that a snapshot processed before
// an earlier one that is pending (handed out, not done) waits for it, so
// that the state advances in time order, and fails (nothing sent by the
// counting stages) if its context ends first.
func TestMonotonicCountersWaitInOrder(t *testing.T) {
	store, err := counters.Open(counters.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline(t, Options{Counters: store})
	store.Pending(100)
	store.Pending(110)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out110 bytes.Buffer
	go func() {
		_, err := p.ProcessFiles(ctx, "110", snapshot(mw{7, 11, false, 105, 5}), &out110)
		done <- err
	}()
	// 100: the old worker alone, then 110 may go on: the old worker left
	// since (its 100 carried).
	got, _ := runAt(t, p, "100", snapshot(mw{7, 10, false, 50, 100})...)
	if got["lb.haproxy.frontend.fe.stot"] != "100" {
		t.Fatalf("snapshot 100: stot = %q, want 100", got["lb.haproxy.frontend.fe.stot"])
	}
	if err := store.Done(100); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("snapshot 110: %v", err)
	}
	// Advanced after 100: the old worker's 100 is carried.
	if !strings.Contains(out110.String(), "lb.haproxy.frontend.fe.stot 105 110\n") {
		t.Errorf("snapshot 110 did not wait for 100: its lines are\n%s", out110.String())
	}
	if err := store.Done(110); err != nil {
		t.Fatal(err)
	}
	// 130 waits for a pending 120 that never comes: its context ends it.
	store.Pending(120)
	store.Pending(130)
	go func() {
		_, err := p.ProcessFiles(ctx, "130", snapshot(mw{7, 11, false, 105, 9}), &bytes.Buffer{})
		done <- err
	}()
	cancel()
	if err := <-done; err == nil {
		t.Error("snapshot 130 processed although the snapshot before it was pending and its context ended")
	}
	// Once 120 is given up, 130 goes on with 110's state: 100 + 9.
	if err := store.Done(120); err != nil {
		t.Fatal(err)
	}
	got, _ = runAt(t, p, "130", snapshot(mw{7, 11, false, 105, 9})...)
	if got["lb.haproxy.frontend.fe.stot"] != "109" {
		t.Errorf("snapshot 130: stot = %q, want 109", got["lb.haproxy.frontend.fe.stot"])
	}
}

// TestWorkerLabelsStableAcrossReload runs per-process metrics through a
// reload: the paths name the master and the role, never a PID, and are the
// same before and after the reload once the old worker has gone.
func TestWorkerLabelsStableAcrossReload(t *testing.T) {
	p := pipeline(t, Options{PerProcessMetrics: true, CalculatePercentages: true})
	paths := func(name string, ws ...mw) []string {
		got, _ := runAt(t, p, name, snapshot(ws...)...)
		var out []string
		for path := range got {
			if strings.Contains(path, ".process.") {
				out = append(out, path)
			}
			for _, pid := range []string{"1250", "1311", "1400"} {
				if strings.Contains(path, pid) {
					t.Errorf("snapshot %s: path %s holds a PID", name, path)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	before := paths("100", mw{812, 1250, false, 50, 1})
	during := paths("110", mw{812, 1250, true, 50, 1}, mw{812, 1311, false, 105, 1})
	after := paths("120", mw{812, 1311, false, 105, 1})
	again := paths("130", mw{812, 1311, true, 105, 1}, mw{812, 1400, false, 125, 1})
	if len(before) == 0 || !slices.Equal(before, after) {
		t.Errorf("per-process paths changed across the reload:\nbefore %q\nafter  %q", before, after)
	}
	if !slices.Equal(during, again) {
		t.Errorf("per-process paths during two reloads differ:\n%q\n%q", during, again)
	}
	// The label is one level of the path: the path writer escapes its dot.
	want := "lb.haproxy.daemon.process.haproxy-master_sock_leaving1.CpuUsagePct"
	if !slices.Contains(during, want) || !slices.Contains(during, strings.Replace(want, "leaving1", "worker", 1)) {
		t.Errorf("during the reload: %q lacks the worker's or the leaving worker's CpuUsagePct", during)
	}
	// Without Start_time_sec (HAProxy 2.6), the snapshot time minus
	// Uptime_sec orders the workers.
	files := []engine.File{
		info(spool.WorkerSocketName(master, 812, 1250, true), "Process_num", 1, "Idle_pct", 10, "Uptime_sec", 100),
		info(spool.WorkerSocketName(master, 812, 1311, true), "Process_num", 1, "Idle_pct", 20, "Uptime_sec", 50),
		info(spool.WorkerSocketName(master, 812, 1400, false), "Process_num", 1, "Idle_pct", 30, "Uptime_sec", 5),
	}
	got, _ := runAt(t, p, "1000", files...)
	for label, idle := range map[string]string{"leaving2": "10", "leaving1": "20", "worker": "30"} {
		if v := got["lb.haproxy.daemon.process.haproxy-master_sock_"+label+".Idle_pct"]; v != idle {
			t.Errorf("%s.Idle_pct = %q, want %s", label, v, idle)
		}
	}
}

// TestCountingFoldsDoNotMerge checks that with monotonic counters the
// stages that sum rows refuse to merge (their per-process samples would be
// lost), so that the pipeline reads such a snapshot on one goroutine, and
// that without them every Fold merges.
func TestCountingFoldsDoNotMerge(t *testing.T) {
	store, err := counters.Open(counters.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*counters.Store{nil, store} {
		for _, spec := range Stages(Options{Counters: s, AggrServerMetrics: true}) {
			m, ok := spec.Folder.NewFold().(engine.Merger)
			if !ok {
				t.Errorf("stage %s: its Fold is not an engine.Merger", spec.Name)
				continue
			}
			_, daemon := spec.Folder.(*Daemon)
			if want := s == nil || daemon; m.CanMerge() != want {
				t.Errorf("stage %s, monotonic counters %t: CanMerge = %t, want %t", spec.Name, s != nil, m.CanMerge(), want)
			}
		}
	}
}

// TestSizeHint: a new aggregator makes room for the smaller of the last
// two snapshots' objects (after the first, that one's), never more than
// maxSizeHint, in every per-slot slice, the counters' one too.
func TestSizeHint(t *testing.T) {
	store, err := counters.Open(counters.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ss := newSeries(ServerSummed, ServerAveraged, ServerTimes)
	cp := newCounterPart(store, partServer, ss, counters.IsStatCounter)
	var h sizeHint
	for _, c := range []struct{ sent, want int }{
		{-1, 0},               // none sent yet
		{1000, 1000},          // the first snapshot's
		{10, 10},              // the smaller of the two
		{500000, 10},          // one large snapshot is not copied
		{600000, maxSizeHint}, // two are, up to the bound
		{2000, 2000},
	} {
		if c.sent >= 0 {
			h.note(c.sent)
		}
		if got := h.objects(); got != c.want {
			t.Errorf("after %d objects sent: room for %d, want %d", c.sent, got, c.want)
		}
		a := newAggregator(ss, true, cp, &h)
		for what, n := range map[string]int{"rows": cap(a.rows), "names": cap(a.names), "keys": cap(a.keys), "sobj": cap(a.sobj), "sums[0]": cap(a.sums[0]), "hint": cap(a.hint)} {
			if n < c.want || n > c.want+c.want/8+64 {
				t.Errorf("after %d objects sent: %s has room for %d, want %d", c.sent, what, n, c.want)
			}
		}
		// Size counts the room made, the index map's too: keyed by pairs,
		// an aggregator also has keys (8 bytes a slot), a row hint (4) and
		// the map (16).
		if d, want := a.Size()-newAggregator(ss, false, cp, &h).Size(), int64(c.want)*28; d < want {
			t.Errorf("after %d objects sent: Size counts %d bytes for the index of pairs, want %d", c.sent, d, want)
		}
	}
}
