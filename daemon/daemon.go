// Package daemon runs haproxystats-process from a Go program, with the
// program's own Go stages next to the built-in and WebAssembly ones: the
// same configuration file, spool, destinations and stop rules as the
// haproxystats-process command, which is this package behind flags.
//
// A stage is an engine.Stage (it reads the materialised table of the rows
// and the columns it asks for with engine.ColumnUser) or an engine.Folder
// (it folds the rows batch by batch, in memory proportional to the objects
// it aggregates). Its metrics go through the same path rules as the
// built-in ones; its self-metrics are Stage<Name>WallClockTime,
// Stage<Name>Metrics and Stage<Name>Errors, as for a WebAssembly stage.
// The pipeline runs all stages concurrently over each snapshot, and the
// workers process several snapshots at once: a stage must be safe for
// concurrent use (see engine.Stage and engine.Folder).
package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/buildinfo"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/process"
	"github.com/haproxystats-go/haproxystats/internal/startup"
)

// Options configure Run.
type Options struct {
	// File is the configuration file (one that does not exist means the
	// defaults) and Dir a directory whose *.conf files are read after it,
	// in name order ("" for none): haproxystats-process's -f and -d.
	File, Dir string
	// Stages are the program's own stages. Their names must differ from
	// the built-in ones (daemon, frontends, backends, servers) and from
	// the [process] stages.
	Stages []engine.StageSpec
	// Log receives the log, as text, at the configured level; nil means
	// os.Stderr.
	Log io.Writer
}

// Run loads the configuration and runs the daemon until ctx is done: it
// processes the snapshots of the spool and delivers their lines, as
// haproxystats-process does. It returns nil after a stop (a stop during
// start-up included), and an error naming the file or option when the
// configuration refuses to start, or when the spool fails.
func Run(ctx context.Context, opts Options) error {
	out := opts.Log
	if out == nil {
		out = os.Stderr
	}
	// A stop during start-up (configuration, stage compilation) ends it
	// at once, as a stop afterwards does.
	boot := slog.New(slog.NewTextHandler(out, nil))
	cfg, err := startup.Do(ctx, func() (*config.Config, error) { return config.Load(opts.File, opts.Dir, boot) })
	if errors.Is(err, startup.ErrStopped) {
		boot.Info("haproxystats-process stopped during start-up", "cause", err)
		return nil
	}
	if err != nil {
		return err
	}
	settings, err := cfg.ProcessSettings()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: settings.Process.Loglevel}))
	d, err := startup.Do(ctx, func() (*process.Daemon, error) {
		d, _, err := process.FromConfig(cfg, logger, process.Options{ConfigDir: filepath.Dir(opts.File), Stages: opts.Stages})
		return d, err
	})
	if errors.Is(err, startup.ErrStopped) {
		logger.Info("haproxystats-process stopped during start-up", "cause", err)
		return nil
	}
	if err != nil {
		return err
	}
	from := []any{"src_dir", settings.Process.SrcDir}
	if settings.Process.FromKafka() {
		from = []any{"source", settings.Process.Source, "topic", settings.Kafka.SnapshotTopic, "group", settings.Kafka.Group,
			"consumer_dir", settings.Kafka.ConsumerDir, "cluster", settings.Process.Cluster}
	}
	logger.Info("haproxystats-process started", append([]any{"version", buildinfo.String(), "config", opts.File}, append(from,
		"workers", settings.Process.Workers,
		"memory_budget", settings.Process.MemoryBudget, "memory_limit", process.LimitMemory(settings))...)...)
	if err := d.Run(ctx); err != nil {
		logger.Error("haproxystats-process stopped", "error", err)
		return err
	}
	st := d.Stats()
	logger.Info("haproxystats-process stopped", "delivered", st.Delivered, "failed", st.Failed, "panics", st.Panics)
	return nil
}
