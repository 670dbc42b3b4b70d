package engine_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
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

// lines splits out into its lines, with the self-metrics' times (which
// vary) replaced by "*".
func lines(t *testing.T, out *engine.Output) []string {
	t.Helper()
	text := string(out.Lines)
	if !strings.HasSuffix(text, "\n") {
		t.Fatalf("output does not end in a newline: %q", text)
	}
	ls := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(ls) != out.Count {
		t.Fatalf("Count = %d, output has %d lines", out.Count, len(ls))
	}
	for i, l := range ls {
		if f := strings.Fields(l); len(f) == 3 && strings.Contains(f[0], "WallClockTime") {
			ls[i] = f[0] + " * " + f[2]
		}
	}
	return ls
}

func TestPipelineOutput(t *testing.T) {
	// The biggest stage's lines come first (its buffer is the output),
	// then in stage order the other stages' lines and each stage's
	// self-metrics, then the snapshot's self-metrics. Which
	// stage is biggest changes from snapshot to snapshot, and the output
	// buffers are recycled, released or not.
	sizes := map[string]*int{"A": new(int), "B": new(int), "C": new(int)}
	var specs []engine.StageSpec
	for _, name := range []string{"A", "B", "C"} {
		specs = append(specs, engine.StageSpec{Name: name, Stage: counting(name, sizes[name])})
	}
	p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "p"}}, specs...)
	if err != nil {
		t.Fatal(err)
	}
	for round, r := range []struct {
		a, b, c int
		release bool
		first   string
	}{
		{3, 1, 2, true, "A"}, {1, 5000, 2, true, "B"}, {1, 2, 9000, false, "C"},
		{20000, 2, 3, true, "A"}, {20000, 2, 3, true, "A"}, {0, 0, 0, true, ""},
	} {
		*sizes["A"], *sizes["B"], *sizes["C"] = r.a, r.b, r.c
		out, err := p.ProcessFiles(context.Background(), "100", oneStat)
		if err != nil {
			t.Fatal(err)
		}
		got := lines(t, out)
		var want []string
		metrics := func(name string) {
			for i := range *sizes[name] {
				want = append(want, fmt.Sprintf("p.%s%d %d 100", name, i, i))
			}
		}
		if r.first != "" {
			metrics(r.first)
		}
		for _, name := range []string{"A", "B", "C"} {
			if name != r.first {
				metrics(name)
			}
			want = append(want,
				fmt.Sprintf("p.haproxystats.Stage%sWallClockTime * 100", name),
				fmt.Sprintf("p.haproxystats.Stage%sMetrics %d 100", name, *sizes[name]),
				fmt.Sprintf("p.haproxystats.Stage%sErrors 0 100", name))
		}
		want = append(want, "p.haproxystats.WallClockTimeAllStats * 100", "p.haproxystats.TotalWallClockTime * 100")
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: got %d lines, want %d:\ngot  %.400q\nwant %.400q", round, len(got), len(want), got, want)
		}
		if r.release {
			out.Release()
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
	newPipeline := func(extra ...engine.StageSpec) *engine.Pipeline {
		specs := append([]engine.StageSpec{{Name: "Ok", Stage: counting("ok", &size)}}, extra...)
		p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "p"}}, specs...)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	// A failing stage loses its own lines only, and is counted.
	out, err := newPipeline(engine.StageSpec{Name: "Bad", Stage: fails}, engine.StageSpec{Name: "Skip", Stage: skips}).
		ProcessFiles(context.Background(), "100", oneStat)
	if err != nil {
		t.Fatal(err)
	}
	got := lines(t, out)
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
	if len(out.Problems) != 1 || !strings.Contains(out.Problems[0].Error(), "stage Bad: bad input") {
		t.Errorf("Problems = %v, want the Bad stage's error", out.Problems)
	}

	// A panicking stage fails the snapshot with a PanicError naming it.
	_, err = newPipeline(engine.StageSpec{Name: "Panics", Stage: panics}).ProcessFiles(context.Background(), "100", oneStat)
	var perr *engine.PanicError
	if !errors.As(err, &perr) || perr.Stage != "Panics" || perr.Value != "boom" || len(perr.Stack) == 0 {
		t.Fatalf("error = %v, want a PanicError of stage Panics with its stack", err)
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
	p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "p"}}, specs...)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 25 {
				name := fmt.Sprint(1000 + w*100 + i)
				out, err := p.ProcessFiles(context.Background(), name, oneStat)
				if err != nil {
					t.Error(err)
					return
				}
				if want := 3520 + 3*3 + 2; out.Count != want {
					t.Errorf("snapshot %s: %d lines, want %d", name, out.Count, want)
				}
				for l := range strings.Lines(string(out.Lines)) {
					if !strings.HasSuffix(l, " "+name+"\n") {
						t.Errorf("snapshot %s has the line %q", name, l)
						return
					}
				}
				out.Release()
			}
		})
	}
	wg.Wait()
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
	p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "p"}},
		engine.StageSpec{Name: "fast", Stage: stage("fast", &fast)},
		engine.StageSpec{Name: "slow", Stage: stage("slow", &slow)})
	if err != nil {
		t.Fatal(err)
	}
	for round, want := range [][]string{{"fast", "slow"}, {"slow", "fast"}} {
		started = nil
		if _, err := p.ProcessFiles(context.Background(), "100", oneStat); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(started, want) {
			t.Errorf("round %d: stages started %v, want %v", round, started, want)
		}
	}
}
