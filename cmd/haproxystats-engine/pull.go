package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/process"
	"github.com/haproxystats-go/haproxystats/internal/publish"
	"github.com/haproxystats-go/haproxystats/internal/pull"
	"github.com/haproxystats-go/haproxystats/internal/startup"
)

// oneDaemon pulls and processes in one program: the puller commits every
// complete round into the spool ([pull] dst-dir) exactly as
// haproxystats-pull does, and the processor watches that directory and
// processes the snapshots from there, as haproxystats-process does. Nothing
// is handed over in memory, so memory stays bounded whatever the answers'
// size and however far Graphite is behind: the spool is the buffer. With
// [pull] destination = both it also publishes every round to Kafka
// (internal/publish, from kafka-dst-dir); destination = kafka is refused,
// since it would leave the processor nothing.
func oneDaemon(ctx context.Context, cfg *config.Config, configDir string, logger *slog.Logger) error {
	ps, err := cfg.PullSettings()
	if err != nil {
		return err
	}
	if ps.Destination == config.DestinationKafka {
		return &config.Error{Section: config.SectionPull, Option: "destination", Value: ps.Destination,
			Err: errors.New("the one daemon processes what it pulls, from dst-dir: use spool or both (both also publishes to Kafka), or haproxystats-pull for a load balancer that only publishes")}
	}
	if s, err := cfg.ProcessSettings(); err == nil && s.Process.FromKafka() {
		return &config.Error{Section: config.SectionProcess, Option: "source", Value: s.Process.Source,
			Err: errors.New("the one daemon processes what it pulls, from dst-dir: run haproxystats-process for the Kafka source")}
	}
	puller, err := pull.New(pull.ConfigFrom(ps), logger.With("component", "pull"))
	if err != nil {
		return err
	}
	var pub *publish.Publisher
	if ps.ToKafka() {
		if pub, err = publish.FromSettings(ps, logger); err != nil {
			return err
		}
	}
	// The processor checks its spool at construction: create it first.
	if err := puller.Prepare(); err != nil {
		return err
	}
	var settings *config.ProcessSettings
	daemon, err := startup.Do(ctx, func() (*process.Daemon, error) {
		d, s, err := process.FromConfig(cfg, logger, process.Options{SrcDir: ps.DstDir, ConfigDir: configDir})
		settings = s
		return d, err
	})
	if err != nil {
		return err
	}
	logger.Info("processing", "memory_budget", settings.Process.MemoryBudget, "memory_limit", process.LimitMemory(settings))
	// Either failing stops the other: a daemon that pulls without
	// processing, or the reverse, would only fill or drain the spool.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var perr error
	wg.Go(func() {
		if perr = publish.RunWith(ctx, pub, puller.Run); perr != nil {
			cancel()
		}
	})
	derr := daemon.Run(ctx)
	cancel()
	wg.Wait()
	st := daemon.Stats()
	logger.Info("stopped", "delivered", st.Delivered, "failed", st.Failed)
	if perr != nil {
		return perr
	}
	return derr
}
