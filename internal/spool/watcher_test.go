package spool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// startWatcher runs a watcher of dir until the test ends.
func startWatcher(t *testing.T, dir string) (*Watcher, context.CancelFunc) {
	t.Helper()
	w, err := NewWatcher(dir, nil)
	if err != nil {
		t.Fatalf("NewWatcher(%q) = %v", dir, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return w, cancel
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

// next calls w.Next with a timeout and fails the test on error.
func next(t *testing.T, w *Watcher) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	name, err := w.Next(ctx)
	if err != nil {
		t.Fatalf("Next = %q, %v", name, err)
	}
	return name
}

// expectNothing fails if w hands anything out within d.
func expectNothing(t *testing.T, w *Watcher, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if name, err := w.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %q, %v, want nothing (context.DeadlineExceeded)", name, err)
	}
}

func TestNewWatcherChecksDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"", filepath.Join(dir, "missing"), file} {
		if _, err := NewWatcher(d, nil); err == nil {
			t.Errorf("NewWatcher(%q) = nil error, want one", d)
		}
	}
	w, err := NewWatcher(dir+"/", nil)
	if err != nil {
		t.Fatalf("NewWatcher(%q) = %v", dir+"/", err)
	}
	if w.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", w.Dir(), dir)
	}
}

func TestLess(t *testing.T) {
	sorted := []string{"0", "00", "5", "9", "010", "10", "99", "100", "999999999", "1700000000", "1700000010"}
	for i := range sorted {
		for j := range sorted {
			if got, want := Less(sorted[i], sorted[j]), i < j; got != want {
				t.Errorf("Less(%q, %q) = %v, want %v", sorted[i], sorted[j], got, want)
			}
		}
	}
	for _, tt := range []struct {
		name string
		want bool
	}{{"1700000000", true}, {"0", true}, {"", false}, {"17a", false}, {"-1", false}, {"1.5", false}, {"١٢", false},
		// A time that fits an int64, as the engine and the counters read it.
		{"9223372036854775807", true}, {"0009223372036854775", true}, {"9223372036854775808", false}, {"12345678901234567890", false}} {
		if got := IsSnapshotName(tt.name); got != tt.want {
			t.Errorf("IsSnapshotName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestStartupScanInOrder(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := range 1000 {
		want = append(want, strconv.Itoa(1700000000+10*i))
	}
	want = append(want, "5", "42") // shorter numbers come first
	shuffled := slices.Clone(want)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, name := range shuffled {
		mkdir(t, filepath.Join(dir, name))
	}
	// Not snapshots.
	if err := os.WriteFile(filepath.Join(dir, "1600000000"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mkdir(t, filepath.Join(dir, "abc"))
	mkdir(t, filepath.Join(dir, "1600000000.tmp"))
	slices.SortFunc(want, func(a, b string) int {
		if Less(a, b) {
			return -1
		}
		return 1
	})
	if n, err := Count(dir); err != nil || n != len(want) {
		t.Errorf("Count = %d, %v, want %d", n, err, len(want))
	}

	w, _ := startWatcher(t, dir)
	var got []string
	for range want {
		name := next(t, w)
		got = append(got, name)
		w.Done(name, false)
	}
	if !slices.Equal(got, want) {
		t.Errorf("handed out %d names, out of order or not the expected ones; first %q, want first %q",
			len(got), got[:5], want[:5])
	}
	expectNothing(t, w, 100*time.Millisecond)
}

func TestIgnoresFilesAndNonDigitDirs(t *testing.T) {
	dir := t.TempDir()
	w, _ := startWatcher(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "1700000001"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mkdir(t, filepath.Join(dir, "abc"))
	mkdir(t, filepath.Join(dir, "17000a0002"))
	mkdir(t, filepath.Join(dir, ".1700000003"))
	mkdir(t, filepath.Join(dir, "1700000004"))
	if got := next(t, w); got != "1700000004" {
		t.Errorf("Next = %q, want 1700000004", got)
	}
	expectNothing(t, w, 100*time.Millisecond)
}

func TestPicksUpCreatedDir(t *testing.T) {
	dir := t.TempDir()
	w, _ := startWatcher(t, dir)
	expectNothing(t, w, 50*time.Millisecond)
	mkdir(t, filepath.Join(dir, "1700000000"))
	if got := next(t, w); got != "1700000000" {
		t.Errorf("Next = %q, want 1700000000", got)
	}
}

func TestPicksUpRenamedDir(t *testing.T) {
	base := t.TempDir()
	dir, tmp := filepath.Join(base, "incoming"), filepath.Join(base, "incoming.tmp")
	mkdir(t, dir)
	mkdir(t, tmp)
	w, _ := startWatcher(t, dir)
	snap := filepath.Join(tmp, "1700000010")
	mkdir(t, snap)
	if err := os.WriteFile(filepath.Join(snap, "haproxy.sock_stat"), []byte("# pxname,svname\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(snap, filepath.Join(dir, "1700000010")); err != nil {
		t.Fatal(err)
	}
	if got := next(t, w); got != "1700000010" {
		t.Errorf("Next = %q, want 1700000010", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "1700000010", "haproxy.sock_stat")); err != nil {
		t.Errorf("renamed snapshot lost its file: %v", err)
	}
}

func TestRetryAndDone(t *testing.T) {
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "1700000000"))
	mkdir(t, filepath.Join(dir, "1700000010"))
	w, _ := startWatcher(t, dir)

	a := next(t, w)
	if a != "1700000000" {
		t.Fatalf("Next = %q, want 1700000000", a)
	}
	if b := next(t, w); b != "1700000010" {
		t.Fatalf("Next = %q, want 1700000010", b)
	}
	// Outstanding: neither a rescan nor an event queues them again.
	if err := w.scan(); err != nil {
		t.Fatal(err)
	}
	w.event(fsnotify.Event{Name: filepath.Join(dir, a), Op: fsnotify.Create})
	expectNothing(t, w, 50*time.Millisecond)

	w.Retry(a)
	w.Retry(a) // twice: still queued once
	if got := next(t, w); got != a {
		t.Errorf("Next after Retry = %q, want %q", got, a)
	}
	expectNothing(t, w, 50*time.Millisecond)
	// Delivered: Done removes it.
	w.Done("1700000010", true)
	if _, err := os.Stat(filepath.Join(dir, "1700000010")); !os.IsNotExist(err) {
		t.Errorf("delivered snapshot still in the spool after Done: %v", err)
	}

	// Not delivered: the directory stays, eligible again only when seen
	// anew.
	w.Done(a, false)
	if _, err := os.Stat(filepath.Join(dir, a)); err != nil {
		t.Errorf("snapshot not delivered is gone after Done: %v", err)
	}
	expectNothing(t, w, 50*time.Millisecond)
	if err := w.scan(); err != nil {
		t.Fatal(err)
	}
	if got := next(t, w); got != a {
		t.Errorf("Next after Done and a rescan = %q, want %q", got, a)
	}
	// Retry after Done queues it again too.
	w.Done(a, false)
	w.Retry(a)
	if got := next(t, w); got != a {
		t.Errorf("Next after Done and Retry = %q, want %q", got, a)
	}
	if q := w.Queued(); q != 0 {
		t.Errorf("Queued() = %d, want 0", q)
	}
}

func TestVanishedDirSkipped(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"1700000000", "1700000010", "1700000020"} {
		mkdir(t, filepath.Join(dir, name))
	}
	w, _ := startWatcher(t, dir)
	deadline := time.Now().Add(5 * time.Second)
	for w.Queued() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("Queued() = %d after start, want 3", w.Queued())
		}
		time.Sleep(time.Millisecond)
	}
	if err := os.Remove(filepath.Join(dir, "1700000000")); err != nil {
		t.Fatal(err)
	}
	if got := next(t, w); got != "1700000010" {
		t.Errorf("Next = %q, want 1700000010 (1700000000 vanished)", got)
	}
	if got := next(t, w); got != "1700000020" {
		t.Errorf("Next = %q, want 1700000020", got)
	}
	// It may come back and is then handed out again.
	mkdir(t, filepath.Join(dir, "1700000000"))
	if got := next(t, w); got != "1700000000" {
		t.Errorf("Next = %q, want 1700000000 (back again)", got)
	}
}

func TestConcurrentConsumersNoDuplicates(t *testing.T) {
	base := t.TempDir()
	dir, tmp := filepath.Join(base, "incoming"), filepath.Join(base, "incoming.tmp")
	mkdir(t, dir)
	mkdir(t, tmp)
	const before, during = 300, 300
	for i := range before {
		mkdir(t, filepath.Join(dir, strconv.Itoa(1700000000+i)))
	}
	w, _ := startWatcher(t, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var (
		mu   sync.Mutex
		seen = make(map[string]int)
		wg   sync.WaitGroup
	)
	errs := make(chan error, 16)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				name, err := w.Next(ctx)
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				mu.Lock()
				seen[name]++
				total := len(seen)
				mu.Unlock()
				w.Done(name, true)
				if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
					errs <- fmt.Errorf("%s still there after Done: %v", name, err)
				}
				if total == before+during {
					cancel()
				}
			}
		}()
	}
	// Meanwhile: new snapshots, half created in place, half renamed in, and
	// rescans racing with them.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range during {
			name := strconv.Itoa(1800000000 + i)
			var err error
			if i%2 == 0 {
				err = os.Mkdir(filepath.Join(dir, name), 0o755)
			} else if err = os.Mkdir(filepath.Join(tmp, name), 0o755); err == nil {
				err = os.Rename(filepath.Join(tmp, name), filepath.Join(dir, name))
			}
			if err != nil {
				errs <- err
				return
			}
			if i%50 == 0 {
				if err := w.scan(); err != nil {
					errs <- err
				}
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(seen) != before+during {
		t.Errorf("handed out %d distinct snapshots, want %d", len(seen), before+during)
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("%s handed out %d times, want once", name, n)
		}
	}
}

func TestRescanAfterOverflow(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWatcher(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	events, errs := make(chan fsnotify.Event), make(chan error)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.watch(ctx, events, errs, func() error { return nil }) }()
	defer func() {
		cancel()
		<-done
	}()

	// Created without an event reaching the watcher, as if lost in an
	// overflow.
	mkdir(t, filepath.Join(dir, "1700000000"))
	expectNothing(t, w, 50*time.Millisecond)
	errs <- fsnotify.ErrEventOverflow
	if got := next(t, w); got != "1700000000" {
		t.Errorf("Next after an overflow = %q, want 1700000000", got)
	}
	mkdir(t, filepath.Join(dir, "1700000010"))
	errs <- errors.New("some watcher error")
	if got := next(t, w); got != "1700000010" {
		t.Errorf("Next after a watcher error = %q, want 1700000010", got)
	}
	// Events for plain files, wrong names, other directories and other
	// operations are ignored.
	if err := os.WriteFile(filepath.Join(dir, "1700000020"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mkdir(t, filepath.Join(dir, "1700000030"))
	for _, ev := range []fsnotify.Event{
		{Name: filepath.Join(dir, "1700000020"), Op: fsnotify.Create},
		{Name: filepath.Join(dir, "1700000030"), Op: fsnotify.Write},
		{Name: filepath.Join(dir, "1700000040"), Op: fsnotify.Create}, // does not exist
		{Name: filepath.Join(dir, "1700000030", "x"), Op: fsnotify.Create},
	} {
		events <- ev
	}
	expectNothing(t, w, 50*time.Millisecond)
	events <- fsnotify.Event{Name: filepath.Join(dir, "1700000030"), Op: fsnotify.Create}
	if got := next(t, w); got != "1700000030" {
		t.Errorf("Next = %q, want 1700000030", got)
	}
}

func TestDirRemovedAndRecreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "incoming")
	mkdir(t, dir)
	w, err := NewWatcher(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.rewatch = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	mkdir(t, filepath.Join(dir, "1700000000"))
	if got := next(t, w); got != "1700000000" {
		t.Fatalf("Next = %q, want 1700000000", got)
	}
	w.Done("1700000000", false)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	mkdir(t, dir)
	mkdir(t, filepath.Join(dir, "1700000010"))
	if got := next(t, w); got != "1700000010" {
		t.Errorf("Next after the spool was recreated = %q, want 1700000010", got)
	}
	// And it is watched again.
	mkdir(t, filepath.Join(dir, "1700000020"))
	if got := next(t, w); got != "1700000020" {
		t.Errorf("Next = %q, want 1700000020", got)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWatcher(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	// A waiting Next learns that the watcher stopped.
	nextErr := make(chan error, 1)
	go func() {
		_, err := w.Next(context.Background())
		nextErr <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of cancel")
	}
	select {
	case err := <-nextErr:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("waiting Next = %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("waiting Next did not return after Run stopped")
	}
	if _, err := w.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after stop = %v, want ErrClosed", err)
	}
	if err := w.Run(context.Background()); err == nil {
		t.Error("second Run = nil, want an error")
	}
}

func TestCount(t *testing.T) {
	dir := t.TempDir()
	for i := range 7 {
		mkdir(t, filepath.Join(dir, fmt.Sprint(1700000000+i)))
	}
	mkdir(t, filepath.Join(dir, "x1"))
	if err := os.WriteFile(filepath.Join(dir, "1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "1700000000"), filepath.Join(dir, "2")); err != nil {
		t.Fatal(err)
	}
	if n, err := Count(dir); err != nil || n != 8 {
		t.Errorf("Count = %d, %v, want 8 (7 directories and a link to one)", n, err)
	}
	if _, err := Count(filepath.Join(dir, "missing")); err == nil {
		t.Error("Count(missing) = nil error, want one")
	}
}
