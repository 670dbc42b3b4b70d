package engine

import (
	"context"
	"errors"
)

// Stage computes metrics from a materialised snapshot: every row of every
// `*_stat` file, with the columns it asked for (see ColumnUser).
//
// Process is called once per snapshot. It must treat snap as read-only and
// must not keep snap, its tables or its slices after returning. It emits
// every metric it computes through emit; a metric whose value is NaN is
// counted but not sent. The pipeline holds a stage's lines until Process
// returns: returning an error discards all of them (the other stages'
// metrics are still sent); returning ErrSkip means the stage had nothing
// to do, so the pipeline reports no timing for it.
//
// Concurrency: the pipeline runs its stages concurrently over a snapshot
// (a fan-out: every stage sees the same snapshot, none sees another's
// output), and one Pipeline serves every worker, so Process is called
// concurrently for different snapshots. A Stage must be safe for
// concurrent use, or serialize its calls itself (the WebAssembly stages
// do, honouring ctx while they wait). A stage that keeps state between
// snapshots sees them in the order its calls happen, which with several
// workers is not always timestamp order.
//
// A materialised table costs memory in proportion to the rows (about 90
// thousand rows for 8 processes of 1000 backends of 10 servers). A stage
// that aggregates rows into objects should be a Folder instead.
type Stage interface {
	Process(ctx context.Context, snap *Snapshot, emit Emitter) error
}

// StageFunc adapts a function to the Stage interface.
type StageFunc func(ctx context.Context, snap *Snapshot, emit Emitter) error

// Process calls f(ctx, snap, emit).
func (f StageFunc) Process(ctx context.Context, snap *Snapshot, emit Emitter) error {
	return f(ctx, snap, emit)
}

// ErrSkip is returned by a stage that had nothing to do for a snapshot
// (for example the daemon stage when the snapshot has no `*_info` file).
var ErrSkip = errors.New("stage not applicable to this snapshot")

// ColumnUser is implemented by stages that read only some `show stat`
// columns. The parser materialises, for the stages of a pipeline, only the
// union of the columns they ask for, or every column when one of them does
// not implement ColumnUser. `pxname`, `svname` and `type` are always read.
type ColumnUser interface {
	Columns() []string
}

// NameNumberer is an optional interface of a Stage that reads the rows'
// names only by their numbers: PxID, SvID and StatTable.PathName, never
// the Px, Sv, PxName and SvName slices. NamesByNumber reports whether it
// does. When every Stage of a pipeline does (Folders aside), the table
// of every row (Snapshot.Stats, which a Fold's Finish sees too) leaves
// those four slices empty: 64 bytes a row not copied while the files are
// read. The batches of Fold.Rows keep them. The WASM stages are
// NameNumberers.
type NameNumberer interface {
	NamesByNumber() bool
}

// Folder is a stage that computes its metrics from the rows as the parser
// reads them, one batch of rows at a time, instead of from a materialised
// table: its memory is proportional to the objects it aggregates (the
// frontends, backends and servers), not to the rows, and it never waits
// for a table to be built. The built-in stages are Folders.
//
// A Folder is shared by every worker and must be safe for concurrent use.
// The state of one snapshot lives in a Fold, which the pipeline keeps per
// worker and reuses from snapshot to snapshot.
type Folder interface {
	// Columns reports the `show stat` columns the fold reads.
	Columns() []string
	// NewFold returns fresh per-snapshot state.
	NewFold() Fold
}

// KindColumner is an optional interface of a Folder that reads some
// columns only in rows of some kinds. KindColumns(kind) reports the columns
// it reads in rows of that kind (KindFrontend, KindBackend, KindServer,
// KindOther); their union must be within Columns. When every Folder of a
// pipeline implements it and every Stage names the columns it reads
// (ColumnUser, a list that is not empty), the parser reads in each row
// only the columns some Folder reads for its kind and those the Stages
// read, and leaves the other cells of the row null (value 0): a server
// row, for one, is not read past the last column read in server rows. A row is a FRONTEND or BACKEND row by
// its svname; server and listener rows are told apart by their type, so
// they are read alike.
type KindColumner interface {
	KindColumns(kind uint8) []string
}

// Fold is the state of a Folder for the snapshot being processed. The
// pipeline uses a Fold from one goroutine at a time: Reset, then Rows for
// every batch of every `*_stat` file in file name order, then Finish.
// When the Fold is a Merger and the snapshot is read on two goroutines, a
// Fold gets the batches of its half of the files only; the first half's
// Fold then gets Merge with the second's, and Finish (the second's is not
// finished, only reset for another snapshot).
type Fold interface {
	// Reset starts a new snapshot named name: forget everything about the
	// previous one (keeping allocated memory for reuse).
	Reset(name string)
	// Rows folds a batch of rows of one `*_stat` file: rows [0, Rows())
	// with the columns the Folder asked for. The batch, its slices and its
	// columns are reused once Rows returns and must not be kept.
	Rows(batch *StatTable)
	// Finish emits the metrics of the snapshot once every file was read.
	// snap holds the daemon table (Info), the file counts and problems; its
	// Stats table is empty unless a Stage of the pipeline needs rows.
	//
	// The lines of a Fold are sent as it emits them, in chunks, so that
	// the output of a large snapshot is never held in memory: an error
	// returned after emitting cannot take back what was already sent. It
	// is logged and counted as for a Stage.
	Finish(ctx context.Context, snap *Snapshot, emit Emitter) error
}

// Merger is an optional interface of a Fold whose state can take in
// another's. When every Fold of a pipeline is a Merger that can merge, a
// snapshot that is the only one being processed, with room in the memory
// budget, has its `*_stat` files read on two goroutines: the first half
// of its files (in name order) into the worker's Folds, the second half
// into Folds of a second work value, each Fold from one goroutine; then
// the pipeline calls Merge on each of the worker's Folds with the other,
// and Finish on the worker's only.
//
// A Fold sees the batches of its own files only: their Procs list those
// files' processes, and the name numbers (PxID, SvID, NameEpoch) of the
// two Folds are two numberings, in which the same name may have different
// numbers. Merge must match objects by name. The second half's batches
// have the columns the first half's headers named, as they would have if
// one goroutine read every file (null where their file lacks them).
// Time spent in Merge counts in the stage's time.
type Merger interface {
	// CanMerge reports whether the fold can merge another (a fold that
	// keeps per-process state it cannot combine cannot). It must give the
	// same answer for the whole life of the fold.
	CanMerge() bool
	// Merge adds to the fold what other, a Fold of the same Folder reset
	// for the same snapshot, folded from the files after the fold's own:
	// the state must then be what folding other's rows after its own
	// would have made. other is reset before it is used again and must not
	// be kept.
	Merge(other Fold)
}

// StageSpec places a stage in a pipeline. Exactly one of Stage and Folder
// is set.
type StageSpec struct {
	// Name identifies the stage in logs and self-metrics.
	Name   string
	Stage  Stage
	Folder Folder
	// TimeMetric is the self-metric that reports the stage's wall-clock
	// time (the built-in stages use the original's WallClockTime* names).
	// When empty, the stage is an extension: the pipeline reports
	// Stage<Name>WallClockTime, Stage<Name>Metrics and Stage<Name>Errors.
	TimeMetric string
}
