package pull

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/haproxy"
)

var (
	// ErrQueueFull is returned (wrapped) by Round when DstDir holds QueueSize
	// or more snapshot directories; the round was skipped.
	ErrQueueFull = errors.New("queue full")
	// ErrSnapshotExists is returned (wrapped) by Round when DstDir/<epoch>
	// already exists; it was left untouched and the round discarded.
	ErrSnapshotExists = errors.New("snapshot already exists")
	// ErrNoSockets is returned (wrapped) when a round finds nothing to pull:
	// no UNIX socket in SocketDir and no Servers.
	ErrNoSockets = errors.New("no stats socket to pull")
)

// commands are sent to every socket; suffix names the answer's file.
var commands = []struct{ cmd, suffix string }{
	{haproxy.ShowInfo, "_info"},
	{haproxy.ShowStat, "_stat"},
}

// Puller pulls statistics from HAProxy into the spool. Build it with New.
type Puller struct {
	cfg   Config
	log   *slog.Logger
	round sync.Mutex       // serializes Round
	now   func() time.Time // names Run's rounds; replaced in tests
}

// New validates cfg and returns a Puller. It touches neither the file system
// nor the network and starts no goroutine. A nil logger discards logs.
func New(cfg Config, logger *slog.Logger) (*Puller, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.Servers = slices.Clone(cfg.Servers)
	return &Puller{cfg: cfg, log: logger, now: time.Now}, nil
}

// Run pulls until ctx is cancelled, then returns nil; it returns an error
// only when it cannot start (DstDir or TmpDstDir cannot be created). Round
// failures are logged, not returned: the next round is tried on schedule.
func (p *Puller) Run(ctx context.Context) error {
	if err := p.prepare(); err != nil {
		return err
	}
	interval := p.cfg.PullInterval
	p.log.Info("pulling statistics",
		"socket_dir", p.cfg.SocketDir, "servers", len(p.cfg.Servers),
		"interval", interval, "pull_timeout", p.cfg.PullTimeout,
		"dst_dir", p.cfg.DstDir, "queue_size", p.cfg.QueueSize)

	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var slot int64 // grid point of the round about to run
	for {
		select {
		case <-ctx.Done():
			p.log.Info("stopped pulling")
			return nil
		case <-timer.C:
		}
		err := p.Round(ctx, p.now())
		if ctx.Err() != nil {
			p.log.Info("stopped pulling; round in flight abandoned, nothing committed", "err", err)
			return nil
		}
		p.report(err)

		next := int64(time.Since(start)/interval) + 1
		if skipped := next - slot - 1; skipped > 0 {
			p.log.Warn("round overran pull-interval; skipping rounds",
				"skipped", skipped, "interval", interval)
		}
		slot = next
		timer.Reset(time.Until(start.Add(time.Duration(next) * interval)))
	}
}

// report logs the outcome of one of Run's rounds, one line.
func (p *Puller) report(err error) {
	var re *RoundError
	switch {
	case err == nil:
	case errors.Is(err, ErrQueueFull):
		p.log.Warn("skipping round: spool full", "err", err)
	case errors.Is(err, ErrSnapshotExists):
		p.log.Warn("discarding round: snapshot directory exists", "err", err)
	case errors.As(err, &re):
		p.log.Error("pull round failed", "snapshot", re.Snapshot,
			"failed", strings.Join(re.FailedSockets(), ","), "err", err)
	default:
		p.log.Error("pull round failed", "err", err)
	}
}

// prepare creates DstDir and TmpDstDir and removes snapshot directories that
// an interrupted run left in TmpDstDir (never committed, so never complete).
func (p *Puller) prepare() error {
	for _, d := range []struct{ option, dir string }{
		{"dst-dir", p.cfg.DstDir}, {"tmp-dst-dir", p.cfg.TmpDstDir},
	} {
		if err := os.MkdirAll(d.dir, 0o755); err != nil {
			return fmt.Errorf("create %s %s: %w", d.option, d.dir, err)
		}
	}
	entries, err := os.ReadDir(p.cfg.TmpDstDir)
	if err != nil {
		return fmt.Errorf("read tmp-dst-dir: %w", err)
	}
	for _, e := range entries {
		if !isSnapshotName(e.Name()) {
			continue
		}
		path := filepath.Join(p.cfg.TmpDstDir, e.Name())
		if err := os.RemoveAll(path); err != nil {
			return fmt.Errorf("remove leftover %s: %w", path, err)
		}
		p.log.Info("removed uncommitted snapshot left by an earlier run", "dir", path)
	}
	return nil
}

// Round runs one round named after now (whole seconds since the epoch): see
// the package documentation. It returns nil when DstDir/<epoch> was
// committed, an error wrapping ErrQueueFull or ErrSnapshotExists when the
// round was skipped or discarded, a *RoundError when some socket failed, and
// ctx's error when ctx ended first. Nothing but a complete snapshot ever
// appears in DstDir.
func (p *Puller) Round(ctx context.Context, now time.Time) error {
	p.round.Lock()
	defer p.round.Unlock()
	started := time.Now()
	name := strconv.FormatInt(now.Unix(), 10)

	if err := p.ensureDir(p.cfg.DstDir, "dst-dir"); err != nil {
		return err
	}
	if err := p.ensureDir(p.cfg.TmpDstDir, "tmp-dst-dir"); err != nil {
		return err
	}
	n, err := countSnapshots(p.cfg.DstDir)
	if err != nil {
		return err
	}
	if n >= p.cfg.QueueSize {
		return fmt.Errorf("dst-dir %s holds %d snapshots, queue-size is %d: %w",
			p.cfg.DstDir, n, p.cfg.QueueSize, ErrQueueFull)
	}
	final := filepath.Join(p.cfg.DstDir, name)
	if _, err := os.Lstat(final); err == nil {
		return fmt.Errorf("snapshot %s: %w", final, ErrSnapshotExists)
	}

	ctx, cancel := p.roundContext(ctx)
	defer cancel()
	sockets, err := p.sockets()
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", name, err)
	}
	tmp := filepath.Join(p.cfg.TmpDstDir, name)
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("empty %s: %w", tmp, err)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return fmt.Errorf("snapshot %s: %w", name, err)
	}
	committed := false
	defer func() {
		if !committed {
			if err := os.RemoveAll(tmp); err != nil {
				p.log.Error("cannot remove uncommitted snapshot", "dir", tmp, "err", err)
			}
		}
	}()

	var size sizeCounter
	var mu sync.Mutex
	var answers map[string][]byte
	if p.cfg.Handoff != nil {
		answers = make(map[string][]byte, 2*len(sockets))
	}
	failed := p.pull(ctx, sockets, func(file string, data []byte) error {
		size.add(len(data))
		if answers != nil {
			mu.Lock()
			answers[file] = data
			mu.Unlock()
			return nil
		}
		return writeFile(filepath.Join(tmp, file), data)
	})
	if len(failed) > 0 {
		return &RoundError{Snapshot: name, Sockets: len(sockets), Failed: failed}
	}
	if err := ctx.Err(); err != nil {
		// Every answer arrived, but too late (or we are stopping).
		return fmt.Errorf("snapshot %s: %w", name, err)
	}
	if answers != nil {
		if p.cfg.Handoff(name, answers) {
			p.log.Debug("snapshot handed over in memory", "snapshot", name, "bytes", size.total())
			return nil
		}
		for file, data := range answers {
			if err := writeFile(filepath.Join(tmp, file), data); err != nil {
				return fmt.Errorf("snapshot %s: %w", name, err)
			}
		}
	}
	if err := renameNoReplace(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("snapshot %s: %w", final, ErrSnapshotExists)
		}
		return fmt.Errorf("commit snapshot %s: %w", name, err)
	}
	committed = true
	if err := syncDir(p.cfg.DstDir); err != nil {
		p.log.Warn("cannot fsync dst-dir", "dir", p.cfg.DstDir, "err", err)
	}
	p.log.Debug("snapshot committed", "snapshot", name, "sockets", len(sockets),
		"bytes", size.total(), "took", time.Since(started))
	return nil
}

// Commit writes answers as snapshot name into the spool the way a round
// does (temporary directory, fsync, rename), for a snapshot that was taken
// in memory and could not be handed on. An existing DstDir/<name> is left
// untouched (ErrSnapshotExists).
func (p *Puller) Commit(name string, answers map[string][]byte) error {
	if !isSnapshotName(name) {
		return fmt.Errorf("commit snapshot %q: not a snapshot name", name)
	}
	p.round.Lock()
	defer p.round.Unlock()
	if err := p.ensureDir(p.cfg.DstDir, "dst-dir"); err != nil {
		return err
	}
	if err := p.ensureDir(p.cfg.TmpDstDir, "tmp-dst-dir"); err != nil {
		return err
	}
	tmp := filepath.Join(p.cfg.TmpDstDir, name)
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("empty %s: %w", tmp, err)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return fmt.Errorf("snapshot %s: %w", name, err)
	}
	for file, data := range answers {
		if err := writeFile(filepath.Join(tmp, file), data); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("snapshot %s: %w", name, err)
		}
	}
	final := filepath.Join(p.cfg.DstDir, name)
	if err := renameNoReplace(tmp, final); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("snapshot %s: %w", final, ErrSnapshotExists)
		}
		return fmt.Errorf("commit snapshot %s: %w", name, err)
	}
	if err := syncDir(p.cfg.DstDir); err != nil {
		p.log.Warn("cannot fsync dst-dir", "dir", p.cfg.DstDir, "err", err)
	}
	return nil
}

// Collect pulls "show info" and "show stat" from every socket like a round,
// bounded by PullTimeout, and returns the answers in memory keyed by the
// file name a round would write (<name>_info, <name>_stat), without touching
// the spool. When some socket failed it returns the answers that did arrive
// and a *RoundError (with an empty Snapshot).
func (p *Puller) Collect(ctx context.Context) (map[string][]byte, error) {
	ctx, cancel := p.roundContext(ctx)
	defer cancel()
	sockets, err := p.sockets()
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	out := make(map[string][]byte, 2*len(sockets))
	failed := p.pull(ctx, sockets, func(file string, data []byte) error {
		mu.Lock()
		out[file] = data
		mu.Unlock()
		return nil
	})
	if len(failed) > 0 {
		return out, &RoundError{Sockets: len(sockets), Failed: failed}
	}
	return out, nil
}

func (p *Puller) roundContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if p.cfg.PullTimeout > 0 {
		return context.WithTimeout(ctx, p.cfg.PullTimeout)
	}
	return context.WithCancel(ctx)
}

// ensureDir creates dir when it is missing, saying so: the spool directory
// may be removed under a running puller.
func (p *Puller) ensureDir(dir, option string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", option, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("recreate %s %s: %w", option, dir, err)
	}
	p.log.Warn("spool directory was missing; recreated it", "option", option, "dir", dir)
	return nil
}

// socket is one stats socket of a round.
type socket struct {
	name   string // spool file prefix
	client haproxy.Client
}

// sockets lists this round's sockets: the UNIX sockets in SocketDir, then
// Servers, sorted by name. A socket of SocketDir that is also in Servers is
// pulled once.
func (p *Puller) sockets() ([]socket, error) {
	c := p.cfg
	client := func(network, address string) haproxy.Client {
		return haproxy.Client{Network: network, Address: address, Timeout: c.Timeout,
			Retries: c.Retries, Interval: c.Interval, BufferLimit: c.BufferLimit}
	}
	var out []socket
	byName := make(map[string]string) // name -> address
	for _, s := range c.Servers {
		out = append(out, socket{name: s.Name, client: client(s.Network, s.Address)})
		byName[s.Name] = s.Network + " " + s.Address
	}
	if c.SocketDir != "" {
		entries, err := os.ReadDir(c.SocketDir)
		if err != nil {
			return nil, fmt.Errorf("list socket-dir: %w", err)
		}
		for _, e := range entries {
			path := filepath.Join(c.SocketDir, e.Name())
			typ := e.Type()
			if typ&fs.ModeSymlink != 0 {
				if fi, err := os.Stat(path); err == nil {
					typ = fi.Mode().Type()
				}
			}
			if typ&fs.ModeSocket == 0 {
				continue
			}
			if other, ok := byName[e.Name()]; ok {
				if sameUnixSocket(other, path) {
					continue
				}
				return nil, fmt.Errorf("socket %s in socket-dir and server %s share the spool name %q",
					path, other, e.Name())
			}
			out = append(out, socket{name: e.Name(), client: client("unix", path)})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("socket-dir %s: %w", c.SocketDir, ErrNoSockets)
	}
	slices.SortFunc(out, func(a, b socket) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// sameUnixSocket tells whether server ("network address") is the UNIX socket
// at path.
func sameUnixSocket(server, path string) bool {
	addr, ok := strings.CutPrefix(server, "unix ")
	if !ok {
		return false
	}
	if filepath.Clean(addr) == filepath.Clean(path) {
		return true
	}
	a, err1 := os.Stat(addr)
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// pull sends every command to every socket, at most Workers at a time, and
// hands each answer to sink (called concurrently). It returns the failures,
// sorted by socket and command.
func (p *Puller) pull(ctx context.Context, sockets []socket, sink func(file string, data []byte) error) []SocketError {
	sem := make(chan struct{}, p.cfg.Workers)
	var (
		mu     sync.Mutex
		failed []SocketError
		wg     sync.WaitGroup
	)
	fail := func(s *socket, cmd string, err error) {
		mu.Lock()
		failed = append(failed, SocketError{Socket: s.name, Command: cmd, Err: err})
		mu.Unlock()
	}
	for i := range sockets {
		s := &sockets[i]
		for _, c := range commands {
			wg.Go(func() {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					fail(s, c.cmd, fmt.Errorf("haproxy %v: %q: waiting for a worker: %w", &s.client, c.cmd, ctx.Err()))
					return
				}
				defer func() { <-sem }()
				data, err := s.client.Command(ctx, c.cmd)
				if err == nil {
					err = sink(s.name+c.suffix, data)
				}
				if err != nil {
					fail(s, c.cmd, err)
				}
			})
		}
	}
	wg.Wait()
	slices.SortFunc(failed, func(a, b SocketError) int {
		if c := strings.Compare(a.Socket, b.Socket); c != 0 {
			return c
		}
		return strings.Compare(a.Command, b.Command)
	})
	return failed
}

// SocketError is one command that failed on one socket.
type SocketError struct {
	Socket  string // spool name of the socket
	Command string
	Err     error
}

// RoundError reports a round (or Collect) in which some commands failed;
// nothing was committed.
type RoundError struct {
	Snapshot string // directory name; empty for Collect
	Sockets  int    // number of sockets pulled
	Failed   []SocketError
}

// FailedSockets returns the names of the sockets that failed, sorted, each
// once.
func (e *RoundError) FailedSockets() []string {
	var names []string
	for _, f := range e.Failed {
		if len(names) == 0 || names[len(names)-1] != f.Socket {
			names = append(names, f.Socket)
		}
	}
	return names
}

func (e *RoundError) Error() string {
	var b strings.Builder
	if e.Snapshot != "" {
		b.WriteString("snapshot " + e.Snapshot + ": ")
	}
	failed := e.FailedSockets()
	fmt.Fprintf(&b, "%d of %d sockets failed (%s)", len(failed), e.Sockets, strings.Join(failed, ", "))
	for i, f := range e.Failed {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Err.Error())
	}
	return b.String()
}

// Unwrap gives access to every command's error (errors.Is(err,
// context.DeadlineExceeded) tells a round that ran out of time).
func (e *RoundError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}

// countSnapshots counts the snapshot directories (all-digit names) in dir.
func countSnapshots(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("count snapshots in dst-dir: %w", err)
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() && isSnapshotName(e.Name()) {
			n++
		}
	}
	return n, nil
}

func isSnapshotName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// writeFile creates path (which must not exist), writes data and fsyncs it.
func writeFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

type sizeCounter struct {
	mu sync.Mutex
	n  int64
}

func (s *sizeCounter) add(n int) {
	s.mu.Lock()
	s.n += int64(n)
	s.mu.Unlock()
}

func (s *sizeCounter) total() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}
