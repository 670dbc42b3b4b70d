package engine

import (
	"context"
	"errors"
)

// Stage computes metrics from a snapshot.
//
// Process is called once per snapshot. It must treat snap as read-only and
// must not keep snap, its tables or its slices after returning. It emits
// every metric it computes through emit; a metric whose value is NaN is
// counted but not sent. Returning an error discards everything the stage
// emitted for this snapshot (the other stages' metrics are still sent);
// returning ErrSkip means the stage had nothing to do, so the pipeline
// reports no timing for it.
//
// A Stage value is used by one snapshot at a time unless it documents that
// it is safe for concurrent use; the built-in stages are.
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
// columns. When every stage of a pipeline implements it, the parser
// materialises only the union of those columns; otherwise all of them.
type ColumnUser interface {
	Columns() []string
}

// StageSpec places a stage in a pipeline.
type StageSpec struct {
	// Name identifies the stage in logs and self-metrics.
	Name  string
	Stage Stage
	// TimeMetric is the self-metric that reports the stage's wall-clock
	// time (the built-in stages use the original's WallClockTime* names).
	// When empty, the stage is an extension: the pipeline reports
	// Stage<Name>WallClockTime, Stage<Name>Metrics and Stage<Name>Errors.
	TimeMetric string
}
