package counters

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Defaults of Options.
const (
	// DefaultExpiry is how long, in snapshot seconds, the state remembers
	// what it no longer sees: the spool's default backlog span (queue-size
	// 360 × pull-interval 10 s).
	DefaultExpiry = 3600
	// DefaultMaxVersions bounds the superseded offset tables a part keeps
	// for replays.
	DefaultMaxVersions = 8
	// departedGrace is how many snapshots in a row an instance may be
	// present without one of its workers before the worker's last values
	// are folded into the instance's carried values: a worker missing from
	// one snapshot and back in the next is neither lost nor counted twice.
	departedGrace = 2
)

// StateFile is the name of the state file in Options.Dir; the previous
// content of a state file found corrupt is kept as StateFile + ".corrupt".
const StateFile = "state"

// Options configures a Store.
type Options struct {
	// Dir holds the state file; it is created if missing. "" keeps the
	// state in memory only (tests, `haproxystats-engine test`).
	Dir string
	// Expiry, in seconds of snapshot time: an instance absent from the
	// snapshots, an object no worker has, a part not advanced and the
	// offsets of past snapshots are forgotten after it. 0 means
	// DefaultExpiry.
	Expiry int64
	// MaxVersions bounds the superseded offset tables kept per part for
	// replays; 0 means DefaultMaxVersions.
	MaxVersions int
	// Logger receives restarts, resets and state file problems; nil
	// discards them.
	Logger *slog.Logger
}

// Outcome tells how Advance found a sample's offsets.
type Outcome uint8

const (
	// Advanced: the snapshot was newer than the part's state, which it
	// advanced.
	Advanced Outcome = iota + 1
	// Repeated: the snapshot was not newer than the state, and the offsets
	// in force when it was advanced (or, for one never advanced, for the
	// snapshots around it) were still known.
	Repeated
	// Approximated: the snapshot was older than every offset table kept;
	// it got the oldest one kept.
	Approximated
)

func (o Outcome) String() string {
	switch o {
	case Advanced:
		return "advanced"
	case Repeated:
		return "repeated"
	case Approximated:
		return "approximated"
	}
	return "none"
}

// Store is the state that makes cumulative counters survive reloads: see
// the package documentation for the rules and the ordering contract.
type Store struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	pending []int64       // snapshots handed out and not Done, ascending
	changed chan struct{} // closed and replaced when pending or a part's time changes
	parts   map[string]*Part
	loaded  map[string]*partState // read from the state file, not claimed by Part yet

	gen     atomic.Uint64 // bumped by every change of a part's state
	wmu     sync.Mutex    // serializes writes of the state file
	written uint64        // gen of the state last written
}

// Open reads the state file of opts.Dir (creating the directory if
// needed) and returns the Store. A state file that cannot be read or
// decoded is logged as an error naming it, renamed to StateFile+".corrupt"
// and the store starts empty: only a directory that cannot be created is
// an error. Open starts nothing.
func Open(opts Options) (*Store, error) {
	if opts.Expiry <= 0 {
		opts.Expiry = DefaultExpiry
	}
	if opts.MaxVersions <= 0 {
		opts.MaxVersions = DefaultMaxVersions
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{opts: opts, log: log, changed: make(chan struct{}), parts: make(map[string]*Part), loaded: make(map[string]*partState)}
	if opts.Dir == "" {
		return s, nil
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("counters: create %s: %w", opts.Dir, err)
	}
	removeTemps(opts.Dir, log)
	path := filepath.Join(opts.Dir, StateFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, nil
	case err == nil:
		parts, derr := decodeState(data)
		if derr == nil {
			for _, ps := range parts {
				s.loaded[ps.name] = ps
			}
			log.Info("counters state read", "file", path, "parts", len(parts))
			return s, nil
		}
		err = derr
	}
	keep := path + ".corrupt"
	if rerr := os.Rename(path, keep); rerr != nil {
		log.Error("counters state unusable, starting empty; could not keep a copy", "file", path, "error", err, "rename_error", rerr)
	} else {
		log.Error("counters state unusable, starting empty; the file was kept", "file", path, "kept_as", keep, "error", err)
	}
	return s, nil
}

// removeTemps removes temporary state files a crash left behind.
func removeTemps(dir string, log *slog.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), StateFile+".tmp-") {
			p := filepath.Join(dir, e.Name())
			if err := os.Remove(p); err != nil {
				log.Warn("remove temporary counters state", "file", p, "error", err)
			}
		}
	}
}

// Part returns the part name (one per kind of object a fold aggregates:
// "frontend", "backend", "server", "daemon" ...), whose samples carry the
// counters named. The part's state read from the state file is used; if
// it was kept with other counters, the values of counters no longer
// listed are dropped and new counters start at 0. Calling Part again with
// the same name and counters returns the same Part; with other counters it
// is an error.
func (s *Store) Part(name string, counters []string) (*Part, error) {
	if name == "" {
		return nil, errors.New("counters: empty part name")
	}
	if len(counters) == 0 {
		return nil, fmt.Errorf("counters: part %q: no counter", name)
	}
	seen := make(map[string]bool, len(counters))
	for _, c := range counters {
		if c == "" || seen[c] {
			return nil, fmt.Errorf("counters: part %q: counter %q empty or listed twice", name, c)
		}
		seen[c] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.parts[name]; ok {
		if !slices.Equal(p.counters, counters) {
			return nil, fmt.Errorf("counters: part %q already has counters %q, not %q", name, p.counters, counters)
		}
		return p, nil
	}
	st := s.loaded[name]
	delete(s.loaded, name)
	if st == nil {
		st = newPartState(name, counters)
	} else if !slices.Equal(st.counters, counters) {
		s.log.Info("counters part read with other counters: dropped ones are forgotten, new ones start at 0",
			"part", name, "was", st.counters, "now", counters)
		st.recount(counters)
	}
	p := &Part{s: s, name: name, counters: slices.Clone(counters), st: st}
	p.t.Store(st.t)
	s.parts[name] = p
	return p, nil
}

// Pending tells the store that snapshot t was handed out for processing:
// until Done(t), every part's Advance of a later snapshot waits for that
// part to advance t. Calls must follow the order in which snapshots are
// handed out (hold one lock across taking a snapshot from the queue and
// calling Pending). A t not newer than some part's state is a replay for
// that part and holds nothing up there.
func (s *Store) Pending(t int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := slices.BinarySearch(s.pending, t)
	if !found {
		s.pending = slices.Insert(s.pending, i, t)
	}
}

// Done tells the store that the processing of snapshot t ended, whether
// every part advanced it or not (a failed or abandoned snapshot): parts
// that did not advance t never will, and later snapshots stop waiting for
// it. It then writes the state file if the state changed since it was last
// written, and returns the write's error (the state stays in memory and
// the next Done tries again). Call it before the snapshot's directory is
// removed from the spool, so that a crash never loses a state that
// snapshots already removed depended on.
func (s *Store) Done(t int64) error {
	s.mu.Lock()
	if i, found := slices.BinarySearch(s.pending, t); found {
		s.pending = slices.Delete(s.pending, i, i+1)
		s.notifyLocked()
	}
	s.mu.Unlock()
	return s.Flush()
}

// Flush writes the state file if the state changed since it was last
// written (temporary file, fsync, rename, directory fsync). Safe for
// concurrent use; concurrent calls write once.
func (s *Store) Flush() error {
	if s.opts.Dir == "" {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	gen := s.gen.Load()
	if gen == s.written {
		return nil
	}
	data := s.encode()
	path := filepath.Join(s.opts.Dir, StateFile)
	if err := writeAtomic(s.opts.Dir, StateFile, data); err != nil {
		return fmt.Errorf("counters: write %s: %w", path, err)
	}
	s.written = gen
	return nil
}

// encode returns the state file's content: every part, claimed or only
// loaded (those not advanced for longer than Expiry are dropped), in name
// order. A loaded part is encoded under s.mu, which Part holds to claim
// it; a claimed part under its own lock.
func (s *Store) encode() []byte {
	type entry struct {
		name    string
		part    *Part
		encoded []byte
	}
	s.mu.Lock()
	var entries []entry
	var newest int64
	for name, p := range s.parts {
		entries = append(entries, entry{name: name, part: p})
		newest = max(newest, p.t.Load())
	}
	for name, st := range s.loaded {
		if newest-st.t > s.opts.Expiry {
			delete(s.loaded, name)
			continue
		}
		e := &encoder{}
		e.part(st)
		entries = append(entries, entry{name: name, encoded: e.b})
	}
	s.mu.Unlock()

	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	e := newEncoder()
	e.begin(len(entries))
	for _, en := range entries {
		if en.part == nil {
			e.b = append(e.b, en.encoded...)
			continue
		}
		en.part.mu.Lock()
		e.part(en.part.st)
		en.part.mu.Unlock()
	}
	return e.finish()
}

// Close writes the state file if it changed (Flush).
func (s *Store) Close() error { return s.Flush() }

func (s *Store) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitTurn returns when no snapshot handed out before t is still to be
// advanced by part p (or ctx ends).
func (s *Store) waitTurn(ctx context.Context, p *Part, t int64) error {
	for {
		s.mu.Lock()
		pt := p.t.Load()
		blocked := false
		i, _ := slices.BinarySearch(s.pending, pt+1)
		if i < len(s.pending) && s.pending[i] < t {
			blocked = true
		}
		ch := s.changed
		var waitFor int64
		if blocked {
			waitFor = s.pending[i]
		}
		s.mu.Unlock()
		if !blocked {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("counters: part %s: snapshot %d waiting for snapshot %d: %w", p.name, t, waitFor, ctx.Err())
		case <-ch:
		}
	}
}

// Part is the state of one kind of object: see Store.Part.
type Part struct {
	s        *Store
	name     string
	counters []string
	t        atomic.Int64 // st.t, readable without mu

	mu sync.Mutex
	st *partState
}

// Name returns the part's name.
func (p *Part) Name() string { return p.name }

// Advance computes the offsets of sample s, the part's sample of snapshot
// t (seconds since the epoch, the snapshot directory's name), into s (see
// Sample.Offset), and reports how it found them.
//
// A t newer than the part's state first waits until every earlier
// snapshot passed to Store.Pending and not yet Done has been advanced by
// this part (bounded by ctx: its end returns its error and advances
// nothing), then advances the state with the sample (the rules are in the
// package documentation). A t not newer than the state is a replay: the
// state does not change, and s gets the offsets recorded for t (Repeated),
// or the oldest recorded (Approximated). Offsets depend only on the state
// and the sample, so a snapshot processed again after a crash gets the
// same offsets whether or not the state written before the crash had
// advanced it.
//
// Advance is safe for concurrent use; calls for one part are serialized.
func (p *Part) Advance(ctx context.Context, t int64, s *Sample) (Outcome, error) {
	if s.part != p {
		return 0, fmt.Errorf("counters: part %s: sample of part %s", p.name, s.part.name)
	}
	if t <= 0 {
		return 0, fmt.Errorf("counters: part %s: snapshot time %d is not positive", p.name, t)
	}
	if t > p.t.Load() {
		if err := p.s.waitTurn(ctx, p, t); err != nil {
			return 0, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.st
	if t <= st.t {
		s.outcome = st.replay(t, s)
		return s.outcome, nil
	}
	st.advance(t, s, p.s.opts, p.s.log.With("part", p.name, "snapshot", t))
	p.t.Store(t)
	p.s.gen.Add(1)
	p.s.mu.Lock()
	p.s.notifyLocked()
	p.s.mu.Unlock()
	s.outcome = Advanced
	return Advanced, nil
}

// Size reports the bytes the part's state holds (its tables, not its key
// strings).
func (p *Part) Size() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.st
	n := int64(cap(st.keys))*16 + int64(len(st.ids))*24 + int64(cap(st.totals)+cap(st.spare))*8
	for _, in := range st.insts {
		n += int64(cap(in.lidOf)+cap(in.gidOf)+cap(in.freeL))*4 + int64(cap(in.lastSeen)+cap(in.carried))*8
		for _, w := range in.workers {
			n += int64(cap(w.last)) * 8
		}
	}
	for _, v := range st.versions {
		n += int64(cap(v.keys))*16 + int64(cap(v.vals))*8
	}
	return n
}
