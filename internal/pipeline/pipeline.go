package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/haproxystats-go/haproxystats/builtin"
	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/engine/enginetest"
	"github.com/haproxystats-go/haproxystats/internal/config"
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
}

// Result is an assembled pipeline and the settings it was built from.
type Result struct {
	Pipeline *engine.Pipeline
	Settings *config.ProcessSettings
	closers  []io.Closer
}

// Close releases the WebAssembly runtimes of the stages.
func (r *Result) Close() error {
	var errs []error
	for _, c := range r.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// New validates the process settings of cfg and builds the pipeline.
func New(cfg *config.Config, opts Options) (*Result, error) {
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
	var errs []error
	for _, ex := range []struct {
		option, path string
		names        *[]string
	}{
		{"exclude-frontends", p.ExcludeFrontends, &bopts.ExcludeFrontends},
		{"exclude-backends", p.ExcludeBackends, &bopts.ExcludeBackends},
	} {
		if ex.path == "" {
			continue
		}
		names, err := builtin.ReadExclusions(resolve(opts.Dir, ex.path))
		if err != nil {
			errs = append(errs, fmt.Errorf("[process] %s = %q: %w", ex.option, ex.path, err))
		}
		*ex.names = names
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r := &Result{Settings: settings}
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
	r.Pipeline, err = engine.NewPipeline(engine.Config{Paths: paths, Logger: logger}, stages...)
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

// Prefix returns `namespace[.host].haproxy`: with prefix-hostname the
// host name has its dots replaced by '_' when fqdn is true, or is cut at
// the first dot when false.
func Prefix(g config.Graphite, hostname string) (string, error) {
	parts := []string{g.Namespace}
	if g.PrefixHostname {
		if hostname == "" {
			h, err := os.Hostname()
			if err != nil {
				return "", fmt.Errorf("prefix-hostname: %w", err)
			}
			hostname = h
		}
		if !g.FQDN {
			hostname, _, _ = strings.Cut(hostname, ".")
		}
		parts = append(parts, hostname)
	}
	parts = append(parts, "haproxy")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, ".", "_")
	}
	return strings.Join(parts, "."), nil
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

// BuildCase is the enginetest.Build of haproxystats-engine test and of the
// conformance tests: the case's haproxystats.conf alone (everything else
// at its default), relative paths resolved against the case directory,
// no host name in the prefix unless the case asks for it.
func BuildCase(caseDir, confFile string) (*enginetest.Setup, error) {
	cfg, err := config.LoadFiles(nil, confFile)
	if err != nil {
		return nil, err
	}
	r, err := New(cfg, Options{Dir: caseDir, ConfigDir: caseDir, Hostname: "localhost", StageCacheDir: userCache()})
	if err != nil {
		return nil, err
	}
	return &enginetest.Setup{Pipeline: r.Pipeline, LocalStore: r.Settings.LocalStore.Enabled}, nil
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
