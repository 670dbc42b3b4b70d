package kafka_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/haproxystats-go/haproxystats/internal/kafka"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// TestProduceRecord: Produce sends a value as one record, as it is (binary
// bytes, no newline, never split), with the producer's key; a value above
// MaxRecordBytes is refused before anything is produced.
func TestProduceRecord(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafka(t)
	cfg := testConfig(k.Addr(), "haproxystats-metrics")
	cfg.MaxRecordBytes = 3 * 4096
	r := start(t, cfg)
	value := make([]byte, 3*4096)
	for i := range value {
		value[i] = byte(i)
	}
	ctx := context.Background()
	d, err := r.prod.Produce(ctx, "1795507862", value)
	if err != nil {
		t.Fatalf("Produce: %v", err)
	}
	r.mustDeliver(t, d)
	var tooLarge *kafka.RecordTooLargeError
	if _, err := r.prod.Produce(ctx, "1795507863", append(value, 0)); !errors.As(err, &tooLarge) || tooLarge.Len != len(value)+1 {
		t.Errorf("Produce of %d bytes with a limit of %d = %v, want a *kafka.RecordTooLargeError", len(value)+1, len(value), err)
	}
	recs := testenv.KafkaRecords(t, k.Addr(), cfg.Topic)
	if len(recs) != 1 || string(recs[0].Key) != testKey || !bytes.Equal(recs[0].Value, value) {
		t.Fatalf("read %d records, want one of %d bytes keyed %q", len(recs), len(value), testKey)
	}
	if st := r.prod.Stats(); st.Records != 1 || st.Bytes != uint64(len(value)) || st.Lines != 0 || st.Errors != 1 {
		t.Errorf("Stats() = %+v, want 1 record of %d bytes, 1 error (the refused one)", st, len(value))
	}
}

// TestProduceAboveTopicLimit: a record whose batch is larger than the
// broker's message.max.bytes (after compression) fails its delivery with
// Kafka's MESSAGE_TOO_LARGE, not silently.
func TestProduceAboveTopicLimit(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{"haproxystats-snapshots"},
		BrokerConfigs: map[string]string{"message.max.bytes": "4096"}})
	cfg := testConfig(k.Addr(), "haproxystats-snapshots")
	cfg.MaxRecordBytes = 1 << 20
	r := start(t, cfg)
	value := make([]byte, 64<<10) // random: snappy cannot make it fit
	rnd := rand.NewChaCha8([32]byte{})
	rnd.Read(value)
	d, err := r.prod.Produce(context.Background(), "1795507862", value)
	if err != nil {
		t.Fatal(err)
	}
	err = wait(t, d, time.Minute)
	if !errors.Is(err, kerr.MessageTooLarge) || !strings.Contains(err.Error(), "haproxystats-snapshots") {
		t.Fatalf("delivery of a %d-byte record over message.max.bytes 4096 = %v, want MESSAGE_TOO_LARGE naming the topic", len(value), err)
	}
}
