package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/process"
	"github.com/haproxystats-go/haproxystats/internal/pull"
	"github.com/haproxystats-go/haproxystats/internal/startup"
)

// oneDaemon pulls and processes in one program: every complete round is
// offered to the daemon in memory; when the daemon is falling behind (the
// spool holds snapshots, or every worker is busy) the round is written to
// the spool, and a snapshot taken in memory that cannot be delivered in
// full is written there too. The spool is [pull] dst-dir.
func oneDaemon(ctx context.Context, cfg *config.Config, configDir string, logger *slog.Logger) error {
	ps, err := cfg.PullSettings()
	if err != nil {
		return err
	}
	for _, dir := range []string{ps.DstDir, ps.TmpDstDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("[pull] spool directory: %w", err)
		}
	}
	var puller *pull.Puller
	spill := func(name string, files []engine.File) error {
		answers := make(map[string][]byte, len(files))
		for _, f := range files {
			answers[f.Name] = f.Data
		}
		return puller.Commit(name, answers)
	}
	daemon, err := startup.Do(ctx, func() (*process.Daemon, error) {
		d, _, err := process.FromConfig(cfg, logger, process.Options{SrcDir: ps.DstDir, ConfigDir: configDir, Spill: spill, SpillAfter: ps.PullInterval})
		return d, err
	})
	if err != nil {
		return err
	}
	pc := pull.ConfigFrom(ps)
	pc.Handoff = func(name string, answers map[string][]byte) bool {
		files := make([]engine.File, 0, len(answers))
		for file, data := range answers {
			files = append(files, engine.File{Name: file, Data: data})
		}
		sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
		return daemon.Offer(name, files)
	}
	puller, err = pull.New(pc, logger.With("component", "pull"))
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var perr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		perr = puller.Run(ctx)
	}()
	derr := daemon.Run(ctx)
	wg.Wait()
	st := daemon.Stats()
	logger.Info("stopped", "delivered", st.Delivered, "spilled", st.Spilled, "failed", st.Failed)
	if perr != nil {
		return perr
	}
	return derr
}
