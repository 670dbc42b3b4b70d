package assemble

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/haproxystats-go/haproxystats/builtin"
	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/counters"
	"github.com/haproxystats-go/haproxystats/internal/wasmstage"
)

// Options says where relative paths point.
type Options struct {
	// Dir resolves relative exclusion-file paths ("" = the working
	// directory, as the original did).
	Dir string
	// ConfigDir resolves relative stage module paths: the directory of the
	// configuration file.
	ConfigDir string
	// StageCacheDir overrides [process] stage-cache-dir; "-" disables the
	// compilation cache.
	StageCacheDir string
	// Hostname overrides os.Hostname for prefix-hostname (tests).
	Hostname string
	Logger   *slog.Logger
	// Stages are a Go program's own stages, run next to the built-in and
	// WebAssembly ones.
	Stages []engine.StageSpec
	// SelfMetrics adds self-metrics to every snapshot (engine.Config).
	SelfMetrics func(emit engine.Emitter)
	// Started is engine.Config.Started: the daemon's hand-out order with
	// monotonic counters.
	Started func(snapshot string)
	// Backlog is engine.Config.Backlog: whether the daemon's queue holds
	// snapshots not handed out yet.
	Backlog func() bool
	// CountersInMemory keeps the state of [process] monotonic-counters in
	// memory instead of counters-dir (haproxystats-engine run, check and
	// test, which must not touch a daemon's state).
	CountersInMemory bool
}

// Built is an assembled pipeline and the settings it was built from.
type Built struct {
	Pipeline *engine.Pipeline
	// Paths are the pipeline's metric paths: a central processor makes
	// views of the pipeline with other prefixes from them
	// (engine.Paths.WithPrefix, engine.Pipeline.WithPaths).
	Paths    *engine.Paths
	Settings *config.ProcessSettings
	// Counters is the state of [process] monotonic-counters, nil when they
	// are off. Whoever runs the pipeline calls its Pending and Done around
	// every snapshot (internal/counters); Close flushes it.
	Counters *counters.Store
	closers  []io.Closer
}

// Close releases the WebAssembly runtimes of the stages and writes the
// counters' state.
func (r *Built) Close() error {
	var errs []error
	for _, c := range r.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// New validates the process settings of cfg and builds the pipeline.
func New(cfg *config.Config, opts Options) (*Built, error) {
	settings, err := cfg.ProcessSettings()
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	prefix, err := Prefix(settings.Graphite, opts.Hostname)
	if err != nil {
		return nil, err
	}
	paths := &engine.Paths{
		Prefix:         prefix,
		GroupNamespace: settings.Graphite.GroupNamespace,
		DoubleWrites:   settings.Graphite.GroupNamespaceDoubleWrites,
		FrontendGroups: groups(settings.Groups.Frontend),
		BackendGroups:  groups(settings.Groups.Backend),
		ServerGroups:   groups(settings.Groups.Server),
	}
	p := settings.Process
	bopts := builtin.Options{
		FrontendMetrics:      p.FrontendMetrics,
		BackendMetrics:       p.BackendMetrics,
		ServerMetrics:        p.ServerMetrics,
		AggrServerMetrics:    p.AggrServerMetrics,
		PerProcessMetrics:    p.PerProcessMetrics,
		CalculatePercentages: p.CalculatePercentages,
		Logger:               logger,
	}
	if p.ExcludeFrontends != "" {
		bopts.ExcludeFrontends = builtin.NewExclusions(resolve(opts.Dir, p.ExcludeFrontends), ReadExclusionFile, logger)
	}
	if p.ExcludeBackends != "" {
		bopts.ExcludeBackends = builtin.NewExclusions(resolve(opts.Dir, p.ExcludeBackends), ReadExclusionFile, logger)
	}
	r := &Built{Settings: settings, Paths: paths}
	if p.MonotonicCounters {
		copts := counters.Options{Dir: p.CountersDir, Expiry: int64(p.CountersExpiry / time.Second), Logger: logger.With("component", "counters")}
		if opts.CountersInMemory {
			copts.Dir = ""
		}
		if r.Counters, err = counters.Open(copts); err != nil {
			return nil, &config.Error{Section: config.SectionProcess, Option: "counters-dir", Value: p.CountersDir, Err: err}
		}
		r.closers = append(r.closers, r.Counters)
		bopts.Counters = r.Counters
	}
	var errs []error
	stages := builtin.Stages(bopts)
	for _, name := range p.Stages {
		st, err := wasmStage(cfg, name, opts, p.StageCacheDir, logger)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.closers = append(r.closers, st)
		stages = append(stages, engine.StageSpec{Name: name, Stage: st})
	}
	if err := errors.Join(errs...); err != nil {
		r.Close()
		return nil, err
	}
	r.Pipeline, err = engine.NewPipeline(engine.Config{
		Paths:        paths,
		Logger:       logger,
		MaxFileSize:  p.MaxFileSize,
		MemoryBudget: p.MemoryBudget,
		SelfMetrics:  opts.SelfMetrics,
		Started:      opts.Started,
		Backlog:      opts.Backlog,
	}, append(stages, opts.Stages...)...)
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// wasmStage loads the stage configured by [stage.<name>]: the module is
// compiled (or taken from the compilation cache) and its ABI checked.
func wasmStage(cfg *config.Config, name string, opts Options, cacheDir string, logger *slog.Logger) (*wasmstage.Stage, error) {
	raw, err := cfg.StageOptions(name)
	if err != nil {
		return nil, err
	}
	so, err := wasmstage.ParseOptions(name, raw, opts.ConfigDir)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.StageCacheDir == "-":
		cacheDir = ""
	case opts.StageCacheDir != "":
		cacheDir = opts.StageCacheDir
	}
	if cacheDir != "" {
		if err := os.MkdirAll(cacheDir, 0o755); err != nil {
			logger.Warn("stage compilation cache disabled", "dir", cacheDir, "error", err)
			cacheDir = ""
		}
	}
	so.CacheDir = cacheDir
	// New adds the stage attribute to the stage's log lines itself.
	return wasmstage.New(context.Background(), so, logger)
}

// Prefix returns `namespace[.host].haproxy`: namespace as written, its dots
// included (SPEC §4); with prefix-hostname the host name (hostname, else
// [graphite] hostname, else the operating system's) has its dots
// replaced by '_' when fqdn is true, or is cut at the first dot when false.
// A host name that is then not a metric path name (config.CheckPathName)
// is an error naming [graphite] prefix-hostname and the host name.
func Prefix(g config.Graphite, hostname string) (string, error) {
	parts := []string{g.Namespace}
	if g.PrefixHostname {
		// The caller's, else [graphite] hostname, else the system's.
		hostname, err := config.ResolveHostname(cmp.Or(hostname, g.Hostname))
		if err != nil {
			return "", err
		}
		host := strings.ReplaceAll(hostname, ".", "_")
		if !g.FQDN {
			host, _, _ = strings.Cut(hostname, ".")
		}
		if err := config.CheckPathName(host); err != nil {
			return "", &config.Error{Section: config.SectionGraphite, Option: "prefix-hostname", Value: "true",
				Err: fmt.Errorf("host name %q: %w", host, err)}
		}
		parts = append(parts, host)
	}
	parts = append(parts, "haproxy")
	return strings.Join(parts, "."), nil
}

// ClusterPrefix returns `namespace.cluster.haproxy`, the prefix of the
// metrics aggregated over the hosts of a cluster (central processing);
// cluster passes snaprecord.CheckCluster, one part of a path.
func ClusterPrefix(g config.Graphite, cluster string) string {
	return g.Namespace + "." + cluster + ".haproxy"
}

func groups(gs []config.Group) []engine.Group {
	out := make([]engine.Group, len(gs))
	for i, g := range gs {
		out[i] = engine.Group{Name: g.Name, Pattern: g.Pattern}
	}
	return out
}

func resolve(dir, path string) string {
	if dir == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// ForCase builds the pipeline of a golden case (haproxystats-engine test
// and the conformance tests): the case's haproxystats.conf alone
// (everything else at its default), relative paths resolved against the
// case directory, no host name in the prefix unless the case asks for it.
func ForCase(caseDir, confFile string) (*Built, error) {
	cfg, err := config.LoadFiles(nil, confFile)
	if err != nil {
		return nil, err
	}
	return New(cfg, Options{Dir: caseDir, ConfigDir: caseDir, Hostname: "localhost", StageCacheDir: userCache(), CountersInMemory: true})
}

// userCache is where haproxystats-engine keeps compiled stage modules
// when it runs cases ("-", no cache, when the user has no cache directory).
func userCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "-"
	}
	return filepath.Join(dir, "haproxystats-go", "stage-cache")
}

// ReadExclusionFile reads an exclusion file as the daemons do for every
// snapshot, and as a configuration check must: the one reader of files an
// operator names (a FIFO never blocks, /dev/null reads as empty), bounded
// by builtin.MaxExclusionFile.
func ReadExclusionFile(path string) ([]byte, error) {
	return config.ReadRegular(path, builtin.MaxExclusionFile)
}
