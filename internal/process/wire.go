package process

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/graphite"
	"github.com/haproxystats-go/haproxystats/internal/localstore"
	"github.com/haproxystats-go/haproxystats/internal/pipeline"
	"github.com/haproxystats-go/haproxystats/internal/spool"
)

// StopTimeout bounds how long a stop (SIGTERM, SIGHUP) waits for the
// snapshots in flight to be delivered; the rest stay in the spool. The
// systemd units' TimeoutStopSec is above it.
const StopTimeout = 20 * time.Second

// Options adjust FromConfig.
type Options struct {
	// SrcDir overrides [process] src-dir (the one-daemon mode uses the
	// puller's dst-dir).
	SrcDir string
	// ConfigDir resolves relative stage module paths.
	ConfigDir string
	// Spill enables Offer; see Config.Spill and Config.SpillAfter.
	Spill      func(name string, files []engine.File) error
	SpillAfter time.Duration
}

// FromConfig builds the daemon from a loaded configuration: every check
// that can refuse to start happens here, with errors naming the option.
func FromConfig(cfg *config.Config, logger *slog.Logger, opts Options) (*Daemon, *config.ProcessSettings, error) {
	built, err := pipeline.New(cfg, pipeline.Options{Logger: logger, ConfigDir: opts.ConfigDir})
	if err != nil {
		return nil, nil, err
	}
	s := built.Settings
	src := s.Process.SrcDir
	if opts.SrcDir != "" {
		src = opts.SrcDir
	}
	if err := config.CheckReadWrite(src); err != nil {
		return nil, nil, fmt.Errorf("[process] src-dir = %q: %w", src, err)
	}
	client, err := graphite.New(GraphiteConfig(s.Graphite), logger.With("component", "graphite"))
	if err != nil {
		return nil, nil, err
	}
	watcher, err := spool.NewWatcher(src, logger.With("component", "spool"))
	if err != nil {
		return nil, nil, err
	}
	dc := Config{
		Pipeline:    built.Pipeline,
		Queue:       watcher,
		Graphite:    client,
		Workers:     s.Process.Workers,
		StopTimeout: StopTimeout,
		Spill:       opts.Spill,
		SpillAfter:  opts.SpillAfter,
		Logger:      logger,
	}
	if s.LocalStore.Enabled {
		store, err := localstore.New(s.LocalStore.Dir)
		if err != nil {
			return nil, nil, fmt.Errorf("[local-store] dir = %q: %w", s.LocalStore.Dir, err)
		}
		dc.LocalStore = store
	}
	d, err := New(dc)
	if err != nil {
		return nil, nil, err
	}
	return d, s, nil
}

// GraphiteConfig is the Graphite client configuration of [graphite];
// graphite.New refuses what the daemon cannot run with.
func GraphiteConfig(g config.Graphite) graphite.Config {
	return graphite.Config{
		Address:        net.JoinHostPort(g.Server, strconv.Itoa(g.Port)),
		ConnectTimeout: g.ConnectTimeout,
		WriteTimeout:   g.WriteTimeout,
		Retries:        g.Retries,
		Interval:       g.Interval,
		Backoff:        g.Backoff,
		Delay:          g.Delay,
		QueueSize:      g.QueueSize,
	}
}
