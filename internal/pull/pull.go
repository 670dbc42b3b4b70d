package pull

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/haproxystats-go/haproxystats/internal/spool"
	"github.com/haproxystats-go/haproxystats/internal/throttle"
)

var (
	// ErrQueueFull is returned (wrapped) by Round when every spool it
	// commits into (DstDir, KafkaDstDir) holds QueueSize or more snapshot
	// directories; the round was skipped.
	ErrQueueFull = errors.New("queue full")
	// ErrSnapshotExists is returned (wrapped) by Round when <epoch> already
	// exists in a spool it commits into; it was left untouched and the round
	// discarded.
	ErrSnapshotExists = spool.ErrSnapshotExists
	// ErrNoSockets is returned (wrapped) when a round finds nothing to pull:
	// no UNIX socket in SocketDir, no Servers and no Masters.
	ErrNoSockets = errors.New("no stats socket to pull")
)

// commands are sent to every socket and worker; suffix names the answer's
// file.
var commands = []struct{ cmd, suffix string }{
	{haproxy.ShowInfo, spool.InfoSuffix},
	{haproxy.ShowStat, spool.StatSuffix},
}

// Puller pulls statistics from HAProxy into the spool. Build it with New.
type Puller struct {
	cfg Config
	log *slog.Logger
	// spools are the spools a round is committed into: DstDir's and/or
	// KafkaDstDir's (Config.Destination), in that order.
	spools []target
	// bufs holds Workers read buffers (nil until first used); taking one is
	// taking one of the Workers slots, so the buffers bound the memory of
	// every answer in flight.
	bufs  chan []byte
	round sync.Mutex       // serializes Round
	now   func() time.Time // names Run's rounds; replaced in tests
	// full logs that one spool is full at most every throttle.DefaultEvery
	// (it lasts as long as the broker or the processor is down).
	full throttle.Throttle
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
	var spools []target
	if cfg.toSpool() {
		w, err := spool.NewWriter(cfg.DstDir, cfg.TmpDstDir, logger)
		if err != nil {
			return nil, fmt.Errorf("pull: %w", err)
		}
		spools = append(spools, target{option: "dst-dir", tmp: cfg.TmpDstDir, w: w})
	}
	if cfg.toKafka() {
		w, err := spool.NewWriter(cfg.KafkaDstDir, cfg.KafkaTmpDir(), logger)
		if err != nil {
			return nil, fmt.Errorf("pull: %w", err)
		}
		spools = append(spools, target{option: "kafka-dst-dir", tmp: cfg.KafkaTmpDir(), w: w})
	}
	cfg.Servers = slices.Clone(cfg.Servers)
	cfg.Masters = slices.Clone(cfg.Masters)
	bufs := make(chan []byte, cfg.Workers)
	for range cfg.Workers {
		bufs <- nil
	}
	return &Puller{cfg: cfg, log: logger, spools: spools, bufs: bufs, now: time.Now}, nil
}

// target is one spool rounds are committed into.
type target struct {
	option string // the [pull] option naming its directory
	tmp    string // its temporary directory
	w      *spool.Writer
}

// Prepare creates the spools (DstDir, KafkaDstDir) and their temporary
// directories and removes the snapshot directories an interrupted run left
// in those. Run calls it; the one daemon calls it first so that the spool
// exists before its processor checks it.
func (p *Puller) Prepare() error {
	for _, t := range p.spools {
		if err := t.w.Prepare(); err != nil {
			return fmt.Errorf("pull: %s %s, temporary directory %s: %w", t.option, t.w.Dir(), t.tmp, err)
		}
	}
	return nil
}

// Run pulls until ctx is cancelled, then returns nil; it returns an error
// only when it cannot start (DstDir or TmpDstDir cannot be created). Round
// failures are logged, not returned: the next round is tried on schedule.
func (p *Puller) Run(ctx context.Context) error {
	if err := p.Prepare(); err != nil {
		return err
	}
	interval := p.cfg.PullInterval
	attrs := []any{"socket_dir", p.cfg.SocketDir, "servers", len(p.cfg.Servers), "masters", len(p.cfg.Masters),
		"interval", interval, "pull_timeout", p.cfg.PullTimeout}
	for _, t := range p.spools {
		attrs = append(attrs, strings.ReplaceAll(t.option, "-", "_"), t.w.Dir())
	}
	p.log.Info("pulling statistics", append(attrs, "queue_size", p.cfg.QueueSize)...)

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

// Round runs one round named after now (whole seconds since the epoch): see
// the package documentation. It returns nil when <epoch> was committed into
// every spool of Destination that has room (DstDir, KafkaDstDir), an error
// wrapping ErrQueueFull when none has, or ErrSnapshotExists when one holds
// <epoch> already (the round is then discarded), a *RoundError when some
// socket, master or worker failed, and ctx's error when ctx ended first.
// Nothing but a complete snapshot ever appears in a spool.
func (p *Puller) Round(ctx context.Context, now time.Time) error {
	p.round.Lock()
	defer p.round.Unlock()
	started := time.Now()
	name := strconv.FormatInt(now.Unix(), 10)

	targets, err := p.withRoom()
	if err != nil {
		return err
	}
	sockets, err := p.sockets()
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", name, err)
	}
	snap, err := targets[0].w.Begin(name)
	if err != nil {
		return err
	}
	defer snap.Abort() // nothing once committed

	ctx, cancel := p.roundContext(ctx)
	defer cancel()
	failed, pulled := p.pull(ctx, sockets, snap)
	if len(failed) > 0 {
		return &RoundError{Snapshot: name, Sockets: pulled, Failed: failed}
	}
	if err := ctx.Err(); err != nil {
		// Every answer arrived, but too late (or we are stopping).
		return fmt.Errorf("snapshot %s: %w", name, err)
	}
	// The other spools get the same files (hard links), committed first:
	// once the first spool's commit is done, every spool has the round.
	for _, t := range targets[1:] {
		clone, err := snap.CloneInto(t.w)
		if err != nil {
			return err
		}
		defer clone.Abort()
		if err := clone.Commit(); err != nil {
			return err
		}
	}
	if err := snap.Commit(); err != nil {
		return err
	}
	p.log.Debug("snapshot committed", "snapshot", name, "sockets", pulled,
		"bytes", snap.Bytes(), "spools", len(targets), "took", time.Since(started))
	return nil
}

// withRoom returns the spools below QueueSize (creating a spool directory
// again if it disappeared), warning about each full one; it fails with
// ErrQueueFull when every spool is full.
func (p *Puller) withRoom() ([]target, error) {
	var room []target
	var full []string
	for _, t := range p.spools {
		if err := t.w.Ensure(); err != nil {
			return nil, err
		}
		n, err := t.w.Count()
		if err != nil {
			return nil, err
		}
		if n >= p.cfg.QueueSize {
			full = append(full, fmt.Sprintf("%s %s holds %d snapshots", t.option, t.w.Dir(), n))
			continue
		}
		room = append(room, t)
	}
	if len(room) == 0 {
		return nil, fmt.Errorf("%s, queue-size is %d: %w", strings.Join(full, ", "), p.cfg.QueueSize, ErrQueueFull)
	}
	if len(full) > 0 {
		p.full.Log(p.log, slog.LevelWarn, "one spool full", "spool full: this round goes only to the other one", "full", strings.Join(full, ", "), "queue_size", p.cfg.QueueSize)
	}
	return room, nil
}

func (p *Puller) roundContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if p.cfg.PullTimeout > 0 {
		return context.WithTimeout(ctx, p.cfg.PullTimeout)
	}
	return context.WithCancel(ctx)
}

// socket is one stats socket of a round.
type socket struct {
	name   string // spool file prefix
	client haproxy.Client
}

func (p *Puller) client(network, address string, master bool) haproxy.Client {
	c := p.cfg
	return haproxy.Client{Network: network, Address: address, Timeout: c.Timeout,
		Retries: c.Retries, Interval: c.Interval, BufferLimit: c.BufferLimit,
		MaxAnswer: c.MaxAnswerSize, HalfClose: master}
}

// sockets lists this round's plain stats sockets: the UNIX sockets in
// SocketDir, then Servers, sorted by name. A socket of SocketDir that is
// also in Servers is pulled once.
func (p *Puller) sockets() ([]socket, error) {
	c := p.cfg
	var out []socket
	byName := make(map[string]string) // name -> address
	for _, s := range c.Servers {
		out = append(out, socket{name: s.Name, client: p.client(s.Network, s.Address, false)})
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
			if err := spool.ValidPlainSocketName(e.Name()); err != nil {
				return nil, fmt.Errorf("socket-dir socket %s: %w", path, err)
			}
			out = append(out, socket{name: e.Name(), client: p.client("unix", path, false)})
		}
	}
	if len(out) == 0 && len(c.Masters) == 0 {
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

// pull sends every command to every plain socket, and lists the workers of
// every master and sends every command to each of them, at most Workers
// exchanges at a time, each answer streamed into its file of snap. It
// returns the failures, sorted by name and command, and the number of names
// pulled (sockets, workers, and masters whose workers could not be listed).
func (p *Puller) pull(ctx context.Context, sockets []socket, snap *spool.Pending) (failed []SocketError, pulled int) {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	fail := func(name, cmd string, err error) {
		mu.Lock()
		failed = append(failed, SocketError{Socket: name, Command: cmd, Err: err})
		mu.Unlock()
	}
	count := func(n int) {
		mu.Lock()
		pulled += n
		mu.Unlock()
	}
	// exchange sends cmd to c and streams the answer into file; check, when
	// set, is given the answer's first bytes.
	exchange := func(name string, c *haproxy.Client, cmd, send, file string, check func([]byte) error) {
		wg.Go(func() {
			buf, ok := p.takeBuffer(ctx)
			if !ok {
				fail(name, cmd, fmt.Errorf("haproxy %v: %q: waiting for a worker: %w", c, send, ctx.Err()))
				return
			}
			defer p.putBuffer(buf)
			_, err := snap.Write(file, func(w io.Writer) error {
				var head prefixWriter
				if check != nil {
					w = io.MultiWriter(&head, w)
				}
				if _, err := c.Stream(ctx, send, w, buf); err != nil {
					return err
				}
				if check != nil {
					if err := check(head.b); err != nil {
						return fmt.Errorf("haproxy %v: %q: %w", c, send, err)
					}
				}
				return nil
			})
			if err != nil {
				fail(name, cmd, err)
			}
		})
	}
	for i := range sockets {
		s := &sockets[i]
		count(1)
		for _, c := range commands {
			exchange(s.name, &s.client, c.cmd, c.cmd, s.name+c.suffix, nil)
		}
	}
	for _, m := range p.cfg.Masters {
		wg.Go(func() {
			client := p.client(m.Network, m.Address, true)
			list, err := p.listWorkers(ctx, &client)
			if err != nil {
				count(1)
				fail(m.Name, haproxy.ShowProc, err)
				return
			}
			count(len(list.Workers))
			p.log.Debug("master lists its workers", "master", m.Name, "master_pid", list.Master.PID,
				"workers", workerPIDs(list, false), "leaving", workerPIDs(list, true))
			for _, w := range list.Workers {
				name := spool.WorkerSocketName(m.Name, list.Master.PID, w.PID, w.Leaving)
				for _, c := range commands {
					exchange(name, &client, c.cmd, haproxy.WorkerCommand(w.PID, c.cmd), name+c.suffix,
						func(start []byte) error { return haproxy.CheckWorkerAnswer(w.PID, c.cmd, start) })
				}
			}
		})
	}
	wg.Wait()
	slices.SortFunc(failed, func(a, b SocketError) int {
		if c := strings.Compare(a.Socket, b.Socket); c != 0 {
			return c
		}
		return strings.Compare(a.Command, b.Command)
	})
	return failed, pulled
}

// listWorkers asks a master CLI for "show proc" (in one of the Workers
// slots) and parses it; a master without a current worker is an error.
func (p *Puller) listWorkers(ctx context.Context, c *haproxy.Client) (*haproxy.ProcList, error) {
	buf, ok := p.takeBuffer(ctx)
	if !ok {
		return nil, fmt.Errorf("haproxy %v: %q: waiting for a worker: %w", c, haproxy.ShowProc, ctx.Err())
	}
	var answer bytes.Buffer
	_, err := c.Stream(ctx, haproxy.ShowProc, &answer, buf)
	p.putBuffer(buf)
	if err != nil {
		return nil, err
	}
	list, err := haproxy.ParseShowProc(answer.Bytes())
	if err != nil {
		return nil, fmt.Errorf("haproxy %v: %w", c, err)
	}
	if len(workerPIDs(list, false)) == 0 {
		return nil, fmt.Errorf("haproxy %v: %q lists no current worker", c, haproxy.ShowProc)
	}
	return list, nil
}

func workerPIDs(list *haproxy.ProcList, leaving bool) []int {
	var out []int
	for _, w := range list.Workers {
		if w.Leaving == leaving {
			out = append(out, w.PID)
		}
	}
	return out
}

// takeBuffer waits for one of the Workers read buffers; false when ctx
// ended first.
func (p *Puller) takeBuffer(ctx context.Context) ([]byte, bool) {
	select {
	case b := <-p.bufs:
		if b == nil {
			b = make([]byte, haproxy.ReadSize(p.cfg.BufferLimit))
		}
		return b, true
	case <-ctx.Done():
		return nil, false
	}
}

func (p *Puller) putBuffer(b []byte) { p.bufs <- b }

// prefixWriter keeps the first bytes written through it.
type prefixWriter struct{ b []byte }

// prefixSize is how much of a worker's answer CheckWorkerAnswer is given.
const prefixSize = 64

func (w *prefixWriter) Write(b []byte) (int, error) {
	if room := prefixSize - len(w.b); room > 0 {
		w.b = append(w.b, b[:min(room, len(b))]...)
	}
	return len(b), nil
}

// SocketError is one command that failed on one socket, master or worker.
type SocketError struct {
	// Socket is the spool name of the socket or worker, or the name of
	// the master whose workers could not be listed.
	Socket  string
	Command string
	Err     error
}

// RoundError reports a round in which some commands failed; nothing was
// committed.
type RoundError struct {
	Snapshot string // directory name
	Sockets  int    // number of sockets and workers pulled
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
