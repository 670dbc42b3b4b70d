package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/engine"
)

// counting emits n metrics named <name>0 .. <name>(n-1) under the path
// scope, n read from *size at each call.
func counting(name string, size *int) engine.Stage {
	return engine.StageFunc(func(_ context.Context, _ *engine.Snapshot, emit engine.Emitter) error {
		for i := range *size {
			emit.Emit(engine.Metric{Scope: engine.ScopePath, Name: fmt.Sprintf("%s%d", name, i), Value: float64(i)})
		}
		return nil
	})
}

var oneStat = []engine.File{{Name: "a_stat", Data: []byte("# pxname,svname,scur,type,\nfe,FRONTEND,1,0,\n")}}

// recorder is an output that checks every Write holds whole lines.
type recorder struct {
	t      *testing.T
	buf    bytes.Buffer
	writes int
	max    int
}

func (r *recorder) Write(p []byte) (int, error) {
	if len(p) == 0 || p[len(p)-1] != '\n' {
		r.t.Errorf("Write of %d bytes does not end with a newline", len(p))
	}
	r.writes++
	r.max = max(r.max, len(p))
	return r.buf.Write(p)
}

// lines returns the lines written, with the self-metrics' times (which
// vary) replaced by "*", sorted.
func (r *recorder) lines(res *engine.Result) []string {
	r.t.Helper()
	text := r.buf.String()
	ls := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if text == "" {
		ls = nil
	}
	if res != nil && (len(ls) != res.Lines || len(text) != res.Bytes) {
		r.t.Fatalf("Result says %d lines, %d bytes; the output has %d lines, %d bytes", res.Lines, res.Bytes, len(ls), len(text))
	}
	for i, l := range ls {
		if f := strings.Fields(l); len(f) == 3 && strings.Contains(f[0], "WallClockTime") {
			ls[i] = f[0] + " * " + f[2]
		}
	}
	slices.Sort(ls)
	return ls
}

func newPipeline(t *testing.T, cfg engine.Config, specs ...engine.StageSpec) *engine.Pipeline {
	t.Helper()
	if cfg.Paths == nil {
		cfg.Paths = &engine.Paths{Prefix: "p"}
	}
	p, err := engine.NewPipeline(cfg, specs...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPipelineOutput(t *testing.T) {
	// Every stage's lines and self-metrics, then the snapshot's: each once,
	// in chunks of whole lines, whatever the sizes.
	sizes := map[string]*int{"A": new(int), "B": new(int), "C": new(int)}
	var specs []engine.StageSpec
	for _, name := range []string{"A", "B", "C"} {
		specs = append(specs, engine.StageSpec{Name: name, Stage: counting(name, sizes[name])})
	}
	p := newPipeline(t, engine.Config{}, specs...)
	for round, r := range []struct{ a, b, c int }{{3, 1, 2}, {1, 5000, 2}, {1, 2, 9000}, {20000, 2, 3}, {0, 0, 0}} {
		*sizes["A"], *sizes["B"], *sizes["C"] = r.a, r.b, r.c
		out := &recorder{t: t}
		res, err := p.ProcessFiles(context.Background(), "100", oneStat, out)
		if err != nil {
			t.Fatal(err)
		}
		got := out.lines(res)
		var want []string
		for _, name := range []string{"A", "B", "C"} {
			for i := range *sizes[name] {
				want = append(want, fmt.Sprintf("p.%s%d %d 100", name, i, i))
			}
			want = append(want,
				fmt.Sprintf("p.haproxystats.Stage%sWallClockTime * 100", name),
				fmt.Sprintf("p.haproxystats.Stage%sMetrics %d 100", name, *sizes[name]),
				fmt.Sprintf("p.haproxystats.Stage%sErrors 0 100", name))
		}
		want = append(want, "p.haproxystats.WallClockTimeAllStats * 100", "p.haproxystats.TotalWallClockTime * 100")
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: got %d lines, want %d:\ngot  %.400q\nwant %.400q", round, len(got), len(want), got, want)
		}
		if out.max > 128<<10 {
			t.Errorf("round %d: a Write of %d bytes; the chunks are about 64 KiB", round, out.max)
		}
	}
}

func TestPipelineStageFailures(t *testing.T) {
	size := 3
	panics := engine.StageFunc(func(context.Context, *engine.Snapshot, engine.Emitter) error { panic("boom") })
	fails := engine.StageFunc(func(_ context.Context, _ *engine.Snapshot, emit engine.Emitter) error {
		emit.Emit(engine.Metric{Scope: engine.ScopePath, Name: "partial", Value: 1})
		return errors.New("bad input")
	})
	skips := engine.StageFunc(func(context.Context, *engine.Snapshot, engine.Emitter) error { return engine.ErrSkip })
	pipeline := func(extra ...engine.StageSpec) *engine.Pipeline {
		return newPipeline(t, engine.Config{}, append([]engine.StageSpec{{Name: "Ok", Stage: counting("ok", &size)}}, extra...)...)
	}

	// A failing stage loses its own lines only, and is counted.
	out := &recorder{t: t}
	res, err := pipeline(engine.StageSpec{Name: "Bad", Stage: fails}, engine.StageSpec{Name: "Skip", Stage: skips}).
		ProcessFiles(context.Background(), "100", oneStat, out)
	if err != nil {
		t.Fatal(err)
	}
	got := out.lines(res)
	for _, want := range []string{"p.ok2 2 100", "p.haproxystats.StageBadErrors 1 100", "p.haproxystats.StageBadMetrics 0 100", "p.haproxystats.StageOkErrors 0 100"} {
		if !slices.Contains(got, want) {
			t.Errorf("output lacks %q:\n%q", want, got)
		}
	}
	for _, l := range got {
		if strings.Contains(l, "partial") || strings.Contains(l, "StageSkip") {
			t.Errorf("output has %q: a failed stage's lines and a skipped stage's self-metrics must not be sent", l)
		}
	}
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Error(), "stage Bad: bad input") {
		t.Errorf("Problems = %v, want the Bad stage's error", res.Problems)
	}

	// A panicking stage fails the snapshot with a PanicError naming it.
	_, err = pipeline(engine.StageSpec{Name: "Panics", Stage: panics}).ProcessFiles(context.Background(), "100", oneStat, &recorder{t: t})
	var perr *engine.PanicError
	if !errors.As(err, &perr) || perr.Stage != "Panics" || perr.Value != "boom" || len(perr.Stack) == 0 {
		t.Fatalf("error = %v, want a PanicError of stage Panics with its stack", err)
	}
}

// folder is a test Folder: it counts the rows of each kind it is given,
// records the batches' sizes, and emits the counts; it panics in Rows
// when *panicRows is set.
type folder struct {
	columns   []string
	kinds     map[uint8][]string // KindColumns, when not nil
	panicRows *bool
	mu        sync.Mutex
	batches   []int
	seen      map[string][]float64 // column -> every value it saw, all snapshots
}

func (f *folder) Columns() []string { return f.columns }
func (f *folder) NewFold() engine.Fold {
	return &fold{f: f}
}

type kindFolder struct{ *folder }

func (f kindFolder) KindColumns(kind uint8) []string { return f.kinds[kind] }

type fold struct {
	f      *folder
	name   string
	counts [4]int
}

func (d *fold) Reset(name string) { d.name, d.counts = name, [4]int{} }
func (d *fold) Rows(b *engine.StatTable) {
	if d.f.panicRows != nil && *d.f.panicRows {
		panic("fold panic")
	}
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	d.f.batches = append(d.f.batches, b.Rows())
	for r := range b.Rows() {
		d.counts[b.Kind[r]]++
		for _, c := range b.Columns() {
			if d.f.seen == nil {
				d.f.seen = map[string][]float64{}
			}
			d.f.seen[fmt.Sprintf("%s/%d/%t", c.Name, b.Kind[r], c.Null(r))] = append(d.f.seen[fmt.Sprintf("%s/%d/%t", c.Name, b.Kind[r], c.Null(r))], c.Values[r])
		}
	}
}
func (d *fold) Finish(_ context.Context, _ *engine.Snapshot, emit engine.Emitter) error {
	for k, n := range d.counts {
		emit.Emit(engine.Metric{Scope: engine.ScopePath, Name: fmt.Sprintf("kind%d", k), Value: float64(n)})
	}
	return nil
}

// statRows returns a `show stat` file of n server rows and a FRONTEND and
// a BACKEND row.
func statRows(name string, n int) engine.File {
	var b strings.Builder
	b.WriteString("# pxname,svname,scur,stot,type,\nfe,FRONTEND,1,2,0,\n")
	for i := range n {
		fmt.Fprintf(&b, "be,s%d,%d,%d,2,\n", i, i, 2*i)
	}
	b.WriteString("be,BACKEND,7,8,1,\n")
	return engine.File{Name: name + "_stat", Data: []byte(b.String())}
}

func TestPipelineFolder(t *testing.T) {
	// A Folder sees every row, in batches, file after file, and its Fold
	// starts again for every snapshot.
	f := &folder{columns: []string{"scur"}}
	p := newPipeline(t, engine.Config{}, engine.StageSpec{Name: "F", Folder: f})
	files := []engine.File{statRows("a", 1000), statRows("b", 10)}
	for round := range 2 {
		out := &recorder{t: t}
		res, err := p.ProcessFiles(context.Background(), "100", files, out)
		if err != nil {
			t.Fatal(err)
		}
		got := out.lines(res)
		for _, want := range []string{"p.kind1 2 100", "p.kind2 2 100", "p.kind3 1010 100"} {
			if !slices.Contains(got, want) {
				t.Errorf("round %d: output lacks %q: %q", round, want, got)
			}
		}
	}
	total := 0
	for _, n := range f.batches {
		total += n
		if n > 1024 {
			t.Errorf("a batch of %d rows", n)
		}
	}
	if total != 2*1014 || len(f.batches) < 4 {
		t.Errorf("batches %v: %d rows, want 2 x 1014 in several batches", f.batches, total)
	}
	if _, ok := f.seen["stot/3/false"]; ok {
		t.Error("the folder was given a column it did not ask for")
	}
}

func TestPipelineKindColumns(t *testing.T) {
	// With KindColumner, a row is read only for the columns its kind
	// needs: the others are null (0) in that row.
	f := kindFolder{&folder{columns: []string{"scur", "stot"}, kinds: map[uint8][]string{
		engine.KindFrontend: {"scur"}, engine.KindServer: {"stot"},
	}}}
	p := newPipeline(t, engine.Config{}, engine.StageSpec{Name: "F", Folder: f})
	if _, err := p.ProcessFiles(context.Background(), "100", []engine.File{statRows("a", 3)}, &recorder{t: t}); err != nil {
		t.Fatal(err)
	}
	for key, wantValues := range map[string][]float64{
		"scur/1/false": {1}, "stot/1/true": {0}, // frontend: scur only
		"scur/3/true": {0, 0, 0}, "stot/3/false": {0, 2, 4}, // servers: stot only
		"scur/2/true": {0}, "stot/2/true": {0}, // backend: nothing
	} {
		if got := f.seen[key]; !slices.Equal(got, wantValues) {
			t.Errorf("%s: %v, want %v (seen %v)", key, got, wantValues, f.seen)
		}
	}
}

func TestPipelineKindColumnsQuotes(t *testing.T) {
	// A double quote in the fields a row's kind reads sends the row to
	// the general path, which reads every wanted column; one past them
	// (HAProxy quotes check_desc) does not change how the row is read.
	f := kindFolder{&folder{columns: []string{"scur", "stot"}, kinds: map[uint8][]string{
		engine.KindFrontend: {"scur"}, engine.KindServer: {"stot"},
	}}}
	p := newPipeline(t, engine.Config{}, engine.StageSpec{Name: "F", Folder: f})
	stat := "# pxname,svname,scur,stot,type,check_desc\n" +
		"fe,FRONTEND,1,2,0,\n" +
		"be,s1,3,4,2,\"Layer7 wrong status, code: 503\"\n" + // past the server's fields
		"be,s2,5,6,2,\"open\n" + // an unclosed quote past them
		"\"b,e\",s3,7,8,2,\n" + // in pxname: every wanted column
		"be,BACKEND,9,10,1,\"x\"\n"
	res, err := p.ProcessFiles(context.Background(), "100", []engine.File{{Name: "a_stat", Data: []byte(stat)}}, &recorder{t: t})
	if err != nil {
		t.Fatal(err)
	}
	for key, wantValues := range map[string][]float64{
		"scur/1/false": {1}, "stot/1/true": {0},
		"scur/3/true": {0, 0}, "stot/3/false": {4, 6, 8}, "scur/3/false": {7},
		"scur/2/true": {0}, "stot/2/true": {0},
	} {
		if got := f.seen[key]; !slices.Equal(got, wantValues) {
			t.Errorf("%s: %v, want %v (seen %v)", key, got, wantValues, f.seen)
		}
	}
	// The unclosed quote is past the fields read: no problem but the name.
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Error(), `name "b,e"`) {
		t.Errorf("problems %v, want only the name warning of \"b,e\"", res.Problems)
	}
}

func TestPipelineFoldPanic(t *testing.T) {
	// A Fold that panics while the rows are read fails the snapshot with a
	// PanicError naming its stage; the pipeline goes on with the next.
	panicRows := true
	f := &folder{columns: []string{"scur"}, panicRows: &panicRows}
	p := newPipeline(t, engine.Config{}, engine.StageSpec{Name: "F", Folder: f})
	_, err := p.ProcessFiles(context.Background(), "100", oneStat, &recorder{t: t})
	var perr *engine.PanicError
	if !errors.As(err, &perr) || perr.Stage != "F" {
		t.Fatalf("error = %v, want a PanicError of stage F", err)
	}
	// From disk too, and the file the panic interrupted is closed.
	dir := filepath.Join(t.TempDir(), "102")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range oneStat {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip(err)
		}
		return len(ents)
	}
	before := fds()
	for range 20 {
		if _, err := p.ProcessDir(context.Background(), dir, &recorder{t: t}); !errors.As(err, &perr) {
			t.Fatalf("ProcessDir: error = %v, want a PanicError", err)
		}
	}
	if after := fds(); after > before+2 {
		t.Errorf("open descriptors %d before 20 panicking snapshots, %d after: the files are left open", before, after)
	}
	panicRows = false
	out := &recorder{t: t}
	res, err := p.ProcessFiles(context.Background(), "101", oneStat, out)
	if err != nil || !slices.Contains(out.lines(res), "p.kind1 1 101") {
		t.Fatalf("the next snapshot: %v, %q", err, out.buf.String())
	}
}

// failingWriter fails every Write after n.
type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, errors.New("relay gone")
	}
	w.n--
	return len(p), nil
}

func TestPipelineWriteError(t *testing.T) {
	// A Write error stops the snapshot and is returned as is.
	size := 100000
	p := newPipeline(t, engine.Config{}, engine.StageSpec{Name: "A", Stage: counting("a", &size)})
	_, err := p.ProcessFiles(context.Background(), "100", oneStat, &failingWriter{n: 2})
	if err == nil || err.Error() != "relay gone" {
		t.Fatalf("error = %v, want the writer's", err)
	}
}

func TestPipelineNames(t *testing.T) {
	// Whatever a stage names things, every line is `path value timestamp`:
	// bytes outside [A-Za-z0-9_:-] of an object, server or metric name
	// become '_' (a free path keeps its dots), and the snapshot name must
	// be a timestamp.
	hostile := engine.StageFunc(func(_ context.Context, _ *engine.Snapshot, emit engine.Emitter) error {
		for _, m := range []engine.Metric{
			{Scope: engine.ScopeFrontend, Object: "x\nforged_metric 666 1600000000\ny", Name: "scur", Value: 1},
			{Scope: engine.ScopeServer, Object: "b e", Server: "s;t=1", Name: "n\r\t\x00", Value: 2},
			{Scope: engine.ScopeAggrServer, Server: "s\u00a0\u2028\xff", Name: "m", Value: 3},
			{Scope: engine.ScopePath, Name: "a.b c.d", Value: 4},
		} {
			emit.Emit(m)
		}
		return nil
	})
	p := newPipeline(t, engine.Config{}, engine.StageSpec{Name: "H", Stage: hostile})
	out := &recorder{t: t}
	res, err := p.ProcessFiles(context.Background(), "100", oneStat, out)
	if err != nil {
		t.Fatal(err)
	}
	got := out.lines(res)
	for _, want := range []string{
		"p.frontend.x_forged_metric_666_1600000000_y.scur 1 100",
		"p.backend.b_e.server.s_t_1.n___ 2 100",
		"p.server.s______.m 3 100",
		"p.a.b_c.d 4 100",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("output lacks %q:\n%q", want, got)
		}
	}
	for _, l := range got {
		if f := strings.Split(l, " "); len(f) != 3 {
			t.Errorf("line %q is not path value timestamp", l)
		}
	}
	if _, err := p.ProcessFiles(context.Background(), "x 1", oneStat, out); err == nil {
		t.Error("a snapshot name that is not a timestamp was accepted")
	}
}

func TestPipelineSelfMetricsHook(t *testing.T) {
	p := newPipeline(t, engine.Config{SelfMetrics: func(emit engine.Emitter) {
		emit.Emit(engine.Metric{Scope: engine.ScopeSelf, Name: "GraphiteErrors", Value: 3})
	}})
	out := &recorder{t: t}
	res, err := p.ProcessFiles(context.Background(), "100", oneStat, out)
	if err != nil || !slices.Contains(out.lines(res), "p.haproxystats.GraphiteErrors 3 100") {
		t.Fatalf("%v: %q", err, out.buf.String())
	}
}

func TestPipelineConcurrent(t *testing.T) {
	// Workers share one pipeline; each output holds its own snapshot's
	// lines only (run with -race).
	sizes := []int{500, 20, 3000}
	var specs []engine.StageSpec
	for i, name := range []string{"A", "B", "C"} {
		specs = append(specs, engine.StageSpec{Name: name, Stage: counting(name, &sizes[i])})
	}
	specs = append(specs, engine.StageSpec{Name: "F", Folder: &folder{columns: []string{"scur"}}})
	p := newPipeline(t, engine.Config{}, specs...)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 25 {
				name := fmt.Sprint(1000 + w*100 + i)
				out := &recorder{t: t}
				res, err := p.ProcessFiles(context.Background(), name, []engine.File{statRows("a", 300)}, out)
				if err != nil {
					t.Error(err)
					return
				}
				if want := 3520 + 4 + 3*3 + 3 + 2; res.Lines != want {
					t.Errorf("snapshot %s: %d lines, want %d", name, res.Lines, want)
				}
				for l := range strings.Lines(out.buf.String()) {
					if !strings.HasSuffix(l, " "+name+"\n") {
						t.Errorf("snapshot %s has the line %q", name, l)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestPipelineMemoryBudget(t *testing.T) {
	// With a budget that one snapshot fills, a second call waits until the
	// first returns, and gives up when its context ends.
	release := make(chan struct{})
	entered := make(chan string, 2)
	blocking := engine.StageFunc(func(_ context.Context, s *engine.Snapshot, _ engine.Emitter) error {
		entered <- s.Name
		<-release
		return nil
	})
	p := newPipeline(t, engine.Config{MemoryBudget: 1}, engine.StageSpec{Name: "B", Stage: blocking})
	// Prime: the pipeline learns what a snapshot takes.
	close(release)
	if _, err := p.ProcessFiles(context.Background(), "99", oneStat, &recorder{t: t}); err != nil {
		t.Fatal(err)
	}
	<-entered
	release = make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := p.ProcessFiles(context.Background(), "100", oneStat, &recorder{t: t})
		first <- err
	}()
	if name := <-entered; name != "100" {
		t.Fatalf("entered %s", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := p.ProcessFiles(ctx, "101", oneStat, &recorder{t: t}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second call = %v, want it to wait past its deadline", err)
	}
	second := make(chan error, 1)
	go func() {
		_, err := p.ProcessFiles(context.Background(), "102", oneStat, &recorder{t: t})
		second <- err
	}()
	select {
	case name := <-entered:
		t.Fatalf("snapshot %s ran while the budget was spent", name)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if name := <-entered; name != "102" {
		t.Fatalf("entered %s, want 102", name)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
}

func TestPipelineLongestStageFirst(t *testing.T) {
	// The stage that took longest on the previous snapshot runs first, on
	// the calling goroutine: with one P, before any other stage.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var mu sync.Mutex
	var started []string
	stage := func(name string, busy *time.Duration) engine.Stage {
		return engine.StageFunc(func(context.Context, *engine.Snapshot, engine.Emitter) error {
			mu.Lock()
			started = append(started, name)
			mu.Unlock()
			for t0 := time.Now(); time.Since(t0) < *busy; {
			}
			return nil
		})
	}
	fast, slow := time.Duration(0), 5*time.Millisecond
	p := newPipeline(t, engine.Config{},
		engine.StageSpec{Name: "fast", Stage: stage("fast", &fast)},
		engine.StageSpec{Name: "slow", Stage: stage("slow", &slow)})
	for round, want := range [][]string{{"fast", "slow"}, {"slow", "fast"}} {
		started = nil
		if _, err := p.ProcessFiles(context.Background(), "100", oneStat, &recorder{t: t}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(started, want) {
			t.Errorf("round %d: stages started %v, want %v", round, started, want)
		}
	}
}

func TestPipelineWithPaths(t *testing.T) {
	size := 1
	p := newPipeline(t, engine.Config{}, engine.StageSpec{Name: "A", Stage: counting("a", &size)})
	q := p.WithPaths(&engine.Paths{Prefix: "lb.host2.haproxy"})
	for _, c := range []struct {
		p    *engine.Pipeline
		want string
	}{{p, "p.a0 0 100"}, {q, "lb.host2.haproxy.a0 0 100"}, {p, "p.a0 0 100"}} {
		out := &recorder{t: t}
		res, err := c.p.ProcessFiles(context.Background(), "100", oneStat, out)
		if err != nil || !slices.Contains(out.lines(res), c.want) {
			t.Errorf("%v: %q, want the line %q", err, out.buf.String(), c.want)
		}
	}
}

func TestPipelineSpoolFiles(t *testing.T) {
	// Only regular files are read: a FIFO (which would block a reader
	// forever), a link to /dev/zero (which never ends) and a socket named
	// like snapshot files are skipped with a problem naming them and
	// counted in RejectedFiles, and so is a file over MaxFileSize; the
	// rest of the snapshot is processed, promptly.
	dir := filepath.Join(t.TempDir(), "1700000000")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("good_stat", "# pxname,svname,scur,type,\nfe,FRONTEND,1,0,\n")
	write("big_stat", "# pxname,svname,scur,type,\n"+strings.Repeat("fe2,FRONTEND,1,0,\n", 100))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo_stat"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero_info")); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "sock_stat"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	size := 1
	p := newPipeline(t, engine.Config{MaxFileSize: 1000}, engine.StageSpec{Name: "A", Stage: counting("a", &size)},
		engine.StageSpec{Name: "F", Folder: &folder{columns: []string{"scur"}}})
	type result struct {
		res *engine.Result
		err error
		out *recorder
	}
	done := make(chan result, 1)
	go func() {
		out := &recorder{t: t}
		res, err := p.ProcessDir(context.Background(), dir, out)
		done <- result{res, err, out}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("ProcessDir blocked on a file that is not regular")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	got := r.out.lines(r.res)
	for _, want := range []string{"p.kind1 1 1700000000", "p.haproxystats.RejectedFiles 4 1700000000"} {
		if !slices.Contains(got, want) {
			t.Errorf("output lacks %q: %q", want, got)
		}
	}
	for _, name := range []string{"fifo_stat", "zero_info", "sock_stat", "big_stat"} {
		found := false
		for _, p := range r.res.Problems {
			found = found || strings.Contains(p.Error(), name)
		}
		if !found {
			t.Errorf("no problem names %s: %v", name, r.res.Problems)
		}
	}
}

// oneEmit is a Stage that emits metrics of every scope, with Emit or,
// when object is set, with ObjectEmitter.EmitObject.
type oneEmit struct{ object bool }

func (st oneEmit) Process(_ context.Context, _ *engine.Snapshot, emit engine.Emitter) error {
	oe, ok := emit.(engine.ObjectEmitter)
	if !ok {
		return errors.New("the pipeline's Emitter is not an ObjectEmitter")
	}
	// One names slice whose contents change between calls, as an
	// aggregator reuses its labels: the writer's parts of the last names
	// must not outlive them. A NaN value writes no line.
	names := make([]string, 2)
	for _, set := range []struct {
		names  []string
		values []float64
	}{
		{[]string{"a.b", "c"}, []float64{1, 2}},
		{[]string{"d e", "c"}, []float64{3, math.NaN()}},
		{[]string{"a.b", "c"}, []float64{4, 5}},
		{[]string{"f;g"}, []float64{6}},
		{[]string{"a.b", "a_name_of_thirty_two_bytes_or_more"}, []float64{7, 8}},
	} {
		names = names[:copy(names[:cap(names)], set.names)]
		for _, m := range []engine.Metric{
			{Scope: engine.ScopeDaemon}, {Scope: engine.ScopeProcess, Object: "p1"},
			{Scope: engine.ScopeFrontend, Object: "fe.1"}, {Scope: engine.ScopeBackend, Object: "be"},
			{Scope: engine.ScopeServer, Object: "be", Server: "s 1"}, {Scope: engine.ScopeAggrServer, Server: "s1"},
			{Scope: engine.ScopeSelf}, {Scope: engine.ScopePath},
			{Scope: engine.ScopeBackend, Object: strings.Repeat("long-backend-name", 6)}, // a prefix of over 96 bytes
			{Scope: 0}, {Scope: 99}, // not scopes: nothing written
		} {
			if st.object {
				oe.EmitObject(m, names, set.values)
				continue
			}
			for i := range names {
				m.Name, m.Value = names[i], set.values[i]
				emit.Emit(m)
			}
		}
	}
	return nil
}

// TestEmitObjectIsEmit: EmitObject writes the lines Emit writes for each
// of its metrics (a free path keeps its dots in both), in every scope, as
// the names it is given change between calls and values are NaN.
func TestEmitObjectIsEmit(t *testing.T) {
	lines := func(object bool) []string {
		p := newPipeline(t, engine.Config{}, engine.StageSpec{Name: "s", Stage: oneEmit{object: object}})
		out := &recorder{t: t}
		res, err := p.ProcessFiles(context.Background(), "100", nil, out)
		if err != nil {
			t.Fatal(err)
		}
		var keep []string
		for _, l := range out.lines(res) {
			if !strings.Contains(l, "WallClockTime") {
				keep = append(keep, l)
			}
		}
		slices.Sort(keep)
		return keep
	}
	byEmit, byObject := lines(false), lines(true)
	if !slices.Equal(byEmit, byObject) || !slices.Contains(byEmit, "p.a.b 1 100") || !slices.Contains(byEmit, "p.d_e 3 100") || slices.ContainsFunc(byEmit, func(l string) bool { return strings.Contains(l, "NaN") }) ||
		!slices.Contains(byEmit, "p.daemon.f_g 6 100") || !slices.Contains(byEmit, "p.daemon.a_name_of_thirty_two_bytes_or_more 8 100") || len(byEmit) < 72 || !slices.Contains(byEmit, "p.backend."+strings.Repeat("long-backend-name", 6)+".c 5 100") {
		t.Errorf("Emit and EmitObject differ, or a free path lost its dots:\nEmit:       %q\nEmitObject: %q", byEmit, byObject)
	}
}

// columnStage is a table Stage reading the columns it names; it records,
// per column, row kind and nullness, the values it saw.
type columnStage struct {
	columns []string
	seen    map[string][]float64
}

func (s *columnStage) Columns() []string { return s.columns }
func (s *columnStage) Process(_ context.Context, snap *engine.Snapshot, _ engine.Emitter) error {
	s.seen = map[string][]float64{}
	for _, c := range snap.Stats.Columns() {
		for r := range snap.Stats.Rows() {
			k := fmt.Sprintf("%s/%d/%t", c.Name, snap.Stats.Kind[r], c.Null(r))
			s.seen[k] = append(s.seen[k], c.Values[r])
		}
	}
	return nil
}

func TestPipelineKindColumnsWithTable(t *testing.T) {
	// A table stage that names its columns gets them in rows of every
	// kind, while the Folder's other columns are still read only in the
	// rows of the kinds it names.
	f := kindFolder{&folder{columns: []string{"scur", "stot"}, kinds: map[uint8][]string{
		engine.KindFrontend: {"scur"}, engine.KindServer: {"stot"},
	}}}
	s := &columnStage{columns: []string{"scur"}}
	p := newPipeline(t, engine.Config{}, engine.StageSpec{Name: "F", Folder: f}, engine.StageSpec{Name: "S", Stage: s})
	if _, err := p.ProcessFiles(context.Background(), "100", []engine.File{statRows("a", 3)}, &recorder{t: t}); err != nil {
		t.Fatal(err)
	}
	want := map[string][]float64{"scur/1/false": {1}, "scur/3/false": {0, 1, 2}, "scur/2/false": {7}}
	if fmt.Sprint(s.seen) != fmt.Sprint(want) {
		t.Errorf("the table stage saw %v, want %v", s.seen, want)
	}
	for key, wantValues := range map[string][]float64{
		"stot/1/true": {0}, "stot/3/false": {0, 2, 4}, "stot/2/true": {0},
	} {
		if got := f.seen[key]; !slices.Equal(got, wantValues) {
			t.Errorf("folder %s: %v, want %v (seen %v)", key, got, wantValues, f.seen)
		}
	}
}

func TestPipelineTableColumnsPerSnapshot(t *testing.T) {
	// The table's columns are those of the snapshot's headers, whose
	// memory is reused from one snapshot to the next: a column a snapshot
	// lacks is absent, and one that comes back has its own values.
	s := &columnStage{columns: []string{"scur", "stot"}}
	p := newPipeline(t, engine.Config{}, engine.StageSpec{Name: "S", Stage: s})
	for i, tc := range []struct {
		file string
		want string
	}{
		{"# pxname,svname,scur,stot,type,\nbe,s1,1,2,2,\nbe,s2,3,,2,\n", "map[scur/3/false:[1 3] stot/3/false:[2] stot/3/true:[0]]"},
		{"# pxname,svname,scur,type,\nbe,s1,5,2,\n", "map[scur/3/false:[5]]"},
		{"# pxname,svname,stot,type,\nbe,s1,,2,\nbe,s2,9,2,\nbe,s3,8,2,\n", "map[stot/3/false:[9 8] stot/3/true:[0]]"},
	} {
		if _, err := p.ProcessFiles(context.Background(), strconv.Itoa(100+i), []engine.File{{Name: "a_stat", Data: []byte(tc.file)}}, &recorder{t: t}); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(s.seen); got != tc.want {
			t.Errorf("snapshot %d: the table stage saw %s, want %s", i, got, tc.want)
		}
	}
}

func TestPipelineKindColumnsWithWholeTable(t *testing.T) {
	// A table stage that names no column gets every column in every row,
	// the Folders' per-kind columns included.
	for _, s := range []*columnStage{{columns: nil}, {columns: []string{}}} {
		f := kindFolder{&folder{columns: []string{"scur", "stot"}, kinds: map[uint8][]string{
			engine.KindFrontend: {"scur"}, engine.KindServer: {"stot"},
		}}}
		p := newPipeline(t, engine.Config{}, engine.StageSpec{Name: "F", Folder: f}, engine.StageSpec{Name: "S", Stage: s})
		if _, err := p.ProcessFiles(context.Background(), "100", []engine.File{statRows("a", 3)}, &recorder{t: t}); err != nil {
			t.Fatal(err)
		}
		want := "map[scur/1/false:[1] scur/2/false:[7] scur/3/false:[0 1 2] stot/1/false:[2] stot/2/false:[8] stot/3/false:[0 2 4]]"
		if got := fmt.Sprint(s.seen); got != want {
			t.Errorf("columns %#v: the table stage saw %s, want %s", s.columns, got, want)
		}
	}
}

// nameStage records, per snapshot, the names of every row of the Stages'
// table: the name slices', or, as a NameNumberer, PathName's of the
// rows' numbers.
type nameStage struct {
	byNumber bool
	rows     []string
	sawNames bool
}

func (s *nameStage) Columns() []string   { return []string{"scur"} }
func (s *nameStage) NamesByNumber() bool { return s.byNumber }
func (s *nameStage) Process(_ context.Context, snap *engine.Snapshot, _ engine.Emitter) error {
	t := &snap.Stats
	s.rows, s.sawNames = s.rows[:0], len(t.PxName) > 0
	for r := range t.Rows() {
		if s.byNumber {
			s.rows = append(s.rows, t.PathName(t.PxID[r])+"/"+t.PathName(t.SvID[r]))
		} else {
			s.rows = append(s.rows, t.PxName[r]+"/"+t.SvName[r])
		}
	}
	return nil
}

func TestPipelineNameNumberer(t *testing.T) {
	// Stages that read names by number get a table without name slices,
	// and PathName gives the names the slices would hold, whether the
	// snapshot is read on one goroutine or two; a Stage that reads the
	// slices gets them, next to a NameNumberer too.
	var files []engine.File
	for f := range 4 {
		var b strings.Builder
		b.WriteString("# pxname,svname,scur,stot,type\n")
		for i := range 300 {
			px := (i + 37*f) % 300 // each file its own order: other numbers per half
			fmt.Fprintf(&b, "fe.%d,FRONTEND,1,2,0\n", px)
			for sv := range 3 {
				fmt.Fprintf(&b, "be.%d,s:%d.%d,%d,1,2\n", px, sv, f, sv)
			}
			fmt.Fprintf(&b, "be.%d,BACKEND,1,2,1\n", px)
		}
		files = append(files, engine.File{Name: fmt.Sprintf("p%d_stat", f), Data: []byte(b.String())})
	}
	for _, serial := range []bool{false, true} {
		plain, byNumber, mixed := &nameStage{}, &nameStage{byNumber: true}, &nameStage{byNumber: true}
		pipelines := map[*nameStage]*engine.Pipeline{
			plain:    newPipeline(t, engine.Config{}, engine.StageSpec{Name: "S", Stage: plain}),
			byNumber: newPipeline(t, engine.Config{}, engine.StageSpec{Name: "S", Stage: byNumber}),
			mixed:    newPipeline(t, engine.Config{}, engine.StageSpec{Name: "S", Stage: mixed}, engine.StageSpec{Name: "T", Stage: &nameStage{}}),
		}
		for round := range 2 { // the second with every number known
			for s, p := range pipelines {
				if serial {
					engine.SetSerial(p)
				}
				if _, err := p.ProcessFiles(context.Background(), strconv.Itoa(100+round), files, &recorder{t: t}); err != nil {
					t.Fatal(err)
				}
				if s != plain && s.sawNames != (s == mixed) {
					t.Errorf("serial %v: a table with name slices: %v, want %v", serial, s.sawNames, s == mixed)
				}
			}
			if len(plain.rows) != 4*300*5 || plain.rows[1] != "be_0/s:0_0" || plain.rows[3*300*5+1] != "be_111/s:0_3" {
				t.Fatalf("serial %v: rows %d, %q", serial, len(plain.rows), plain.rows[:2])
			}
			for _, s := range []*nameStage{byNumber, mixed} {
				if !slices.Equal(s.rows, plain.rows) {
					t.Errorf("serial %v round %d: names by number differ from the name slices' (%d rows, %d)", serial, round, len(s.rows), len(plain.rows))
				}
			}
		}
	}
}
