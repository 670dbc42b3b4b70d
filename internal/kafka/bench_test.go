package kafka_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// BenchmarkProduceSnapshot produces the lines of the medium-defaults case
// (4 processes x 50 backends x 5 servers + 20 frontends, 10725 lines) as
// one stream per operation, in writes of 128 lines, to a kfake broker on
// loopback, and waits for every record to be acknowledged: the cost of a
// snapshot on the Kafka side, broker included.
func BenchmarkProduceSnapshot(b *testing.B) {
	k := testenv.StartKafka(b)
	var lines []string
	for _, c := range loadCorpus(b) {
		if c.name == "medium-defaults" {
			lines = c.lines
		}
	}
	var chunks [][]byte
	size := 0
	for i := 0; i < len(lines); i += 128 {
		c := []byte(strings.Join(lines[i:min(i+128, len(lines))], "\n") + "\n")
		chunks = append(chunks, c)
		size += len(c)
	}
	cfg := testConfig(k.Addr(), "haproxystats-metrics")
	cfg.MaxRecordBytes = 65536
	cfg.MaxBufferedBytes = 32 << 20
	r := start(b, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s, err := r.p.Open(ctx, "1795507862")
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range chunks {
			if _, err := s.Write(c); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Finish().Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(lines))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
