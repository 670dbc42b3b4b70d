package engine

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/spool"
)

// Config configures a Pipeline.
type Config struct {
	// Paths builds metric paths; required.
	Paths *Paths
	// Logger receives stage errors and skipped files; nil discards.
	Logger *slog.Logger
	// MaxFileSize is the largest snapshot file read, in bytes; a larger
	// one is skipped with a problem naming it and the limit. Zero means
	// DefaultMaxFileSize.
	MaxFileSize int64
	// MemoryBudget bounds, in bytes, the working memory of the snapshots
	// being processed at once (read buffers, batches, the folds'
	// per-object state, tables of Stages): a call that would go past it
	// waits until another returns, so that a backlog makes workers wait
	// instead of each holding a snapshot. One call always proceeds. Zero
	// means no bound.
	MemoryBudget int64
	// SelfMetrics, when set, is called at the end of every snapshot to emit
	// more self-metrics (ScopeSelf) of the program running the pipeline,
	// such as its destinations' counters. It may be called concurrently.
	SelfMetrics func(emit Emitter)
	// Started, when set, is called by every ProcessDir and ProcessFiles
	// call with the snapshot's name once the call holds its working memory
	// (see MemoryBudget) and before it reads anything. A program whose
	// stages wait for one another across snapshots (monotonic counters
	// advance in time order) uses it to let a later snapshot in only once
	// an earlier one can no longer be kept waiting by the budget. It may be
	// called concurrently.
	Started func(snapshot string)
	// Backlog, when set, reports whether snapshots are waiting to be
	// processed. A snapshot processed alone is read on two goroutines
	// (see Merger) only when it reports false: the memory goes to the
	// waiting snapshots instead. It may be called concurrently.
	Backlog func() bool
}

// Pipeline reads snapshots and runs its stages over them, formatting every
// metric as a Graphite plaintext line (see the package documentation for
// the data flow). One Pipeline is shared by every worker: ProcessDir and
// ProcessFiles are safe for concurrent use, and so must the stages be.
type Pipeline struct {
	paths     *Paths
	logger    *slog.Logger
	stages    []StageSpec
	batchCols []string                  // columns the parser reads; nil: all
	tableCols []string                  // columns Stages read; nil: all
	needTable bool                      // a Stage needs the rows
	noNames   bool                      // every Stage is a NameNumberer: the table holds no name slices
	kinds     *[classes]map[string]bool // per row class, the columns read; nil: batchCols
	extra     func(emit Emitter)
	started   func(snapshot string)
	backlog   func() bool
	maxFile   int64
	budget    *budget
	lastTime  []atomic.Int64 // per stage, its duration on the last snapshot (ns)
	reported  *reportedNames // the name warnings given, for every work value
	serial    bool           // never read a snapshot on two goroutines (tests)
}

// Result is what processing one snapshot produced.
type Result struct {
	// Lines and Bytes count what was written.
	Lines, Bytes int
	// Problems lists skipped input files, lines and cells, and failed
	// stages; the lines of everything else were written.
	Problems []error
}

// PanicError is returned when a stage panicked; the snapshot was not
// processed in full.
type PanicError struct {
	Stage string
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("stage %s panicked: %v", e.Stage, e.Value)
}

// NewPipeline returns a pipeline running stages over every snapshot.
func NewPipeline(cfg Config, stages ...StageSpec) (*Pipeline, error) {
	if cfg.Paths == nil {
		return nil, errors.New("engine: Config.Paths is nil")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{paths: cfg.Paths, logger: logger, stages: stages, maxFile: cfg.MaxFileSize, extra: cfg.SelfMetrics, started: cfg.Started, backlog: cfg.Backlog}
	if p.maxFile <= 0 {
		p.maxFile = DefaultMaxFileSize
	}
	if cfg.MemoryBudget < 0 {
		return nil, fmt.Errorf("engine: memory budget %d is negative", cfg.MemoryBudget)
	}
	p.budget = newBudget(cfg.MemoryBudget)
	p.reported = newReportedNames()
	seen := map[string]bool{}
	var batch, table []string
	allBatch, allTable, names := false, false, false
	for i, s := range stages {
		if s.Name == "" || (s.Stage == nil) == (s.Folder == nil) {
			return nil, fmt.Errorf("engine: stage %d (%q) needs a name and exactly one of Stage and Folder", i, s.Name)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("engine: stage name %q used twice", s.Name)
		}
		seen[s.Name] = true
		if s.Folder != nil {
			batch = union(batch, s.Folder.Columns())
			continue
		}
		p.needTable = true
		if nn, ok := s.Stage.(NameNumberer); !ok || !nn.NamesByNumber() {
			names = true
		}
		cu, ok := s.Stage.(ColumnUser)
		if !ok {
			allTable = true
			continue
		}
		table = union(table, cu.Columns())
	}
	sort.Strings(batch)
	sort.Strings(table)
	p.tableCols = table
	if allTable {
		p.tableCols = nil
		allBatch = true
	}
	if !allBatch {
		p.batchCols = union(batch, table)
		if p.batchCols == nil {
			p.batchCols = []string{}
		}
	}
	p.noNames = p.needTable && !names
	p.kinds = kindColumns(stages)
	if p.needTable && p.tableCols == nil {
		// The Stages' table has every column (a Stage that names none,
		// or none that is a ColumnUser): every row is read whole.
		p.kinds = nil
	}
	p.lastTime = make([]atomic.Int64, len(stages))
	return p, nil
}

// kindColumns returns the columns read per row class when every Folder
// says so (KindColumner) and every Stage names the columns it reads
// (ColumnUser), whose columns are read in rows of every class; or nil.
func kindColumns(stages []StageSpec) *[classes]map[string]bool {
	var kinds [classes]map[string]bool
	for k := range kinds {
		kinds[k] = map[string]bool{}
	}
	for _, s := range stages {
		if s.Stage != nil {
			cu, ok := s.Stage.(ColumnUser)
			if !ok {
				return nil
			}
			for _, c := range cu.Columns() {
				for k := range kinds {
					kinds[k][c] = true
				}
			}
			continue
		}
		kc, ok := s.Folder.(KindColumner)
		if !ok {
			return nil
		}
		for _, k := range []struct {
			class int
			kind  uint8
		}{{classFrontend, KindFrontend}, {classBackend, KindBackend}, {classOther, KindServer}, {classOther, KindOther}} {
			for _, c := range kc.KindColumns(k.kind) {
				kinds[k.class][c] = true
			}
		}
	}
	return &kinds
}

func union(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

// Columns reports the `show stat` columns the stages read; nil means all.
func (p *Pipeline) Columns() []string { return p.batchCols }

// ProcessDir reads the snapshot directory dir (its base name is the
// snapshot name), runs the stages and writes every line to w.
//
// The files are read through a fixed buffer, one at a time, in name order
// (the second half of the `*_stat` files on a second goroutine when the
// stages can merge, see Merger): only regular files of at most
// Config.MaxFileSize bytes (others are skipped with a problem naming
// them). w receives whole lines, at most a
// chunk of about 64 KiB per Write, from one goroutine at a time; a Write
// error stops the processing and is returned (what was written before
// stays written). Any other error means the snapshot could not be read or
// a stage panicked (*PanicError); problems that lose only part of the
// snapshot are in Result.Problems.
func (p *Pipeline) ProcessDir(ctx context.Context, dir string, w io.Writer) (*Result, error) {
	start := time.Now()
	files, err := dirFiles(dir)
	if err != nil {
		return nil, err
	}
	return p.process(ctx, baseName(dir), files, w, start)
}

// ProcessFiles is ProcessDir for a snapshot held in memory.
func (p *Pipeline) ProcessFiles(ctx context.Context, name string, files []File, w io.Writer) (*Result, error) {
	return p.process(ctx, name, memFiles(files), w, time.Now())
}

func baseName(dir string) string {
	dir = strings.TrimRight(dir, "/")
	if i := strings.LastIndexByte(dir, '/'); i >= 0 {
		return dir[i+1:]
	}
	return dir
}

// IsTimestamp reports whether name can be a snapshot name: the digits of
// a time in seconds since the epoch that fits an int64 (the spool's rule).
func IsTimestamp(name string) bool { return spool.IsSnapshotName(name) }

// work is the memory of one snapshot being processed, reused from snapshot
// to snapshot.
type work struct {
	readBuf []byte
	lr      lineReader
	info    infoParser
	stat    statParser
	table   StatTable
	folds   []Fold        // per stage; nil for a Stage
	probs   []fileProblem // of this snapshot, at most maxProblems
	dropped int           // problems past maxProblems
	xl      idMap         // name numbers of a helper's table rows
	writers []lineWriter
	self    lineWriter
	snap    Snapshot
	spent   []time.Duration // per stage
	size    int64           // bytes, as measured after the last use
	held    int64           // bytes the budget counts for it
	current string          // the stage being run while reading (for a panic)
}

func (p *Pipeline) newWork() *work {
	names := newInterner()
	w := &work{
		readBuf: make([]byte, readSize),
		info:    infoParser{names: names},
		stat:    statParser{names: names, reported: p.reported},
		folds:   make([]Fold, len(p.stages)),
		writers: make([]lineWriter, len(p.stages)),
		spent:   make([]time.Duration, len(p.stages)),
	}
	w.stat.kinds = p.kinds
	w.table.noNames = p.noNames
	if p.batchCols != nil {
		w.stat.want = make(map[string]bool, len(p.batchCols))
		for _, c := range p.batchCols {
			w.stat.want[c] = true
		}
	}
	for i, s := range p.stages {
		if s.Folder != nil {
			w.folds[i] = s.Folder.NewFold()
		}
	}
	return w
}

// sizer is implemented by Folds that can tell the memory they hold.
type sizer interface{ Size() int64 }

// measure updates w.size from the capacity of what it holds.
func (w *work) measure() {
	n := int64(cap(w.readBuf))
	tableSize := func(t *StatTable) int64 {
		s := int64(cap(t.Proc))*4 + int64(cap(t.Kind)) + int64(cap(t.Px)+cap(t.Sv)+cap(t.PxName)+cap(t.SvName))*16
		for _, cols := range [][]*Column{t.cols, t.spare} {
			for _, c := range cols {
				s += int64(cap(c.Values))*8 + int64(cap(c.null))*8
			}
		}
		return s
	}
	n += tableSize(&w.stat.batch) + tableSize(&w.table)
	n += int64(len(w.stat.names.names)) * 64
	for _, f := range w.folds {
		if s, ok := f.(sizer); ok {
			n += s.Size()
		}
	}
	for i := range w.writers {
		n += int64(cap(w.writers[i].buf))
	}
	w.size = n
}

func (p *Pipeline) process(ctx context.Context, name string, files []snapshotFile, out io.Writer, start time.Time) (*Result, error) {
	if !IsTimestamp(name) {
		return nil, fmt.Errorf("snapshot %q: the name must be a time in seconds since the epoch (digits only)", name)
	}
	w, err := p.budget.acquire(ctx, p.newWork)
	if err != nil {
		return nil, err
	}
	broken := true
	defer func() {
		w.measure()
		p.budget.release(w, broken)
	}()
	if p.started != nil {
		p.started(name)
	}
	res, err := p.read(ctx, w, name, files, out, start)
	var perr *PanicError
	broken = errors.As(err, &perr)
	return res, err
}

// read runs p.run, turning a panic of a fold while the rows are read into
// a *PanicError.
func (p *Pipeline) read(ctx context.Context, w *work, name string, files []snapshotFile, out io.Writer, start time.Time) (res *Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			perr, ok := v.(*PanicError) // from another goroutine, with its stack
			if !ok {
				perr = &PanicError{Stage: w.current, Value: v, Stack: debug.Stack()}
			}
			res, err = nil, perr
		}
	}()
	w.current = "(parser)"
	return p.run(ctx, w, name, files, out, start)
}

func (p *Pipeline) run(ctx context.Context, w *work, name string, files []snapshotFile, dst io.Writer, start time.Time) (*Result, error) {
	snap, statsStart, err := p.readAll(ctx, w, name, files)
	if err != nil {
		return nil, err
	}
	for _, err := range snap.Problems {
		p.logger.Warn("snapshot problem", "snapshot", name, "problem", err)
	}
	return p.fanOut(ctx, w, snap, dst, start, statsStart)
}

// readAll reads every file of the snapshot, handing the rows to the folds
// (and to the table of the Stages), and returns the snapshot and when
// reading its `*_stat` files started. When it can (see Merger), the second
// half of the `*_stat` files is read on another goroutine, into the Folds
// of a second work value, which are then merged into w's.
func (p *Pipeline) readAll(ctx context.Context, w *work, name string, files []snapshotFile) (*Snapshot, time.Time, error) {
	snap := &w.snap
	*snap = Snapshot{Name: name, Info: snap.Info}
	snap.Info.reset()
	w.info.reset()
	w.start(name)
	var statsStart time.Time
	for i := range files {
		files[i].index = i
	}
	own, other := files, []snapshotFile(nil)
	h := p.helper(w, files)
	if h != nil {
		own, other = splitStats(files)
		// The helper is released once its goroutine returned, whatever
		// happens here (a panic of a fold on this goroutine too), and
		// dropped when a fold panicked on either or in a merge.
		hctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		running, broken := false, false
		defer func() {
			cancel()
			if running {
				var perr *PanicError
				if err := <-done; errors.As(err, &perr) {
					broken = true
				}
			}
			h.measure()
			p.budget.release(h, broken)
		}()
		broken = true // until its Folds were reset and its parser primed
		h.start(name)
		h.snap = Snapshot{Name: name}
		p.prime(h, own)
		broken = false
		statsStart = time.Now()
		running = true
		go func() { done <- p.readHelper(hctx, h, other) }()
		err := p.readFiles(ctx, w, own, snap, nil)
		if err != nil {
			cancel() // the helper's half is lost anyway
		}
		herr := <-done
		running = false
		var perr *PanicError
		if errors.As(herr, &perr) {
			broken = true
			err = herr
		} else if err == nil {
			err = herr
		}
		if err != nil {
			return nil, statsStart, err
		}
		broken = true // until the merge returns: a Merge may panic
		p.merge(w, h)
		broken = false
	} else if err := p.readFiles(ctx, w, files, snap, &statsStart); err != nil {
		return nil, statsStart, err
	}
	if err := ctx.Err(); err != nil {
		return nil, statsStart, err
	}
	// The problems in file order, the snapshot's own after them.
	probs := w.probs
	if h != nil {
		probs = mergeProblems(w.probs, h.probs)
	}
	dropped := w.dropped
	if h != nil {
		dropped += h.dropped
	}
	problem := func(err error) {
		if len(snap.Problems) < maxProblems {
			snap.Problems = append(snap.Problems, err)
			return
		}
		dropped++
	}
	for _, fp := range probs {
		problem(fp.err)
	}
	// The names reported are not reported again, by any work value (a
	// warning past the bound was not reported: its name is not added).
	for _, err := range snap.Problems {
		if nw := (*nameWarning)(nil); errors.As(err, &nw) {
			p.reported.add(nw.raw)
		}
	}
	w.info.finish(&snap.Info, problem)
	if p.needTable {
		snap.Stats = w.table
	}
	if dropped > 0 {
		snap.Problems = append(snap.Problems, fmt.Errorf("%d more problem(s) in this snapshot not listed", dropped))
	}
	if statsStart.IsZero() {
		statsStart = time.Now()
	}
	return snap, statsStart, nil
}

// start prepares w for the snapshot named name: the parser, the table of
// the Stages, the folds, the problems.
func (w *work) start(name string) {
	w.stat.reset()
	w.table.reset()
	w.table.dropColumns() // the stages are done with the last snapshot's
	for i, f := range w.folds {
		w.spent[i] = 0
		if f != nil {
			f.Reset(name)
		}
	}
	w.probs, w.dropped = w.probs[:0], 0
}

// fileProblem is a problem of the file at index file of the snapshot's
// files (snapshotFile.index).
type fileProblem struct {
	file int
	err  error
}

// mergeProblems merges two lists in file order.
func mergeProblems(a, b []fileProblem) []fileProblem {
	out := make([]fileProblem, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if b[0].file < a[0].file {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}

// readFiles reads files with w, counting them in snap.
func (p *Pipeline) readFiles(ctx context.Context, w *work, files []snapshotFile, snap *Snapshot, statsStart *time.Time) error {
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		problem := func(err error) {
			// Room for the name warnings a merge may drop.
			if len(w.probs) < maxProblems+maxNameWarnings {
				w.probs = append(w.probs, fileProblem{f.index, err})
				return
			}
			w.dropped++
		}
		isInfo := strings.HasSuffix(f.name, InfoSuffix)
		if isInfo {
			snap.InfoFiles++
		} else {
			snap.StatFiles++
			if statsStart != nil && statsStart.IsZero() {
				*statsStart = time.Now()
			}
		}
		err := p.readFile(ctx, w, f, isInfo, snap, problem)
		if errors.Is(err, errSkipFile) {
			problem(&FileError{File: f.name, Err: err})
			snap.Rejected++
			continue
		}
		if err != nil {
			return fmt.Errorf("read snapshot %s: %w", snap.Name, err)
		}
		if w.lr.tooBig > 0 {
			problem(&FileError{File: f.name, Err: fmt.Errorf("%d line(s) longer than %d bytes skipped", w.lr.tooBig, readSize)})
		}
	}
	return nil
}

// statFiles returns the number of `*_stat` files of files.
func statFiles(files []snapshotFile) int {
	n := 0
	for _, f := range files {
		if !strings.HasSuffix(f.name, InfoSuffix) {
			n++
		}
	}
	return n
}

// splitStats returns the files w reads (every `*_info` file and the first
// half of the `*_stat` files) and those the helper reads (the other
// `*_stat` files), each in name order. The helper's are last.
func splitStats(files []snapshotFile) (own, other []snapshotFile) {
	n := statFiles(files)
	keep := n - n/2
	for _, f := range files {
		if !strings.HasSuffix(f.name, InfoSuffix) {
			if keep == 0 {
				other = append(other, f)
				continue
			}
			keep--
		}
		own = append(own, f)
	}
	return own, other
}

// prime gives the helper h's parser the columns that the headers of the
// `*_stat` files before its own name (the first line that is not blank of
// each of own), as reading them would have: a batch has every column some
// header of the snapshot named so far, null in the rows of files without
// it.
func (p *Pipeline) prime(h *work, own []snapshotFile) {
	for _, f := range own {
		if strings.HasSuffix(f.name, InfoSuffix) {
			continue
		}
		closeFile, err := p.open(h, f)
		if err != nil {
			continue // read and reported as a problem by the worker
		}
		for {
			line, ok := h.lr.next()
			if !ok {
				break
			}
			if len(bytes.TrimSpace(line)) > 0 {
				h.stat.columnsOf(line)
				break
			}
		}
		closeFile()
	}
}

// helper returns a second work value to read the snapshot's files with,
// or nil: when the machine has one processor for Go, a Fold is not a
// Merger that can merge, the snapshot has fewer than two `*_stat` files,
// another snapshot is being processed or waiting (Config.Backlog) or the
// budget has no room.
func (p *Pipeline) helper(w *work, files []snapshotFile) *work {
	if p.serial || runtime.GOMAXPROCS(0) < 2 || (p.backlog != nil && p.backlog()) {
		return nil
	}
	for _, f := range w.folds {
		if m, ok := f.(Merger); f != nil && (!ok || !m.CanMerge()) {
			return nil
		}
	}
	if statFiles(files) < 2 {
		return nil
	}
	return p.budget.tryAcquire(p.newWork)
}

// readHelper reads files with the helper h, turning a panic into a
// *PanicError (it runs on a goroutine of its own).
func (p *Pipeline) readHelper(ctx context.Context, h *work, files []snapshotFile) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Stage: h.current, Value: v, Stack: debug.Stack()}
		}
	}()
	h.current = "(parser)"
	return p.readFiles(ctx, h, files, &h.snap, nil)
}

// merge takes in what the helper h read: its Folds into w's (a stage's
// time is the longer of the two halves' plus the merge: they ran at
// once), its table rows after w's (at the same time, on a goroutine of
// their own), its file counts, and its name warnings up to the
// snapshot's bound.
func (p *Pipeline) merge(w, h *work) {
	// A name the helper's parser reported that the worker's interner
	// already had was reported by the worker or before this snapshot
	// (before appendPart interns the helper's names into it); the others,
	// within the snapshot's bound.
	warned := w.stat.warned
	h.probs = slices.DeleteFunc(h.probs, func(fp fileProblem) bool {
		var nw *nameWarning
		if !errors.As(fp.err, &nw) {
			return false
		}
		if _, known := w.stat.names.names[nw.raw]; known {
			return true
		}
		warned++
		return warned > maxNameWarnings
	})
	// The table's rows are appended on another goroutine while the Folds
	// merge (engine code only: a panic there is handed back here, unless
	// a Merge's panic is already on its way).
	merged := false
	if p.needTable {
		done := make(chan *PanicError, 1)
		go func() {
			defer func() {
				var perr *PanicError
				if v := recover(); v != nil {
					perr = &PanicError{Stage: "(parser)", Value: v, Stack: debug.Stack()}
				}
				done <- perr
			}()
			w.table.appendPart(&h.table, w.stat.batch.Procs, w.stat.names, h.stat.names, &w.xl)
		}()
		defer func() {
			if perr := <-done; perr != nil && merged {
				panic(perr)
			}
		}()
	}
	for i, f := range w.folds {
		if f == nil {
			continue
		}
		w.current = p.stages[i].Name
		t0 := time.Now()
		f.(Merger).Merge(h.folds[i])
		w.spent[i] = max(w.spent[i], h.spent[i]) + time.Since(t0)
	}
	w.current = "(parser)"
	merged = true
	w.snap.StatFiles += h.snap.StatFiles
	w.snap.Rejected += h.snap.Rejected
}

// open prepares w.lr to read f; the returned function closes the file.
// readFile parses one file of the snapshot; the file is closed however
// the parse ends (a stage's Fold may panic, recovered above).
func (p *Pipeline) readFile(ctx context.Context, w *work, f snapshotFile, isInfo bool, snap *Snapshot, problem func(error)) error {
	closeFile, err := p.open(w, f)
	if err != nil {
		return err
	}
	defer closeFile()
	if isInfo {
		w.info.parse(&snap.Info, strings.TrimSuffix(f.name, InfoSuffix), &w.lr)
	} else {
		p.stat(ctx, w, f.name, snap, problem)
	}
	if err := w.lr.err; err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	return nil
}

func (p *Pipeline) open(w *work, f snapshotFile) (func(), error) {
	if f.path == "" {
		data := f.data
		if int64(len(data)) > p.maxFile {
			return nil, fmt.Errorf("%d bytes, above the limit of %d bytes (max-file-size): %w", len(data), p.maxFile, errSkipFile)
		}
		w.lr.reset(bytes.NewReader(data), w.readBuf)
		return func() {}, nil
	}
	file, err := openFile(f.path, p.maxFile)
	if err != nil {
		return nil, err
	}
	w.lr.reset(io.LimitReader(file, p.maxFile), w.readBuf)
	return func() { file.Close() }, nil
}

// stat reads one `*_stat` file, handing its rows to the folds batch by
// batch.
func (p *Pipeline) stat(ctx context.Context, w *work, file string, snap *Snapshot, problem func(error)) {
	var header []byte
	for {
		line, ok := w.lr.next()
		if !ok {
			if w.lr.err == nil {
				problem(&FileError{File: file, Err: errors.New("empty file skipped")})
			}
			return
		}
		if len(bytes.TrimSpace(line)) > 0 {
			header = line
			break
		}
	}
	if err := w.stat.header(file, strings.TrimSuffix(file, StatSuffix), header); err != nil {
		problem(&FileError{File: file, Err: err})
		if errors.Is(err, ErrNotCSV) {
			snap.Rejected++
		}
		return
	}
	for {
		line, ok := w.lr.next()
		if !ok {
			break
		}
		if len(line) == 0 {
			continue
		}
		w.stat.row(line, w.lr.line, problem)
		if w.stat.full() {
			if ctx.Err() != nil {
				return
			}
			p.fold(w)
		}
	}
	p.fold(w)
}

// fold hands the batch to the folds (and to the table of the Stages).
func (p *Pipeline) fold(w *work) {
	b := &w.stat.batch
	if b.n == 0 {
		return
	}
	w.stat.settle()
	// The columns' slices hold the batch's rows, no more.
	for _, c := range b.cols {
		c.Values, c.null = c.Values[:b.n], c.null[:(b.n+63)/64]
	}
	for i, f := range w.folds {
		if f == nil {
			continue
		}
		w.current = p.stages[i].Name
		t0 := time.Now()
		f.Rows(b)
		w.spent[i] += time.Since(t0)
	}
	if p.needTable {
		for _, c := range b.cols {
			if p.tableCols == nil || slices.Contains(p.tableCols, c.Name) {
				w.table.column(c.Name)
			}
		}
		w.table.appendRows(b)
	}
	w.current = "(parser)"
	b.truncate()
}

// fanOut runs every stage over the snapshot concurrently, each formatting
// into its own writer, then writes the self-metrics.
func (p *Pipeline) fanOut(ctx context.Context, w *work, snap *Snapshot, dst io.Writer, start, statsStart time.Time) (*Result, error) {
	out := &output{w: dst}
	errs := make([]error, len(p.stages))
	stage := func(i int) {
		spec := p.stages[i]
		lw := &w.writers[i]
		lw.start(p.paths, snap.Name, out, spec.Stage != nil)
		t0 := time.Now()
		errs[i] = p.call(ctx, spec, w.folds[i], snap, lw)
		d := time.Since(t0)
		w.spent[i] += d
		p.lastTime[i].Store(int64(w.spent[i]))
		if spec.Stage != nil && errs[i] != nil {
			lw.discard()
			return
		}
		lw.flush()
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
	for _, err := range errs {
		var perr *PanicError
		if errors.As(err, &perr) {
			return nil, perr
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	res := &Result{Problems: append([]error(nil), snap.Problems...)}
	self := &w.self
	self.start(p.paths, snap.Name, out, false)
	for i, spec := range p.stages {
		serr := errs[i]
		if errors.Is(serr, ErrSkip) {
			continue
		}
		if serr != nil {
			serr = fmt.Errorf("stage %s: %w", spec.Name, serr)
			res.Problems = append(res.Problems, serr)
			p.logger.Error("stage failed", "stage", spec.Name, "snapshot", snap.Name, "error", serr)
		}
		elapsed := w.spent[i].Seconds()
		if spec.TimeMetric != "" {
			self.Emit(Metric{Scope: ScopeSelf, Name: spec.TimeMetric, Value: elapsed})
			continue
		}
		errCount, emitted := 0.0, w.writers[i].count
		if serr != nil {
			errCount, emitted = 1, 0
		}
		self.Emit(Metric{Scope: ScopeSelf, Name: "Stage" + spec.Name + "WallClockTime", Value: elapsed})
		self.Emit(Metric{Scope: ScopeSelf, Name: "Stage" + spec.Name + "Metrics", Value: float64(emitted)})
		self.Emit(Metric{Scope: ScopeSelf, Name: "Stage" + spec.Name + "Errors", Value: errCount})
	}
	if snap.Rejected > 0 {
		self.Emit(Metric{Scope: ScopeSelf, Name: "RejectedFiles", Value: float64(snap.Rejected)})
	}
	if p.extra != nil {
		p.extra(self)
	}
	self.Emit(Metric{Scope: ScopeSelf, Name: "WallClockTimeAllStats", Value: time.Since(statsStart).Seconds()})
	self.Emit(Metric{Scope: ScopeSelf, Name: "TotalWallClockTime", Value: time.Since(start).Seconds()})
	self.flush()
	if err := out.failed(); err != nil {
		return nil, err
	}
	res.Lines, res.Bytes = out.lines, out.bytes
	return res, nil
}

// call runs one stage, turning a panic into a *PanicError.
func (p *Pipeline) call(ctx context.Context, spec StageSpec, fold Fold, snap *Snapshot, lw *lineWriter) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Stage: spec.Name, Value: v, Stack: debug.Stack()}
		}
	}()
	if fold != nil {
		return fold.Finish(ctx, snap, lw)
	}
	return spec.Stage.Process(ctx, snap, lw)
}

// Parser materialises snapshots held in memory: every row, with the asked
// for columns, as a Stage sees them. It is for tests and tools that call a
// Stage directly; the Pipeline streams instead. A Parser is not safe for
// concurrent use; each Snapshot it returns is the caller's.
type Parser struct {
	p *Pipeline
}

// NewParser returns a parser that materialises the named `show stat`
// columns (`pxname`, `svname` and `type` are always read); nil means every
// column.
func NewParser(columns []string) *Parser {
	p := &Pipeline{
		paths: &Paths{}, logger: slog.New(slog.DiscardHandler), maxFile: DefaultMaxFileSize,
		budget: newBudget(0), needTable: true, tableCols: columns, batchCols: columns,
	}
	return &Parser{p: p}
}

// Parse builds the Snapshot named name from files. Problems with single
// files, lines and cells are in Snapshot.Problems; Parse itself does not
// fail, except for a name that is not a timestamp (the Snapshot then has
// only that problem).
func (ps *Parser) Parse(name string, files []File) *Snapshot {
	if !IsTimestamp(name) {
		return &Snapshot{Name: name, Problems: []error{fmt.Errorf("snapshot %q: the name is not a timestamp", name)}}
	}
	w := ps.p.newWork()
	snap, _, err := ps.p.readAll(context.Background(), w, name, memFiles(files))
	if err != nil { // files in memory cannot fail to be read
		return &Snapshot{Name: name, Problems: []error{err}}
	}
	return snap
}

// WithPaths returns a view of p that builds metric paths with paths: the
// same stages, the same memory budget and the same state of the stages,
// another prefix (a central processor gives each load balancer's snapshots
// the prefix of its host, and the cluster's aggregate its own). It is safe
// for concurrent use with p.
func (p *Pipeline) WithPaths(paths *Paths) *Pipeline {
	q := *p
	q.paths = paths
	return &q
}
