package ctest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/wasmstage"
)

// sdkModules are the SDK test modules of testdata/: the same stage in C
// and in Rust.
var sdkModules = []string{"sdkc", "sdkrs"}

// sdkSnapshots have several processes, null cells (most servers have no
// slim), two formats of `show stat`, a process whose `show info` is
// garbage (no info row, but statistics rows), and 1284 rows (null bitmaps
// of several words). TestSDK also blanks `show info` keys of some
// processes, which no recorded snapshot has.
var sdkSnapshots = []string{
	"medium-defaults/incoming/1795507862",
	"dev4-two-snapshots/incoming/1795507783",
	"dev4-two-snapshots/incoming/1795507784",
	"single-defaults/incoming/1795507997",
	"dots-defaults/incoming/1795507806",
	"garbage-info/incoming/1795507806",
}

var sdkParams = map[string]string{"alpha": "-42", "beta": "two words", "other": "x"}

// recorder is an engine.Emitter that keeps the metrics.
type recorder struct{ metrics []engine.Metric }

func (r *recorder) Emit(m engine.Metric) { r.metrics = append(r.metrics, m) }

func lines(ms []engine.Metric) []string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s %q %q %q %v", m.Scope, m.Object, m.Server, m.Name, m.Value))
	}
	slices.Sort(out)
	return out
}

func loadSnapshot(t *testing.T, dir string) *engine.Snapshot {
	t.Helper()
	files, err := engine.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return engine.NewParser(nil).Parse(filepath.Base(dir), files)
}

// newStage creates a stage (closed at the end of the test) that logs to
// logger, or nowhere when logger is nil.
func newStage(t *testing.T, name, module string, params map[string]string, logger *slog.Logger) (*wasmstage.Stage, error) {
	s, err := wasmstage.New(context.Background(), wasmstage.Options{
		Name: name, Module: module, Timeout: 10 * time.Second, Params: params,
	}, logger)
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

// want computes, from the snapshot as the engine parsed it, the metrics
// the SDK test modules send (see testdata/sdkc.c); prev is the snapshot
// the instance was given before, or nil.
func want(snap, prev *engine.Snapshot) []engine.Metric {
	var ms []engine.Metric
	add := func(scope engine.Scope, object, server, name string, v float64) {
		ms = append(ms, engine.Metric{Scope: scope, Object: object, Server: server, Name: name, Value: v})
	}
	b := func(x bool) float64 {
		if x {
			return 1
		}
		return 0
	}
	st, info := &snap.Stats, &snap.Info
	scur, slim := st.Column("scur"), st.Column("slim")
	ts, err := strconv.ParseInt(snap.Name, 10, 64)
	if err != nil {
		ts = -1
	}
	add(engine.ScopeDaemon, "", "", "Rows", float64(st.Rows()))
	add(engine.ScopeDaemon, "", "", "Columns", b(scur != nil)+b(slim != nil))
	add(engine.ScopeDaemon, "", "", "Time", float64(ts))
	add(engine.ScopeDaemon, "", "", "NameLen", float64(len(snap.Name)))
	add(engine.ScopeDaemon, "", "", "Procs", float64(len(st.Procs)))
	add(engine.ScopeDaemon, "", "", "InfoRows", float64(len(info.Procs)))
	add(engine.ScopeDaemon, "", "", "MissingColumn", 1)
	add(engine.ScopeDaemon, "", "", "FirstColumnIsScur", b(scur != nil))
	add(engine.ScopeDaemon, "", "", "ParamCount", float64(len(sdkParams)))
	add(engine.ScopeDaemon, "", "", "ParamAlpha", -42)
	add(engine.ScopeDaemon, "", "", "ParamBetaLen", float64(len(sdkParams["beta"])))
	for r, proc := range info.Procs {
		for _, key := range []string{"CurrConns", "Idle_pct"} {
			if k := info.Key(key); k >= 0 && info.Has[k][r] {
				add(engine.ScopeProcess, proc, "", key, float64(info.Values[k][r]))
			}
		}
	}
	orNull := func(c *engine.Column, i int) float64 {
		if c == nil || c.Null(i) {
			return -1
		}
		return c.Values[i]
	}
	var kinds [4]float64
	for i := 0; i < st.Rows(); i++ {
		px, sv := st.PxName[i], st.SvName[i]
		kinds[st.Kind[i]&3]++
		add(engine.ScopeProcess, st.Procs[st.Proc[i]], "", "StatRows", 1)
		switch st.Kind[i] {
		case engine.KindFrontend:
			add(engine.ScopeFrontend, px, "", "scur", orNull(scur, i))
			add(engine.ScopeFrontend, px, "", "slim", orNull(slim, i))
			add(engine.ScopeFrontend, px, "", "proc", float64(st.Proc[i]))
		case engine.KindBackend:
			add(engine.ScopeBackend, px, "", "scur", orNull(scur, i))
			add(engine.ScopeBackend, px, "", "slim", orNull(slim, i))
			add(engine.ScopeBackend, px, "", "proc", float64(st.Proc[i]))
		case engine.KindServer:
			add(engine.ScopeServer, px, sv, "scur", orNull(scur, i))
			add(engine.ScopeAggrServer, "", sv, "slim", orNull(slim, i))
		}
	}
	add(engine.ScopeDaemon, "", "", "FindOK", 1)
	add(engine.ScopeDaemon, "", "", "StableID", 1)
	add(engine.ScopeDaemon, "", "", "SameRows", b(prev != nil && sameRows(&prev.Stats, st)))
	for k, name := range []string{"other", "frontend", "backend", "server"} {
		add(engine.ScopePath, "", "", "sdk.kind."+name, kinds[k])
	}
	return ms
}

// TestSDK runs the SDK test modules over recorded snapshots, one instance
// for all of them (ids stable, state kept), and compares their metrics
// with the ones computed here.
func TestSDK(t *testing.T) {
	for _, name := range sdkModules {
		t.Run(name, func(t *testing.T) {
			s, err := newStage(t, name, built(t, name), sdkParams, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := s.Columns(), []string{"scur", "nosuchcol", "slim"}; !slices.Equal(got, want) {
				t.Errorf("Columns() = %q, want %q", got, want)
			}
			var prev *engine.Snapshot
			sameSeen := false
			for _, dir := range sdkSnapshots {
				snap := loadSnapshot(t, filepath.Join(conformance, dir))
				blankInfo(snap)
				var rec recorder
				if err := s.Process(context.Background(), snap, &rec); err != nil {
					t.Fatalf("Process(%s) = %v", dir, err)
				}
				got, want := lines(rec.metrics), lines(want(snap, prev))
				if !slices.Equal(got, want) {
					t.Errorf("Process(%s): metrics differ\n%s", dir, diff(got, want))
				}
				sameSeen = sameSeen || (prev != nil && sameRows(&prev.Stats, &snap.Stats))
				prev = snap
			}
			if !sameSeen {
				t.Error("no two consecutive snapshots with the same rows: the same-rows flag was not tested set")
			}
		})
	}
}

// blankInfo removes CurrConns from the second process's `show info` row
// and Idle_pct from the last one's, as if they had not reported them.
func blankInfo(snap *engine.Snapshot) {
	info := &snap.Info
	if info.Rows() < 2 {
		return
	}
	for _, kr := range []struct {
		key string
		row int
	}{{"CurrConns", 1}, {"Idle_pct", info.Rows() - 1}} {
		if k := info.Key(kr.key); k >= 0 {
			info.Has[k][kr.row], info.Values[k][kr.row] = false, 0
		}
	}
}

func diff(got, want []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			fmt.Fprintf(&b, "  missing %s\n", l)
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			fmt.Fprintf(&b, "  extra   %s\n", l)
		}
	}
	return b.String()
}

// TestSDKErrors checks the SDKs' failure paths: an init that refuses to
// start (its reason in the start-up error), a process that returns an
// error (the error status, no metric), and in Rust a panic (a trap, the
// panic message quoted).
func TestSDKErrors(t *testing.T) {
	snap := loadSnapshot(t, filepath.Join(conformance, sdkSnapshots[0]))
	for _, name := range sdkModules {
		t.Run(name, func(t *testing.T) {
			module := built(t, name)
			_, err := newStage(t, name, module, map[string]string{"fail-init": "yes"}, nil)
			if err == nil || !strings.Contains(err.Error(), "init refused: fail-init") {
				t.Errorf("New(fail-init) = %v, want the module's reason", err)
			}
			_, err = newStage(t, name, module, map[string]string{"alpha": "x1"}, nil)
			if err == nil || !strings.Contains(err.Error(), "alpha") {
				t.Errorf("New(alpha = x1) = %v, want an error naming alpha", err)
			}

			s, err := newStage(t, name, module, map[string]string{"fail-process": "yes"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var rec recorder
			err = s.Process(context.Background(), snap, &rec)
			if !errors.Is(err, wasmstage.ErrGuest) || !strings.Contains(err.Error(), "process refused: fail-process") {
				t.Errorf("Process(fail-process) = %v, want ErrGuest with the module's message", err)
			}
			if len(rec.metrics) != 0 {
				t.Errorf("Process(fail-process) emitted %v", lines(rec.metrics))
			}

			if name != "sdkrs" {
				return
			}
			s, err = newStage(t, name, module, map[string]string{"panic": "yes"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Process(context.Background(), snap, &rec)
			if !errors.Is(err, wasmstage.ErrTrap) || !strings.Contains(err.Error(), "index out of bounds") {
				t.Errorf("Process(panic) = %v, want ErrTrap quoting the panic message", err)
			}
		})
	}
}

// sameRows reports whether two snapshots have the same statistics rows in
// the same order: what the host's same-rows flag says (docs/ABI.md 3.1).
func sameRows(a, b *engine.StatTable) bool {
	return slices.Equal(a.Procs, b.Procs) && slices.Equal(a.Proc, b.Proc) && slices.Equal(a.Kind, b.Kind) &&
		slices.Equal(a.PxName, b.PxName) && slices.Equal(a.SvName, b.SvName)
}
