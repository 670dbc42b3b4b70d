package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/builtin"
	"github.com/haproxystats-go/haproxystats/engine"
)

// rowSums is a test Folder whose Folds merge: per object name, the rows
// and the sum of scur; it counts its Folds and the rows each Fold saw.
type rowSums struct {
	folds    atomic.Int32
	mu       sync.Mutex
	perFold  []int  // rows seen by each Finish'd or merged Fold, per snapshot
	panicOn  string // panic in Rows when a batch holds this process
	cancel   func() // called in Rows when a batch holds cancelOn
	cancelOn string
}

func (f *rowSums) Columns() []string { return []string{"scur"} }
func (f *rowSums) NewFold() engine.Fold {
	f.folds.Add(1)
	return &sumFold{f: f}
}

type sumFold struct {
	f     *rowSums
	rows  map[string]float64
	sums  map[string]float64
	count int
}

func (d *sumFold) Reset(string) {
	d.rows, d.sums, d.count = map[string]float64{}, map[string]float64{}, 0
}

func (d *sumFold) Rows(b *engine.StatTable) {
	scur := b.Column("scur")
	for r := range b.Rows() {
		proc := b.Procs[b.Proc[r]]
		if d.f.panicOn != "" && proc == d.f.panicOn {
			panic("rowSums: " + proc)
		}
		if d.f.cancel != nil && proc == d.f.cancelOn {
			d.f.cancel()
		}
		k := b.PxName[r] + "/" + b.SvName[r]
		d.rows[k]++
		if scur != nil {
			d.sums[k] += scur.Values[r]
		}
		d.count++
	}
}

func (d *sumFold) CanMerge() bool { return true }

func (d *sumFold) Merge(other engine.Fold) {
	o := other.(*sumFold)
	d.f.mu.Lock()
	d.f.perFold = append(d.f.perFold, d.count, o.count)
	d.f.mu.Unlock()
	for k, v := range o.rows {
		d.rows[k] += v
	}
	for k, v := range o.sums {
		d.sums[k] += v
	}
	d.count += o.count
}

func (d *sumFold) Finish(_ context.Context, _ *engine.Snapshot, emit engine.Emitter) error {
	for k, v := range d.rows {
		emit.Emit(engine.Metric{Scope: engine.ScopePath, Name: strings.ReplaceAll(k, "/", "_") + "_rows", Value: v})
		emit.Emit(engine.Metric{Scope: engine.ScopePath, Name: strings.ReplaceAll(k, "/", "_") + "_scur", Value: d.sums[k]})
	}
	return nil
}

// tableCheck is a Stage that reads the whole table: it reports, per
// process and object, the rows and their values, and fails the test when
// the table breaks its contract (equal names, equal numbers; a row's
// process in Procs).
func tableCheck(t *testing.T) engine.Stage {
	return engine.StageFunc(func(_ context.Context, snap *engine.Snapshot, emit engine.Emitter) error {
		st := &snap.Stats
		pxIDs, svIDs := map[string]uint32{}, map[string]uint32{}
		pxNames, svNames := map[uint32]string{}, map[uint32]string{}
		check := func(kind string, ids map[string]uint32, names map[uint32]string, name string, id uint32) {
			if n, ok := ids[name]; ok && n != id {
				t.Errorf("snapshot %s: %s %q numbered %d and %d", snap.Name, kind, name, n, id)
			}
			if n, ok := names[id]; ok && n != name {
				t.Errorf("snapshot %s: %s number %d is %q and %q", snap.Name, kind, id, n, name)
			}
			ids[name], names[id] = id, name
		}
		for r := range st.Rows() {
			check("proxy", pxIDs, pxNames, st.PxName[r], st.PxID[r])
			check("server", svIDs, svNames, st.SvName[r], st.SvID[r])
			// Proxy and server names share one numbering.
			check("name", pxIDs, pxNames, st.PxName[r], st.PxID[r])
			if int(st.Proc[r]) >= len(st.Procs) {
				t.Fatalf("row %d: process %d of %d", r, st.Proc[r], len(st.Procs))
			}
			for _, c := range st.Columns() {
				v := "null"
				if !c.Null(r) {
					v = fmt.Sprint(c.Values[r])
				}
				emit.Emit(engine.Metric{Scope: engine.ScopePath, Name: fmt.Sprintf("row%d_%s_%s_%s_%s_k%d", r, st.Procs[st.Proc[r]], st.PxName[r], st.SvName[r], c.Name, st.Kind[r]), Value: float64(len(v))})
			}
		}
		emit.Emit(engine.Metric{Scope: engine.ScopePath, Name: "columns_" + strings.Join(names(st.Columns()), "_"), Value: float64(len(st.Procs))})
		return nil
	})
}

func names(cols []*engine.Column) []string {
	var out []string
	for _, c := range cols {
		out = append(out, c.Name)
	}
	return out
}

// layouts are snapshots of five processes (three read by the worker, two
// by the helper) whose objects move between the halves from one snapshot
// to the next, with columns some files lack, a rejected file and problems
// in both halves.
func layouts() [][]engine.File {
	stat := func(name, header string, rows ...string) engine.File {
		return engine.File{Name: name + "_stat", Data: []byte(header + "\n" + strings.Join(rows, "\n") + "\n")}
	}
	info := func(name string) engine.File {
		return engine.File{Name: name + "_info", Data: []byte("Name: HAProxy\nProcess_num: 1\nIdle_pct: 90\n")}
	}
	const full = "# pxname,svname,qcur,scur,stot,bin,lbtot,hrsp_5xx,type,"
	const short = "# pxname,svname,scur,stot,lbtot,type,"
	server := func(px, sv string, n int) string {
		return fmt.Sprintf("%s,%s,%d,%d,%d,%d,%d,%d,2,", px, sv, n, n+1, 10*n, 100*n, n%3, n%2)
	}
	shortServer := func(px, sv string, n int) string { return fmt.Sprintf("%s,%s,%d,%d,%d,2,", px, sv, n, n+2, n%2) }
	backend := func(px string, n int) string {
		return fmt.Sprintf("%s,BACKEND,%d,%d,%d,%d,%d,%d,1,", px, n, n, n, n, n, n)
	}
	fe := "fe,FRONTEND,1,2,3,4,,5,0,"
	return [][]engine.File{
		{
			info("p1"), stat("p1", full, fe, server("be1", "s1", 1), server("be1", "s2", 2), backend("be1", 3)),
			info("p2"), stat("p2", full, fe, server("be1", "s1", 4), `be1,"s,2",5,5,5,5,5,5,2,`, `be1,"open,1,1,1,1,1,1,2,`, backend("be1", 6)),
			info("p3"), stat("p3", short, shortServer("be1", "s1", 7), shortServer("be.dot", "s1", 8)),
			info("p4"), stat("p4", full, fe, server("late", "x1", 9), server("be1", "s1", 10), backend("late", 11), `be1,"bad,1,2,2,2,2,2,2,`),
			info("p5"), {Name: "p5_stat", Data: []byte("not csv\n")},
			// A line too long for the reader: a problem of the worker's
			// half after the helper's files.
			{Name: "p6_info", Data: []byte("Name: HAProxy\nNode: " + strings.Repeat("n", 300<<10) + "\n")}, stat("p6", full, server("late", "x1", 12), server("be.dot", "s1", 13), backend("late", 14)),
		},
		{
			// "late" now in the worker's half, be1/s2 only in the helper's.
			info("p1"), stat("p1", full, fe, server("late", "x1", 1), backend("late", 2)),
			info("p2"), stat("p2", full, fe, server("be1", "s1", 3), backend("be1", 4)),
			info("p3"), stat("p3", full, server("late", "x1", 5)),
			info("p4"), stat("p4", short, shortServer("be1", "s2", 6), shortServer("late", "x1", 7)),
			info("p5"), stat("p5", full, server("be1", "s2", 8), `new,"n1,9,9,9,9,9,9,2,`, server("new", "n1", 9), backend("new", 10)),
		},
		{
			// Every object in every process.
			info("p1"), stat("p1", full, fe, server("late", "x1", 1), server("be1", "s2", 2), backend("be1", 3)),
			info("p2"), stat("p2", full, fe, server("late", "x1", 4), server("be1", "s2", 5), backend("be1", 6)),
			info("p3"), stat("p3", full, fe, server("late", "x1", 7), server("be1", "s2", 8), backend("be1", 9)),
			info("p4"), stat("p4", full, fe, server("late", "x1", 10), server("be1", "s2", 11), backend("be1", 12)),
			info("p5"), stat("p5", full, fe, server("late", "x1", 13), server("be1", "s2", 14), backend("be1", 15)),
		},
	}
}

func TestPipelineParallelEqualsSerial(t *testing.T) {
	// Read on two goroutines and merged, a snapshot gives what reading it
	// on one gives: the built-in stages' lines, a merging Folder's, a
	// Stage's whole table (names renumbered into one numbering, processes
	// after the worker's), and the problems in file order.
	build := func(sums *rowSums, serial bool) *engine.Pipeline {
		specs := append(builtin.Stages(builtin.Options{}),
			engine.StageSpec{Name: "Sums", Folder: sums},
			engine.StageSpec{Name: "Table", Stage: tableCheck(t)})
		p := newPipeline(t, engine.Config{}, specs...)
		if serial {
			engine.SetSerial(p)
		}
		return p
	}
	var serialSums, parallelSums rowSums
	serial, parallel := build(&serialSums, true), build(&parallelSums, false)
	for round := range 2 {
		for i, files := range layouts() {
			name := fmt.Sprint(1795507800 + 10*round + i)
			want, wantRes := run(t, serial, name, files)
			got, gotRes := run(t, parallel, name, files)
			if !slices.Equal(got, want) {
				t.Errorf("snapshot %d, round %d: lines differ\n%s", i, round, diff(want, got))
			}
			if !slices.Equal(problems(gotRes), problems(wantRes)) {
				t.Errorf("snapshot %d: problems\n%q\nwant\n%q", i, problems(gotRes), problems(wantRes))
			}
			if len(problems(wantRes)) == 0 && i < 2 {
				t.Errorf("snapshot %d has no problem: the layout does not test their order", i)
			}
		}
	}
	if n := serialSums.folds.Load(); n != 1 {
		t.Errorf("the serial pipeline made %d Folds", n)
	}
	if n := parallelSums.folds.Load(); n != 2 {
		t.Errorf("the parallel pipeline made %d Folds, want 2 (its worker's and its helper's)", n)
	}
	// Each Fold read its half: the helper's two last `*_stat` files.
	if len(parallelSums.perFold) != 12 || parallelSums.perFold[0] == 0 || parallelSums.perFold[1] == 0 {
		t.Errorf("rows per Fold, merged: %v", parallelSums.perFold)
	}
}

func run(t *testing.T, p *engine.Pipeline, name string, files []engine.File) ([]string, *engine.Result) {
	t.Helper()
	out := &recorder{t: t}
	res, err := p.ProcessFiles(context.Background(), name, files, out)
	if err != nil {
		t.Fatal(err)
	}
	return out.lines(res), res
}

func problems(res *engine.Result) []string {
	var out []string
	for _, p := range res.Problems {
		out = append(out, p.Error())
	}
	return out
}

func diff(want, got []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	return b.String()
}

func TestPipelineNotMergerReadsSerially(t *testing.T) {
	// One Folder that cannot merge: one goroutine, one Fold, every row.
	f := &folder{columns: []string{"scur"}}
	var sums rowSums
	p := newPipeline(t, engine.Config{},
		engine.StageSpec{Name: "Sums", Folder: &sums},
		engine.StageSpec{Name: "Plain", Folder: f})
	files := []engine.File{statRows("a", 10), statRows("b", 20), statRows("c", 30)}
	if _, err := p.ProcessFiles(context.Background(), "100", files, &recorder{t: t}); err != nil {
		t.Fatal(err)
	}
	if n := sums.folds.Load(); n != 1 {
		t.Errorf("%d Folds of the merging Folder", n)
	}
	total := 0
	for _, n := range f.batches {
		total += n
	}
	if total != 3*2+60 {
		t.Errorf("the plain Folder saw %d rows, want %d", total, 66)
	}
}

// serialAndParallel returns two pipelines of the same stages, one that
// reads every snapshot on one goroutine.
func serialAndParallel(t *testing.T, specs func() []engine.StageSpec) (serial, parallel *engine.Pipeline) {
	serial = newPipeline(t, engine.Config{}, specs()...)
	engine.SetSerial(serial)
	return serial, newPipeline(t, engine.Config{}, specs()...)
}

func TestPipelineParallelEdgeCases(t *testing.T) {
	// Snapshots whose halves differ the way real ones can (processes of
	// two HAProxy versions during an upgrade, a process without rows):
	// the same lines, table and problems either way.
	stat := func(name, header string, rows ...string) engine.File {
		return engine.File{Name: name + "_stat", Data: []byte(header + "\n" + strings.Join(rows, "\n") + "\n")}
	}
	var many []engine.File
	for p := range 6 {
		var rows []string
		for i := range 3 + 5*p {
			rows = append(rows, fmt.Sprintf(`be,"open%d,1,2,`, i), "be,s1,1,2,")
		}
		many = append(many, engine.File{Name: fmt.Sprintf("p%d_info", p), Data: []byte("Name: x\nNbproc: 1\nUptime_sec: 1\n")},
			stat(fmt.Sprintf("p%d", p), "# pxname,svname,scur,type,", rows...))
	}
	for _, c := range []struct {
		name  string
		files []engine.File
	}{
		{"a column named only by the worker's half", []engine.File{
			// Serial reading gives the later files' rows rtime (null),
			// so the servers' rtime is sent.
			stat("a", "# pxname,svname,scur,rtime,type,", "fe,FRONTEND,1,5,0,"),
			stat("b", "# pxname,svname,scur,type,", "fe,FRONTEND,1,0,"),
			stat("c", "# pxname,svname,scur,lbtot,type,", "be,s1,3,1,2,"),
			stat("d", "# pxname,svname,scur,lbtot,type,", "be,s1,4,1,2,"),
		}},
		{"a file of the worker's half without rows", []engine.File{
			stat("a", "# pxname,svname,scur,type,", "be,s1,1,2,"),
			stat("b", "# pxname,svname,scur,qcur,type,"),
			stat("c", "# pxname,svname,scur,type,", "be,s1,3,2,"),
			stat("d", "# pxname,svname,scur,type,", "be,s1,4,2,"),
		}},
		{"more problems than listed, name warnings past their bound", many},
	} {
		serial, parallel := serialAndParallel(t, func() []engine.StageSpec {
			return append(builtin.Stages(builtin.Options{AggrServerMetrics: true}), engine.StageSpec{Name: "Table", Stage: tableCheck(t)})
		})
		want, wantRes := run(t, serial, "100", c.files)
		got, gotRes := run(t, parallel, "100", c.files)
		if !slices.Equal(got, want) {
			t.Errorf("%s: lines differ\n%s", c.name, diff(want, got))
		}
		if !slices.Equal(problems(gotRes), problems(wantRes)) {
			t.Errorf("%s: problems\n%q\nwant\n%q", c.name, problems(gotRes), problems(wantRes))
		}
	}
}

// randomSnapshot returns 2 to 7 processes with rows drawn from a few
// objects, some names needing care, under three headers (different
// columns, in another order), some files empty, large or not CSV.
func randomSnapshot(rng *rand.Rand) []engine.File {
	headers := []string{
		"# pxname,svname,qcur,scur,stot,bin,lbtot,hrsp_5xx,weight,rtime,type,",
		"# pxname,svname,scur,stot,lbtot,type,",
		"# svname,pxname,scur,stot,lbtot,rtime,type,",
	}
	bes := []string{"be0", "be.1", "be_1", "be2", "b,e3", "be4"}
	svs := []string{"s0", "s1", "s.2", "s_2", "s3"}
	fes := []string{"fe0", "fe.1", "fe_1"}
	var files []engine.File
	for p := range 2 + rng.IntN(6) {
		header := headers[rng.IntN(len(headers))]
		cols := strings.Split(strings.TrimSuffix(strings.TrimPrefix(header, "# "), ","), ",")
		var rows []string
		row := func(px, sv, typ string) {
			f := make([]string, len(cols))
			for i, c := range cols {
				switch c {
				case "pxname":
					f[i] = px
				case "svname":
					f[i] = sv
				case "type":
					f[i] = typ
				default:
					if rng.IntN(8) > 0 {
						f[i] = fmt.Sprint(rng.IntN(100))
					}
				}
				if strings.Contains(f[i], ",") {
					f[i] = `"` + f[i] + `"`
				}
			}
			rows = append(rows, strings.Join(f, ",")+",")
		}
		n := rng.IntN(12)
		switch rng.IntN(6) {
		case 0:
			n = 0
		case 1:
			n = 300 + rng.IntN(400) // several batches
		}
		for range n {
			switch rng.IntN(4) {
			case 0:
				row(fes[rng.IntN(len(fes))], "FRONTEND", "0")
			case 1:
				row(bes[rng.IntN(len(bes))], "BACKEND", "1")
			default:
				row(bes[rng.IntN(len(bes))], svs[rng.IntN(len(svs))], "2")
			}
		}
		name := fmt.Sprintf("p%02d", p)
		data := header + "\n" + strings.Join(rows, "\n") + "\n"
		if rng.IntN(15) == 0 {
			data = "junk\n"
		}
		files = append(files, engine.File{Name: name + "_info", Data: []byte("Name: HAProxy\nProcess_num: 1\nIdle_pct: 90\n")},
			engine.File{Name: name + "_stat", Data: []byte(data)})
	}
	return files
}

func TestPipelineParallelRandom(t *testing.T) {
	// Random snapshots, read on one goroutine by a new pipeline each time
	// and on two by one pipeline (sometimes next to another snapshot, so
	// that its work values swap roles): the same lines, table and
	// problems. Name warnings are left out: a pipeline reports a name
	// once, so the serial pipeline (a new one per snapshot) reports it
	// again and the parallel one does not.
	specs := func(table bool) func() []engine.StageSpec {
		return func() []engine.StageSpec {
			s := builtin.Stages(builtin.Options{AggrServerMetrics: true, ExcludeBackends: builtin.StaticExclusions("be4")})
			if table {
				s = append(s, engine.StageSpec{Name: "Table", Stage: tableCheck(t)})
			}
			return s
		}
	}
	noWarnings := func(res *engine.Result) []string {
		return slices.DeleteFunc(problems(res), func(p string) bool { return strings.Contains(p, "holds bytes") })
	}
	noCounts := func(ls []string) []string {
		return slices.DeleteFunc(ls, func(l string) bool { return strings.Contains(l, "Problem") })
	}
	for _, table := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(1, 2))
		_, parallel := serialAndParallel(t, specs(table))
		for i := range 300 {
			files := randomSnapshot(rng)
			name := fmt.Sprint(1000 + i)
			serial, _ := serialAndParallel(t, specs(table))
			want, wantRes := run(t, serial, name, files)
			var got []string
			var gotRes *engine.Result
			if rng.IntN(3) == 0 {
				other := randomSnapshot(rand.New(rand.NewPCG(uint64(i), 3)))
				done := make(chan struct{})
				go func() {
					defer close(done)
					parallel.ProcessFiles(context.Background(), "999", other, &recorder{t: t})
				}()
				got, gotRes = run(t, parallel, name, files)
				<-done
			} else {
				got, gotRes = run(t, parallel, name, files)
			}
			if !slices.Equal(noWarnings(gotRes), noWarnings(wantRes)) {
				t.Errorf("table %t, snapshot %d: problems\n%q\nwant\n%q", table, i, noWarnings(gotRes), noWarnings(wantRes))
			}
			if !slices.Equal(noCounts(got), noCounts(want)) {
				t.Errorf("table %t, snapshot %d: lines differ\n%s", table, i, diff(want, got))
			}
		}
	}
}

func TestPipelineParallelPanicAndCancel(t *testing.T) {
	// A Fold panics on either goroutine: a *PanicError naming its stage.
	// On the worker's, while the helper still reads its (long) half, the
	// helper's work value is released only once its goroutine returned
	// (-race sees two goroutines on one work value otherwise). The next
	// snapshots are read normally. A cancel seen on the helper's goroutine
	// ends the snapshot with the context's error.
	small := []engine.File{statRows("a", 10), statRows("b", 20), statRows("c", 30), statRows("d", 40)}
	long := []engine.File{statRows("a", 10), statRows("b", 10), statRows("c", 200000), statRows("d", 200000)}
	for _, c := range []struct {
		side, panicOn string
		files         []engine.File
		last          string
	}{
		{"helper", "d", small, "be_s39_scur 39"},
		{"worker", "a", long, "be_s199999_rows 2"},
	} {
		sums := &rowSums{panicOn: c.panicOn}
		p := newPipeline(t, engine.Config{}, engine.StageSpec{Name: "Sums", Folder: sums})
		_, err := p.ProcessFiles(context.Background(), "100", c.files, &recorder{t: t})
		var perr *engine.PanicError
		if !errors.As(err, &perr) || perr.Stage != "Sums" || perr.Value != "rowSums: "+c.panicOn {
			t.Fatalf("panic on the %s's goroutine: error = %v, want the PanicError of Sums", c.side, err)
		}
		sums.panicOn = ""
		if c.side == "helper" {
			ctx, cancel := context.WithCancel(context.Background())
			sums.cancel, sums.cancelOn = cancel, "d"
			if _, err := p.ProcessFiles(ctx, "101", c.files, &recorder{t: t}); !errors.Is(err, context.Canceled) {
				t.Fatalf("error = %v, want context.Canceled", err)
			}
			sums.cancel = nil
		}
		for i := range 2 {
			name := fmt.Sprint(102 + i)
			out := &recorder{t: t}
			res, err := p.ProcessFiles(context.Background(), name, c.files, out)
			if err != nil {
				t.Fatal(err)
			}
			if want := "p." + c.last + " " + name; !slices.Contains(out.lines(res), want) {
				t.Errorf("after the panic on the %s's goroutine, the lines lack %q", c.side, want)
			}
		}
		if sums.folds.Load() < 3 {
			t.Errorf("%d Folds: the broken work values were not replaced", sums.folds.Load())
		}
	}
}

func TestPipelineBacklogReadsSerially(t *testing.T) {
	// While Config.Backlog reports snapshots waiting, a snapshot is read
	// on one goroutine: one Fold; once it reports none, on two.
	waiting := true
	var sums rowSums
	p := newPipeline(t, engine.Config{Backlog: func() bool { return waiting }}, engine.StageSpec{Name: "Sums", Folder: &sums})
	files := []engine.File{statRows("a", 10), statRows("b", 20), statRows("c", 30)}
	if _, err := p.ProcessFiles(context.Background(), "100", files, &recorder{t: t}); err != nil {
		t.Fatal(err)
	}
	if n := sums.folds.Load(); n != 1 {
		t.Errorf("%d Folds with a backlog, want 1", n)
	}
	waiting = false
	if _, err := p.ProcessFiles(context.Background(), "101", files, &recorder{t: t}); err != nil {
		t.Fatal(err)
	}
	if n := sums.folds.Load(); n != 2 {
		t.Errorf("%d Folds without a backlog, want 2", n)
	}
}

func TestPipelineParallelNameWarnedOnce(t *testing.T) {
	// A name needing care in both halves is reported once, as one
	// goroutine reports it.
	stat := func(name string, rows ...string) engine.File {
		return engine.File{Name: name + "_stat", Data: []byte("# pxname,svname,scur,type,\n" + strings.Join(rows, "\n") + "\n")}
	}
	files := []engine.File{stat("a", "be,s 1,1,2,"), stat("b", "be,s2,1,2,"), stat("c", "be,s 1,1,2,"), stat("d", "be,s2,1,2,")}
	serial, parallel := serialAndParallel(t, func() []engine.StageSpec {
		return []engine.StageSpec{{Name: "Sums", Folder: &rowSums{}}}
	})
	_, wantRes := run(t, serial, "100", files)
	_, gotRes := run(t, parallel, "100", files)
	if !slices.Equal(problems(gotRes), problems(wantRes)) || len(problems(wantRes)) != 1 {
		t.Errorf("problems\n%q\nwant one\n%q", problems(gotRes), problems(wantRes))
	}
}

func TestPipelineNameWarnedOnceAcrossWorkValues(t *testing.T) {
	// A name needing care is reported once by the pipeline, whichever work
	// value meets it first: not again when the files move between the
	// worker's half and the helper's, or the two work values swap roles,
	// nor for a second name of the same path form; with a table (the
	// helper's names interned through appendPart) and without.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2)) // the helper needs two
	stat := func(name string, rows ...string) engine.File {
		return engine.File{Name: name + "_stat", Data: []byte("# pxname,svname,scur,type,\n" + strings.Join(rows, "\n") + "\n")}
	}
	plain := []string{"be,ok,1,2,"}
	careful := []string{"be,s 1,1,2,", "be,s+1,1,2,", "b e,ok,1,2,"}
	for _, table := range []bool{false, true} {
		_, p := serialAndParallel(t, func() []engine.StageSpec {
			s := []engine.StageSpec{{Name: "Sums", Folder: &rowSums{}}}
			if table {
				s = append(s, engine.StageSpec{Name: "Table", Stage: tableCheck(t)})
			}
			return s
		})
		var warned []string
		for i := range 6 {
			files := []engine.File{stat("a", plain...), stat("b", careful...)}
			if i%2 == 1 {
				files = []engine.File{stat("a", careful...), stat("b", plain...)}
			}
			_, res := run(t, p, strconv.Itoa(100+i), files)
			warned = append(warned, problems(res)...)
		}
		if len(warned) != 3 {
			t.Errorf("table %v: %d name warnings over 6 snapshots, want 3 (one per name):\n%s", table, len(warned), strings.Join(warned, "\n"))
		}
	}
}

// failingFolds is a merging Folder whose NewFold panics at its call
// number newPanics, and whose Folds panic in Reset at the Reset number
// resetPanics (0: never).
type failingFolds struct {
	rowSums
	news, resets           atomic.Int32
	newPanics, resetPanics int32
}

func (f *failingFolds) NewFold() engine.Fold {
	if f.news.Add(1) == f.newPanics {
		panic("NewFold")
	}
	return &failingFold{sumFold: f.rowSums.NewFold().(*sumFold), f: f}
}

type failingFold struct {
	*sumFold
	f *failingFolds
}

func (d *failingFold) Reset(name string) {
	if d.f.resets.Add(1) == d.f.resetPanics {
		panic("Reset")
	}
	d.sumFold.Reset(name)
}

func (d *failingFold) Merge(o engine.Fold) { d.sumFold.Merge(o.(*failingFold).sumFold) }

func TestPipelineParallelHelperPanics(t *testing.T) {
	// The helper's NewFold panics: the budget takes back what it counted
	// for it, so the next snapshot proceeds (with a budget smaller than
	// a snapshot, only a call alone does). The helper's Reset panics: it
	// is dropped with the worker's, not kept for the next snapshot.
	files := []engine.File{statRows("a", 10), statRows("b", 10), statRows("c", 10), statRows("d", 10)}
	f := &failingFolds{newPanics: 2}
	p := newPipeline(t, engine.Config{MemoryBudget: 1}, engine.StageSpec{Name: "Sums", Folder: f})
	var perr *engine.PanicError
	if _, err := p.ProcessFiles(context.Background(), "100", files, &recorder{t: t}); !errors.As(err, &perr) {
		t.Fatalf("NewFold's panic: error = %v, want a PanicError", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.ProcessFiles(ctx, "101", files, &recorder{t: t}); err != nil {
		t.Fatalf("the snapshot after: %v (the budget still counts the helper)", err)
	}

	f = &failingFolds{resetPanics: 4} // the helper's Reset of the second snapshot
	p = newPipeline(t, engine.Config{}, engine.StageSpec{Name: "Sums", Folder: f})
	for i, want := range []bool{false, true, false} {
		_, err := p.ProcessFiles(context.Background(), fmt.Sprint(100+i), files, &recorder{t: t})
		if got := errors.As(err, &perr); got != want {
			t.Fatalf("snapshot %d: error = %v", i, err)
		}
	}
	if n := f.news.Load(); n != 4 {
		t.Errorf("%d Folds made, want 4: the helper whose Reset panicked was kept", n)
	}
}

func TestNameEpochUnique(t *testing.T) {
	// No two numberings share a NameEpoch: of two parsers, of two
	// snapshots of one parser (each a new working memory), of a pipeline's
	// two work values. A stage shared by workers keys what it derives from
	// the numbers on it.
	files := []engine.File{statRows("a", 3), statRows("b", 3)}
	seen := map[uint64]bool{}
	add := func(e uint64, what string) {
		if e == 0 || seen[e] {
			t.Errorf("%s: NameEpoch %d is 0 or seen before", what, e)
		}
		seen[e] = true
	}
	p1, p2 := engine.NewParser(nil), engine.NewParser(nil)
	add(p1.Parse("100", files).Stats.NameEpoch, "first parser")
	add(p2.Parse("100", files).Stats.NameEpoch, "second parser")
	add(p1.Parse("101", files).Stats.NameEpoch, "first parser again")
	var epochs []uint64
	var mu sync.Mutex
	stage := engine.StageFunc(func(_ context.Context, snap *engine.Snapshot, _ engine.Emitter) error {
		mu.Lock()
		defer mu.Unlock()
		epochs = append(epochs, snap.Stats.NameEpoch)
		return nil
	})
	p := newPipeline(t, engine.Config{}, engine.StageSpec{Name: "Epochs", Stage: stage})
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 { // two at once: two work values
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			p.ProcessFiles(context.Background(), fmt.Sprint(200+i), files, &recorder{t: t})
		}()
	}
	close(start)
	wg.Wait()
	if len(epochs) != 2 {
		t.Fatalf("%d snapshots seen", len(epochs))
	}
	for _, e := range epochs {
		if e == 0 || seen[e] {
			t.Errorf("pipeline: NameEpoch %d is 0 or a parser's", e)
		}
	}
}
