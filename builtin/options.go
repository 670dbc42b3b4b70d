package builtin

import (
	"bufio"
	"bytes"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/counters"
)

// Options selects what the built-in stages compute: the [process] options
// of the configuration file.
type Options struct {
	// FrontendMetrics, BackendMetrics and ServerMetrics replace the default
	// summed lists when not nil.
	FrontendMetrics, BackendMetrics, ServerMetrics []string
	// ExcludeFrontends and ExcludeBackends name objects whose lines are not
	// sent; nil excludes nothing.
	ExcludeFrontends, ExcludeBackends *Exclusions
	AggrServerMetrics                 bool
	PerProcessMetrics                 bool
	CalculatePercentages              bool
	// Counters, when not nil, makes the cumulative counters of the summed
	// metrics survive HAProxy reloads ([process] monotonic-counters): each
	// stage collects every process's counters into its part of the store
	// (daemon, frontend, backend, server, aggrserver), advances it once the
	// snapshot is read, and adds the offsets to its sums. The store's
	// owner calls its Pending and Done around every snapshot (see
	// internal/counters); a part that cannot advance fails its stage for
	// that snapshot. Per-process metrics are not changed. Nil: the sums
	// over the processes present, at no cost.
	Counters *counters.Store
	// Logger receives warnings about incomplete input; nil discards.
	Logger *slog.Logger
}

// Stages returns the built-in stages in the original's order: daemon,
// frontends, backends, servers. They are Folders, safe for concurrent use.
func Stages(opts Options) []engine.StageSpec {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return []engine.StageSpec{
		{Name: "daemon", Folder: newDaemon(opts), TimeMetric: "WallClockTimeHAProxy"},
		{Name: "frontends", Folder: newFrontends(opts), TimeMetric: "WallClockTimeFrontends"},
		{Name: "backends", Folder: newBackends(opts), TimeMetric: "WallClockTimeBackends"},
		{Name: "servers", Folder: newServers(opts), TimeMetric: "WallClockTimeServers"},
	}
}

// Exclusions is the set of names of an exclusion file (SPEC §5.4): one
// name per line, surrounding blanks ignored, blank lines and lines starting
// with '#' skipped; names are matched in their path form (dots replaced).
//
// As the original did, the file is read again for every snapshot, so an
// edit takes effect at the next snapshot without a restart. A file that is
// missing or unreadable is logged as an error naming it (once, and again
// when the error changes or every 10 minutes while it lasts) and excludes
// nothing; the snapshots are still processed. Safe for concurrent use.
type Exclusions struct {
	path   string
	read   func(path string) ([]byte, error)
	logger *slog.Logger

	mu       sync.Mutex
	data     []byte          // content last read
	names    map[string]bool // parsed from data
	read1    bool            // the file was read for snapshot
	snapshot string          // the snapshot of the last read
	current  map[string]bool // what it gave: names, or nil when the read failed
	lastErr  string
	logged   time.Time
}

// MaxExclusionFile bounds the bytes of an exclusion file: the limit to give
// the reader of NewExclusions.
const MaxExclusionFile = 16 << 20

// NewExclusions returns the exclusions of the file at path, which read
// reads (the programs give the one reader of files an operator names,
// internal/config's ReadRegular, bounded by MaxExclusionFile: a FIFO never
// blocks); it reads nothing yet.
func NewExclusions(path string, read func(path string) ([]byte, error), logger *slog.Logger) *Exclusions {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Exclusions{path: path, read: read, logger: logger}
}

// StaticExclusions returns exclusions of fixed names, for tests and for
// programs that build a pipeline without files.
func StaticExclusions(names ...string) *Exclusions {
	return &Exclusions{names: nameSet(names)}
}

// Current returns the set of excluded names (path form) for the snapshot
// named snapshot: the file is read again for each snapshot, once (the
// backend and server stages of a snapshot share what was read for it, and
// so agree). The set must not be modified.
func (e *Exclusions) Current(snapshot string) map[string]bool {
	if e == nil {
		return nil
	}
	if e.path == "" {
		return e.names
	}
	e.mu.Lock()
	if e.read1 && snapshot == e.snapshot {
		defer e.mu.Unlock()
		return e.current
	}
	e.mu.Unlock()
	data, err := e.read(e.path)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.read1, e.snapshot, e.current = true, snapshot, nil
	if err != nil {
		msg := err.Error()
		if msg != e.lastErr || time.Since(e.logged) > 10*time.Minute {
			e.logger.Error("exclusion file not read: nothing excluded until it can be", "file", e.path, "error", err)
			e.lastErr, e.logged = msg, time.Now()
		}
		return nil
	}
	if e.lastErr != "" {
		e.logger.Info("exclusion file read again", "file", e.path)
		e.lastErr = ""
	}
	if e.names == nil || !bytes.Equal(data, e.data) {
		e.data, e.names = data, nameSet(ParseExclusions(data))
	}
	e.current = e.names
	return e.names
}

// Names reads the file now and returns its names (as a configuration
// check does; Current is what the stages use).
func (e *Exclusions) Names() ([]string, error) {
	if e.path == "" {
		return slices.Sorted(maps.Keys(e.names)), nil
	}
	data, err := e.read(e.path)
	if err != nil {
		return nil, err
	}
	return ParseExclusions(data), nil
}

// ParseExclusions returns the names of the content of an exclusion file.
func ParseExclusions(data []byte) []string {
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxExclusionFile)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names = append(names, line)
	}
	return names
}

func nameSet(names []string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[engine.PathName(n)] = true
	}
	return set
}
