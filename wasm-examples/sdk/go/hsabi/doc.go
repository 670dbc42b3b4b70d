// Package hsabi is the Go SDK for haproxystats WASM stages: it implements
// the guest side of docs/ABI.md (version 1) so that a stage is a plain Go
// function over decoded columns.
//
// A stage is a main package that registers itself from init and has an
// empty main:
//
//	func init() {
//		hsabi.Register(hsabi.Stage{
//			Columns: []string{"hrsp_5xx"},
//			Process: func(snap *hsabi.Snapshot, out *hsabi.Emitter) error {
//				out.Daemon("StatRows", float64(snap.Stats.Rows()))
//				return nil
//			},
//		})
//	}
//
//	func main() {}
//
// built as a WASI reactor with the standard Go toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o stage.wasm .
//
// # Lifecycle and state
//
// The host instantiates the module once (the Go runtime and every init
// function run in _initialize), calls Stage.Init with the options of the
// stage's configuration section, then Stage.Process once per snapshot, in
// timestamp order, never concurrently. Package-level variables keep their
// values from one snapshot to the next: that is how a stage computes
// deltas. When a call fails (an error, a panic, a timeout, running out of
// memory) the host discards the instance and creates a new one for the
// next snapshot: the state starts again from zero, as it does when the
// daemon restarts.
//
// # Lifetime of the data
//
// The slices of a Snapshot (column values, null bitmaps, the per-row
// slices) point into a buffer that the next call overwrites: copy what
// must outlive the call. Strings are ordinary Go strings and may be kept.
//
// # Names
//
// Proxy and server names are given in the form used in metric paths:
// every '.' already replaced by '_'. Names passed to the Emitter must not
// be empty and must not contain spaces or control characters; the host
// rejects the whole output of a call that breaks this rule.
package hsabi
