package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Pipeline.
type Config struct {
	// Paths builds metric paths; required.
	Paths *Paths
	// Logger receives stage errors and skipped files; nil discards.
	Logger *slog.Logger
}

// Pipeline parses snapshots and runs its stages over them, formatting
// every metric as a Graphite plaintext line. One Pipeline is shared by all
// workers: its methods are safe for concurrent use as long as its stages
// are.
type Pipeline struct {
	paths     *Paths
	logger    *slog.Logger
	stages    []StageSpec
	columns   []string // nil: every column
	parsers   freeList[*Parser]
	output    *bufferPool    // Output.Lines
	stageBufs []*bufferPool  // one per stage
	lastTime  []atomic.Int64 // per stage, its duration on the last snapshot (ns)
}

// Output is the result of processing one snapshot.
type Output struct {
	// Snapshot is the snapshot name (the timestamp of every line).
	Snapshot string
	// Lines holds the Graphite lines, each ending in '\n', grouped by
	// stage: the stage that wrote the most first, then in stage order the
	// other stages' lines and each stage's self-metrics, then the
	// snapshot's self-metrics.
	Lines []byte
	// Count is the number of lines in Lines.
	Count int
	// Problems lists skipped input files and failed stages; the lines of
	// everything else are in Lines.
	Problems []error

	pool *bufferPool
}

// Release hands the memory of Lines back to the pipeline for the next
// snapshot. Calling it is optional; Lines must not be used afterwards.
func (o *Output) Release() {
	if o.pool != nil {
		o.pool.put(o.Lines)
	}
	o.Lines, o.pool = nil, nil
}

// PanicError is returned when a stage panicked; the snapshot produced no
// output.
type PanicError struct {
	Stage string
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("stage %s panicked: %v", e.Stage, e.Value)
}

// NewPipeline returns a pipeline running stages in order.
func NewPipeline(cfg Config, stages ...StageSpec) (*Pipeline, error) {
	if cfg.Paths == nil {
		return nil, errors.New("engine: Config.Paths is nil")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{paths: cfg.Paths, logger: logger, stages: stages}
	seen := map[string]bool{}
	all := false
	for i, s := range stages {
		if s.Name == "" || s.Stage == nil {
			return nil, fmt.Errorf("engine: stage %d has no name or no Stage", i)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("engine: stage name %q used twice", s.Name)
		}
		seen[s.Name] = true
		cu, ok := s.Stage.(ColumnUser)
		if !ok {
			all = true
			continue
		}
		for _, c := range cu.Columns() {
			if !contains(p.columns, c) {
				p.columns = append(p.columns, c)
			}
		}
	}
	if all {
		p.columns = nil
	} else if p.columns == nil {
		p.columns = []string{}
	}
	sort.Strings(p.columns)
	keep := runtime.GOMAXPROCS(0) + 4
	p.parsers = newFreeList[*Parser](keep)
	p.output = newBufferPool(keep)
	for range stages {
		p.stageBufs = append(p.stageBufs, newBufferPool(keep))
	}
	p.lastTime = make([]atomic.Int64, len(stages))
	return p, nil
}

// Columns reports the `show stat` columns the stages read; nil means all.
func (p *Pipeline) Columns() []string { return p.columns }

// Parse parses snapshot files with a pooled Parser.
func (p *Pipeline) Parse(name string, files []File) *Snapshot {
	parser := p.parser()
	defer p.parsers.put(parser)
	return parser.Parse(name, files)
}

// ProcessDir reads, parses and processes the snapshot directory dir; the
// directory's base name is the snapshot name.
func (p *Pipeline) ProcessDir(ctx context.Context, dir string) (*Output, error) {
	start := time.Now()
	files, err := ReadDir(dir)
	if err != nil {
		return nil, err
	}
	return p.process(ctx, filepath.Base(dir), files, start)
}

// ProcessFiles parses and processes a snapshot held in memory.
func (p *Pipeline) ProcessFiles(ctx context.Context, name string, files []File) (*Output, error) {
	return p.process(ctx, name, files, time.Now())
}

func (p *Pipeline) process(ctx context.Context, name string, files []File, start time.Time) (*Output, error) {
	parser := p.parser()
	defer p.parsers.put(parser)
	snap := parser.Parse(name, files)
	defer parser.Release(snap)
	for _, err := range snap.Problems {
		p.logger.Warn("skipped file", "snapshot", name, "error", err)
	}
	return p.run(ctx, snap, start, start)
}

// Run runs the stages over an already parsed snapshot.
func (p *Pipeline) Run(ctx context.Context, snap *Snapshot) (*Output, error) {
	now := time.Now()
	return p.run(ctx, snap, now, now)
}

// stageResult is what one stage produced for a snapshot.
type stageResult struct {
	w       lineWriter
	err     error
	elapsed float64
}

// run runs the stages concurrently, each formatting into its own buffer
// (stages only read the snapshot), then joins their lines in stage order
// with the self-metrics.
func (p *Pipeline) run(ctx context.Context, snap *Snapshot, start, parseStart time.Time) (*Output, error) {
	results := make([]stageResult, len(p.stages))
	stage := func(i int) {
		r := &results[i]
		r.w = lineWriter{paths: p.paths, ts: snap.Name, buf: p.stageBufs[i].get()}
		t0 := time.Now()
		r.err = p.call(ctx, p.stages[i], snap, &r.w)
		d := time.Since(t0)
		r.elapsed = d.Seconds()
		p.lastTime[i].Store(int64(d))
	}
	// Longest first, by the time each stage took on the previous snapshot:
	// the longest runs here at once, the others on new goroutines, so that
	// the slowest stage never waits behind shorter ones.
	order := make([]int, len(p.stages))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(p.lastTime[b].Load(), p.lastTime[a].Load()) })
	var wg sync.WaitGroup
	for _, i := range order[min(1, len(order)):] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stage(i)
		}()
	}
	if len(order) > 0 {
		stage(order[0])
	}
	wg.Wait()
	// grow is a stage whose next buffer must hold the whole output.
	grow, size, base := -1, 0, -1
	defer func() {
		for i := range results {
			p.stageBufs[i].put(results[i].w.buf)
		}
		if grow >= 0 {
			p.stageBufs[grow].hint.Store(int64(size))
		}
	}()
	for _, r := range results {
		var perr *PanicError
		if errors.As(r.err, &perr) {
			return nil, perr
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// The lines of the stage that wrote the most (the servers: most of a
	// large snapshot) are not copied: its buffer becomes the output, and
	// the other stages' lines follow it, in stage order.
	size, base = 4096, -1
	for i, r := range results {
		size += len(r.w.buf)
		if r.err == nil && (base < 0 || len(r.w.buf) > len(results[base].w.buf)) {
			base = i
		}
	}
	out := &Output{Snapshot: snap.Name, Problems: append([]error(nil), snap.Problems...)}
	w := &lineWriter{paths: p.paths, ts: snap.Name}
	if base >= 0 && cap(results[base].w.buf) >= size {
		w.buf, w.lines = results[base].w.buf, results[base].w.lines
		results[base].w.buf = nil
		out.pool = p.stageBufs[base]
	} else {
		grow, base = base, -1
		w.buf = p.output.getSize(size)
		out.pool = p.output
	}
	for i, r := range results {
		spec := p.stages[i]
		serr := r.err
		switch {
		case errors.Is(serr, ErrSkip):
			continue
		case serr != nil:
			serr = fmt.Errorf("stage %s: %w", spec.Name, serr)
			out.Problems = append(out.Problems, serr)
			p.logger.Error("stage failed", "stage", spec.Name, "snapshot", snap.Name, "error", serr)
		case i != base:
			w.buf = append(w.buf, r.w.buf...)
			w.lines += r.w.lines
		}
		if spec.TimeMetric != "" {
			w.Emit(Metric{Scope: ScopeSelf, Name: spec.TimeMetric, Value: r.elapsed})
			continue
		}
		errs, emitted := 0.0, r.w.count
		if serr != nil {
			errs, emitted = 1, 0
		}
		w.Emit(Metric{Scope: ScopeSelf, Name: "Stage" + spec.Name + "WallClockTime", Value: r.elapsed})
		w.Emit(Metric{Scope: ScopeSelf, Name: "Stage" + spec.Name + "Metrics", Value: float64(emitted)})
		w.Emit(Metric{Scope: ScopeSelf, Name: "Stage" + spec.Name + "Errors", Value: errs})
	}
	if snap.Rejected > 0 {
		w.Emit(Metric{Scope: ScopeSelf, Name: "RejectedFiles", Value: float64(snap.Rejected)})
	}
	w.Emit(Metric{Scope: ScopeSelf, Name: "WallClockTimeAllStats", Value: time.Since(parseStart).Seconds()})
	w.Emit(Metric{Scope: ScopeSelf, Name: "TotalWallClockTime", Value: time.Since(start).Seconds()})
	out.Lines, out.Count = w.buf, w.lines
	return out, nil
}

func (p *Pipeline) parser() *Parser {
	if parser, ok := p.parsers.get(); ok {
		return parser
	}
	return NewParser(p.columns)
}

// call runs one stage, turning a panic into a *PanicError.
func (p *Pipeline) call(ctx context.Context, spec StageSpec, snap *Snapshot, w *lineWriter) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Stage: spec.Name, Value: v, Stack: debug.Stack()}
		}
	}()
	return spec.Stage.Process(ctx, snap, w)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
