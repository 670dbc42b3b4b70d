package spool

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// ErrClosed is returned by [Watcher.Next] once [Watcher.Run] has returned.
var ErrClosed = errors.New("spool watcher stopped")

// rewatchInterval is how often Run tries to watch the directory again after
// it disappeared.
const rewatchInterval = time.Second

// Watcher hands the snapshot directories of one spool directory to workers.
type Watcher struct {
	dir     string
	logger  *slog.Logger
	rewatch time.Duration

	mu      sync.Mutex
	queue   nameHeap
	out     map[string]bool // known names: true when handed out, false when queued
	wake    chan struct{}   // closed (and replaced) when the queue grows or Run stops
	started bool
	stopped bool
}

// NewWatcher returns a watcher of dir, which must be an existing directory.
// It starts nothing; call [Watcher.Run]. A nil logger discards the log.
func NewWatcher(dir string, logger *slog.Logger) (*Watcher, error) {
	if dir == "" {
		return nil, errors.New("spool: empty directory name")
	}
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("spool: %s is not a directory", dir)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Watcher{
		dir:     dir,
		logger:  logger.With("spool", dir),
		rewatch: rewatchInterval,
		out:     make(map[string]bool),
		wake:    make(chan struct{}),
	}, nil
}

// Dir returns the watched directory.
func (w *Watcher) Dir() string { return w.dir }

// Run queues the snapshot directories present in the spool, then watches it
// for new ones until ctx is done, and returns nil. It returns an error if
// the directory cannot be watched or read at start.
func (w *Watcher) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return errors.New("spool: Run called more than once")
	}
	w.started = true
	w.mu.Unlock()
	defer w.stop()

	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("spool: watch %s: %w", w.dir, err)
	}
	defer fw.Close()
	// Watch first, then scan: a snapshot arriving in between is seen twice,
	// and queued once.
	if err := fw.Add(w.dir); err != nil {
		return fmt.Errorf("spool: watch %s: %w", w.dir, err)
	}
	if err := w.scan(); err != nil {
		return err
	}
	return w.watch(ctx, fw.Events, fw.Errors, func() error { return fw.Add(w.dir) })
}

// watch handles fsnotify's events and errors until ctx is done. add watches
// the directory again after it disappeared.
func (w *Watcher) watch(ctx context.Context, events <-chan fsnotify.Event, errs <-chan error, add func() error) error {
	var retry <-chan time.Time // ticks while the directory is not watched
	var ticker *time.Ticker
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	lost := func() {
		if ticker == nil {
			w.logger.Warn("spool directory disappeared; waiting for it to come back")
			ticker = time.NewTicker(w.rewatch)
			retry = ticker.C
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return fmt.Errorf("spool: watch %s: event channel closed", w.dir)
			}
			if ev.Name == w.dir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				lost()
				continue
			}
			w.event(ev)
		case err, ok := <-errs:
			if !ok {
				return fmt.Errorf("spool: watch %s: error channel closed", w.dir)
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.logger.Warn("spool watch overflowed; rescanning", "err", err)
			} else {
				w.logger.Error("spool watch failed; rescanning", "err", err)
			}
			if err := w.scan(); err != nil {
				w.logger.Error("spool rescan failed", "err", err)
				if errors.Is(err, fs.ErrNotExist) {
					lost()
				}
			}
		case <-retry:
			if err := add(); err != nil {
				continue
			}
			if err := w.scan(); err != nil {
				w.logger.Error("spool rescan failed", "err", err)
				continue
			}
			w.logger.Info("spool directory is back; watching it again")
			ticker.Stop()
			ticker, retry = nil, nil
		}
	}
}

// event queues the snapshot directory an event reports as created or
// renamed in.
func (w *Watcher) event(ev fsnotify.Event) {
	if !ev.Has(fsnotify.Create) || filepath.Dir(ev.Name) != w.dir {
		return
	}
	name := filepath.Base(ev.Name)
	if !IsSnapshotName(name) {
		return
	}
	fi, err := os.Stat(ev.Name)
	if err != nil || !fi.IsDir() {
		return // a plain file, or gone already
	}
	w.add([]string{name})
}

// scan queues every snapshot directory in the spool that is not known yet.
func (w *Watcher) scan() error {
	names, err := list(w.dir)
	if err != nil {
		return fmt.Errorf("spool: scan %s: %w", w.dir, err)
	}
	w.add(names)
	return nil
}

// add queues the names that are neither queued nor handed out.
func (w *Watcher) add(names []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	grew := false
	for _, name := range names {
		if _, known := w.out[name]; known {
			continue
		}
		w.out[name] = false
		heap.Push(&w.queue, name)
		grew = true
	}
	if grew {
		w.broadcast()
	}
}

// broadcast wakes every waiting Next. w.mu is held.
func (w *Watcher) broadcast() {
	close(w.wake)
	w.wake = make(chan struct{})
}

func (w *Watcher) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.broadcast()
}

// Next returns the name of the oldest queued snapshot directory (its base
// name, e.g. "1700000000"), waiting until there is one, ctx is done, or Run
// has returned ([ErrClosed]). The caller must call Done (or Retry) with it.
func (w *Watcher) Next(ctx context.Context) (string, error) {
	for {
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return "", ErrClosed
		}
		if w.queue.Len() == 0 {
			wake := w.wake
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-wake:
			}
			continue
		}
		name := heap.Pop(&w.queue).(string)
		if out, known := w.out[name]; !known || out {
			w.mu.Unlock() // a stale entry: handed out meanwhile or forgotten
			continue
		}
		w.out[name] = true
		w.mu.Unlock()

		if _, err := os.Stat(filepath.Join(w.dir, name)); errors.Is(err, fs.ErrNotExist) {
			w.logger.Debug("snapshot vanished before processing", "snapshot", name)
			w.Done(name, false)
			continue
		}
		if err := ctx.Err(); err != nil {
			w.Retry(name)
			return "", err
		}
		return name, nil
	}
}

// Done reports that the worker is finished with name, handed out by Next.
// delivered = true: whatever consumes the spool has it all; Done removes
// its directory (a failure to remove it is logged: the snapshot would be
// handed out again after a restart). delivered = false: the directory is
// left in the spool for a later attempt; it is queued again when it is
// seen anew (the next start), or at once by Retry.
func (w *Watcher) Done(name string, delivered bool) {
	if delivered && IsSnapshotName(name) {
		if err := os.RemoveAll(filepath.Join(w.dir, name)); err != nil {
			w.logger.Error("delivered snapshot not removed from the spool: it will be handed out again after a restart", "snapshot", name, "err", err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.out[name] {
		delete(w.out, name)
	}
}

// Retry queues name again, to be handed out by Next: processing failed
// transiently and its directory is still in the spool. It may be called
// instead of Done for a name handed out by Next, or after Done. The queue
// is in timestamp order, so a retried snapshot comes before newer ones; wait
// before calling Retry if the failure may repeat at once.
func (w *Watcher) Retry(name string) {
	if !IsSnapshotName(name) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if out, known := w.out[name]; known && !out {
		return // queued already
	}
	w.out[name] = false
	heap.Push(&w.queue, name)
	w.broadcast()
}

// Queued returns the number of snapshots waiting to be handed out.
func (w *Watcher) Queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, out := range w.out {
		if !out {
			n++
		}
	}
	return n
}

// Count returns the number of snapshot directories in dir: directories
// whose name is all ASCII digits.
func Count(dir string) (int, error) {
	names, err := list(dir)
	if err != nil {
		return 0, fmt.Errorf("spool: count snapshots in %s: %w", dir, err)
	}
	return len(names), nil
}

// list returns the names of the snapshot directories in dir.
func list(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if !IsSnapshotName(name) {
			continue
		}
		isDir := e.IsDir()
		if !isDir && e.Type()&fs.ModeSymlink != 0 {
			fi, err := os.Stat(filepath.Join(dir, name))
			isDir = err == nil && fi.IsDir()
		}
		if isDir {
			names = append(names, name)
		}
	}
	return names, nil
}

// maxName is the largest snapshot name: a time in seconds that fits an
// int64, as the engine, the counters and the records read it.
const maxName = "9223372036854775807"

// IsSnapshotName reports whether name is a snapshot directory's name: one to
// 19 ASCII digits, at most maxName. It is the one rule of snapshot names
// (engine.IsTimestamp is it too).
func IsSnapshotName(name string) bool {
	if name == "" || len(name) > len(maxName) || len(name) == len(maxName) && name > maxName {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return false
		}
	}
	return true
}

// Less orders snapshot names by the number they spell, then by the names
// themselves (so "010" and "10" have a fixed order).
func Less(a, b string) bool {
	ta, tb := trimZeros(a), trimZeros(b)
	if len(ta) != len(tb) {
		return len(ta) < len(tb)
	}
	if ta != tb {
		return ta < tb
	}
	return a < b
}

func trimZeros(s string) string {
	i := 0
	for i < len(s)-1 && s[i] == '0' {
		i++
	}
	return s[i:]
}

// nameHeap is a min-heap of snapshot names in Less order.
type nameHeap []string

func (h nameHeap) Len() int           { return len(h) }
func (h nameHeap) Less(i, j int) bool { return Less(h[i], h[j]) }
func (h nameHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nameHeap) Push(x any)        { *h = append(*h, x.(string)) }
func (h *nameHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	*h = old[:n-1]
	return x
}
