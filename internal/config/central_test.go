package config

import (
	"os"
	"strings"
	"testing"

	"github.com/haproxystats-go/haproxystats/internal/snaprecord"
)

// TestPullDestination: [pull] destination and kafka-dst-dir, and the
// [kafka] section and [graphite] hostname that haproxystats-pull reads
// when rounds go to Kafka.
func TestPullDestination(t *testing.T) {
	const pull = "[paths]\nbase-dir = /srv\n[pull]\nsocket-dir = /run/haproxy\n"
	for _, tt := range []struct {
		text              string
		dest, dir, host   string
		toSpool, toKafka  bool
		kafka             bool
		brokers, snapshot string
	}{
		{pull, "spool", "", "", true, false, false, "", ""},
		{pull + "destination = SPOOL\n[kafka]\nbrokers = bad\n", "spool", "", "", true, false, false, "", ""},
		{pull + "destination = kafka\n[kafka]\nbrokers = k:9092\n", "kafka", "/srv/kafka-outgoing", "", false, true, true, "k:9092", "haproxystats-snapshots"},
		{pull + "destination = both\nkafka-dst-dir = /q\n[kafka]\nbrokers = k:1\nsnapshot-topic = s\n[graphite]\nhostname = lb9.dc2\n",
			"both", "/q", "lb9.dc2", true, true, true, "k:1", "s"},
	} {
		p, err := load(t, tt.text).PullSettings()
		if err != nil {
			t.Errorf("PullSettings(%q): %v", tt.text, err)
			continue
		}
		if p.Destination != tt.dest || p.KafkaDstDir != tt.dir || p.Hostname != tt.host || p.ToSpool() != tt.toSpool || p.ToKafka() != tt.toKafka ||
			p.Kafka.Enabled != tt.kafka || strings.Join(p.Kafka.Brokers, ",") != tt.brokers || p.Kafka.SnapshotTopic != tt.snapshot {
			t.Errorf("PullSettings(%q) = destination %q, dir %q, host %q, to spool %v, to kafka %v, kafka %+v", tt.text,
				p.Destination, p.KafkaDstDir, p.Hostname, p.ToSpool(), p.ToKafka(), p.Kafka)
		}
	}
}

// TestCentralErrors: every new option refuses a bad value with an error
// naming the section, the option and the value.
func TestCentralErrors(t *testing.T) {
	const pull = "[pull]\nsocket-dir = /run/haproxy\n"
	for _, tt := range []struct {
		text string
		want []string
	}{
		{pull + "destination = graphite\n", []string{`[pull] destination = "graphite": unknown destination (want one of spool, kafka, both)`}},
		{pull + "destination = kafka\n", []string{`[pull] destination = "kafka": needs a [kafka] section with brokers`}},
		{pull + "destination = both\nkafka-dst-dir = /var/lib/haproxystats/incoming/\n[kafka]\nbrokers = k:1\n",
			[]string{`[pull] kafka-dst-dir = "/var/lib/haproxystats/incoming/": must differ from dst-dir`}},
		{pull + "destination = kafka\nkafka-dst-dir = ${tmp-dst-dir}\n[kafka]\nbrokers = k:1\n",
			[]string{`[pull] kafka-dst-dir = "/var/lib/haproxystats/incoming.tmp": must differ from tmp-dst-dir`}},
		{pull + "destination = kafka\nkafka-dst-dir =\n[kafka]\nbrokers = k:1\n", []string{`[pull] kafka-dst-dir = "": must not be empty`}},
		{pull + "destination = kafka\n[kafka]\nbrokers = k\nmax-snapshot-bytes = 1023\n",
			[]string{`[kafka] brokers = "k": broker "k" has no port`, `[kafka] max-snapshot-bytes = "1023": must be between 1024 and 1073740800`}},
		{pull + "destination = kafka\n[kafka]\nbrokers = k:1\n[graphite]\nhostname = lb/1\n", []string{`[graphite] hostname = "lb/1": host name "lb/1": byte "/"`}},
		{"[kafka]\nbrokers = k:1\nsnapshot-topic = a b\n", []string{`[kafka] snapshot-topic = "a b": character ' '`}},
		{"[kafka]\nbrokers = k:1\nsnapshot-topic = t\ntopic = t\n", []string{`[kafka] snapshot-topic = "t": must differ from topic`}},
		{"[kafka]\nbrokers = k:1\ngroup =\nconsumer-dir =\n", []string{`[kafka] group = "": must not be empty`, `[kafka] consumer-dir = "": must not be empty`}},
		{"[kafka]\nbrokers = k:1\nconsumer-queue-size = 0\n", []string{`[kafka] consumer-queue-size = "0": must be between 1 and 1024`}},
		{"[kafka]\nbrokers = k:1\nmax-snapshot-bytes = 1073740801\n", []string{`[kafka] max-snapshot-bytes = "1073740801": must be between 1024 and 1073740800`}},
		{"[graphite]\nhostname = .lb\n", []string{`[graphite] hostname = ".lb": host name ".lb": byte "."`}},
		{"[graphite]\nhostname =\n", []string{`[graphite] hostname = "": empty host name`}},
	} {
		c := load(t, tt.text)
		var err error
		if strings.HasPrefix(tt.text, "[pull]") {
			_, err = c.PullSettings()
		} else {
			_, err = c.ProcessSettings()
		}
		if err == nil {
			t.Errorf("settings of %q: no error", tt.text)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("settings of %q: error\n%v\nwant one containing %q", tt.text, err, w)
			}
		}
	}
}

// TestGraphiteHostname: [graphite] hostname is read by haproxystats-process
// too, for the prefix (internal/pipeline.Prefix) and the Kafka key.
func TestGraphiteHostname(t *testing.T) {
	ps, err := load(t, "[graphite]\nhostname = lb3.example.com\n").ProcessSettings()
	if err != nil || ps.Graphite.Hostname != "lb3.example.com" {
		t.Fatalf("ProcessSettings().Graphite.Hostname = %+v, %v, want lb3.example.com", ps, err)
	}
	ps, err = load(t, "").ProcessSettings()
	if err != nil || ps.Graphite.Hostname != "" {
		t.Fatalf("ProcessSettings().Graphite.Hostname without the option = %q, %v, want \"\"", ps.Graphite.Hostname, err)
	}
}

func TestResolveHostname(t *testing.T) {
	if h, err := ResolveHostname("lb1.dc"); err != nil || h != "lb1.dc" {
		t.Errorf("ResolveHostname(lb1.dc) = %q, %v", h, err)
	}
	sys, oserr := os.Hostname()
	h, err := ResolveHostname("")
	switch {
	case oserr == nil && snaprecord.CheckHost(sys) == nil:
		if err != nil || h != sys {
			t.Errorf("ResolveHostname(\"\") = %q, %v, want the system's %q", h, err, sys)
		}
	case err == nil || !strings.Contains(err.Error(), "[graphite] hostname"):
		t.Errorf("ResolveHostname(\"\") with the system's %q (%v) = %q, %v, want an error naming [graphite] hostname", sys, oserr, h, err)
	}
}
