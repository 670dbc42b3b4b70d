package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/engine/enginetest"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// TestOneDaemonKafka runs `run --pull` with [kafka] against a real HAProxy
// and a Kafka broker (kfake as its own process): rounds are pulled into the
// spool, processed, sent to Graphite and produced to Kafka. A round whose
// snapshot has left the spool must be in Kafka with exactly the lines
// Graphite got for it (frontend, backend, server, daemon and self-metrics,
// KafkaRecords and the others included), in records keyed by the host
// name, each ending with a newline.
func TestOneDaemonKafka(t *testing.T) {
	testenv.HAProxyBinary(t)
	testenv.KcatBinary(t)
	sockets := testenv.ShortDir(t)
	testenv.StartHAProxy(t, testenv.HAProxyConfig{
		StatsSockets: []string{filepath.Join(sockets, "admin1.sock")},
		Body:         testenv.Proxies(testenv.FreePort(t), 2, 2, testenv.FreePort(t)),
	})
	const topic = "haproxystats-metrics"
	k := testenv.StartKafka(t)
	rec := testenv.NewRecorder(t, 0)
	base := t.TempDir()
	conf := filepath.Join(base, "haproxystats.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`[paths]
base-dir = %s
[pull]
socket-dir = %s
pull-interval = 1
[process]
workers = 1
[graphite]
server = 127.0.0.1
port = %d
prefix-hostname = false
%s`, base, sockets, rec.Port(), k.ConfigSection(topic))), 0o644); err != nil {
		t.Fatal(err)
	}
	incoming := filepath.Join(base, "incoming")

	stop, stderr := startRunPull(t, conf)

	// A round is delivered when its snapshot has left the spool after
	// Graphite got its TotalWallClockTime line.
	var round string
	seen := map[string]bool{}
	if !waitFor(30*time.Second, func() bool {
		data, _ := rec.Bytes()
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, ".haproxystats.TotalWallClockTime ") {
				seen[l[strings.LastIndexByte(l, ' ')+1:]] = true
			}
		}
		left := map[string]bool{}
		for _, s := range spoolDirs(t, incoming) {
			left[s] = true
		}
		for ts := range seen {
			if !left[ts] {
				round = ts
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no round delivered within 30s; spool %v\n%s", spoolDirs(t, incoming), stderr.String())
	}
	stop()

	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	recs := testenv.KcatConsume(t, k.Addr(), topic)
	for _, r := range recs {
		if r.Key != host || !strings.HasSuffix(r.Value, "\n") {
			t.Errorf("record %d: key %q, value ending %q; want the host name %q and a newline", r.Offset, r.Key, r.Value[max(0, len(r.Value)-40):], host)
		}
	}
	ofRound := func(data []byte) []byte {
		var b bytes.Buffer
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasSuffix(l, " "+round) {
				b.WriteString(l + "\n")
			}
		}
		return b.Bytes()
	}
	graphite, _ := rec.Bytes()
	want, got := ofRound(graphite), ofRound(testenv.KafkaLines(recs))
	for _, m := range enginetest.Compare(want, got, false) {
		t.Errorf("round %s, Kafka compared with Graphite: %s", round, m)
	}
	for _, path := range []string{"loadbalancers.haproxy.frontend.fe.stot ", "loadbalancers.haproxy.backend.be1.TotalServers ",
		"loadbalancers.haproxy.daemon.CurrConns ", "loadbalancers.haproxy.haproxystats.KafkaRecords "} {
		if !bytes.Contains(got, []byte(path)) {
			t.Errorf("round %s: Kafka has no %q line", round, path)
		}
	}
	t.Logf("round %s: %d lines in Kafka (%d records in the topic)", round, bytes.Count(got, []byte("\n")), len(recs))
}
