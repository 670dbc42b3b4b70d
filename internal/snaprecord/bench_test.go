package snaprecord

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
	"github.com/twmb/franz-go/pkg/kgo"
)

// largeSnapshot generates the large benchmark snapshot (8 processes x 1000
// backends x 10 servers, the files of shared/perf/gen_large.py) once.
func largeSnapshot(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "1795507862")
	if err := testenv.GenerateLarge("../../testdata/conformance/medium-defaults/incoming/1795507862", dir); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkRecord measures the record of the medium conformance snapshot
// (4 processes, 330 KB) and of the large one: encoding it from disk,
// parsing it and writing it out (the consumer's work), and compressing it
// with each codec of [kafka] compression as the producer does (franz-go's
// compressor, default levels). It reports the record's size
// (record-bytes) and the compressed size (compressed-bytes): the figures to
// compare with the topic's max.message.bytes.
func BenchmarkRecord(b *testing.B) {
	for _, c := range []struct {
		name string
		dir  func(b *testing.B) string
	}{
		{"medium", func(*testing.B) string { return "../../testdata/conformance/medium-defaults/incoming/1795507862" }},
		{"large", largeSnapshot},
	} {
		b.Run(c.name, func(b *testing.B) { benchRecord(b, c.dir(b)) })
	}
}

func benchRecord(b *testing.B, dir string) {
	value, err := EncodeDir(dir, Origin{Host: testHost}, 1<<30)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.SetBytes(int64(len(value)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodeDir(dir, Origin{Host: testHost}, 1<<30); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(value)), "record-bytes")
	})
	b.Run("parse-write", func(b *testing.B) {
		b.SetBytes(int64(len(value)))
		b.ReportAllocs()
		for b.Loop() {
			r, err := Parse(value, Limits{MaxBytes: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.WriteDir(b.TempDir()); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	} {
		b.Run("compress-"+c.name, func(b *testing.B) {
			comp, err := kgo.DefaultCompressor(c.codec)
			if err != nil {
				b.Fatal(err)
			}
			var buf bytes.Buffer
			var out []byte
			b.SetBytes(int64(len(value)))
			for b.Loop() {
				buf.Reset()
				out, _ = comp.Compress(&buf, value)
			}
			b.ReportMetric(float64(len(out)), "compressed-bytes")
			b.ReportMetric(float64(len(value))/float64(len(out)), "ratio")
		})
	}
}
