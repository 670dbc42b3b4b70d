package snapsource_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/snapsource"
)

// The processing tier's loop: workers take snapshots, process each one
// from its directory for its host, and report it; the offsets follow.
// process stands for the daemon's pipeline and destinations.
func Example() {
	var (
		settings config.Kafka // validated [kafka] section
		logger   *slog.Logger
		process  func(ctx context.Context, host, epoch, dir string) error
	)
	src, err := snapsource.FromSettings(settings, 10*time.Second, logger)
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 4 { // [process] workers
		wg.Go(func() {
			for {
				s, err := src.Next(ctx)
				if errors.Is(err, snapsource.ErrClosed) || ctx.Err() != nil {
					return
				}
				err = process(ctx, s.Host, s.Epoch, s.Dir)
				if err != nil {
					time.Sleep(time.Second) // back off: it is handed out again at once
				}
				src.Done(s, err == nil)
			}
		})
	}
	_ = src.Run(ctx) // until the stop; waits for the workers' Done
	wg.Wait()
}
