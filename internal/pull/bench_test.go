package pull

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// BenchmarkRound measures one round (pull, write, fsync, rename) against
// haproxy instances: 4 small ones always; 8 large ones (1000 backends x 10
// servers per instance, servers on a closed port without health checks)
// only with HAPROXYSTATS_LARGE=1:
//
//	HAPROXYSTATS_LARGE=1 go test -run '^$' -bench . -benchtime 20x ./internal/pull/
//
// bytes/round is the size of one snapshot; MB/s is that size over the time
// of a round.
func BenchmarkRound(b *testing.B) {
	for _, bc := range []struct {
		name                         string
		instances, backends, servers int
		needsLarge                   bool
	}{
		{"small", 4, 10, 3, false},
		{"large", 8, 1000, 10, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if bc.needsLarge && os.Getenv("HAPROXYSTATS_LARGE") != "1" {
				b.Skip("large topology: set HAPROXYSTATS_LARGE=1")
			}
			dir := testenv.ShortDir(b)
			start := time.Now()
			startInstances(b, dir, bc.instances, bc.backends, bc.servers)
			b.Logf("%d haproxy instances with %d backends x %d servers started in %v",
				bc.instances, bc.backends, bc.servers, time.Since(start).Round(time.Millisecond))
			cfg := testConfig(b, dir)
			cfg.PullTimeout = time.Minute
			p := newPuller(b, cfg, nil)
			ctx := context.Background()

			var size int64
			b.ReportAllocs()
			i := int64(0)
			for b.Loop() {
				i++
				if err := p.Round(ctx, time.Unix(epoch+i, 0)); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				snap := filepath.Join(cfg.DstDir, strconv.FormatInt(epoch+i, 10))
				size = dirSize(b, snap)
				if err := os.RemoveAll(snap); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.SetBytes(size)
			b.ReportMetric(float64(size), "bytes/round")
		})
	}
}

func dirSize(b *testing.B, dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			b.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}
