package config

import (
	"os"
	"strings"
	"testing"
	"time"

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
		// The Kafka spool's temporary directory as a spool: emptied of
		// snapshots at every start.
		{pull + "destination = both\ndst-dir = ${tmp-dst-dir}/kafka\n[kafka]\nbrokers = k:1\n",
			[]string{`[pull] dst-dir = "/var/lib/haproxystats/incoming.tmp/kafka": must differ from /var/lib/haproxystats/incoming.tmp/kafka, where the Kafka spool's rounds are written`}},
		{pull + "destination = kafka\nkafka-dst-dir = ${tmp-dst-dir}/kafka/\n[kafka]\nbrokers = k:1\n",
			[]string{`[pull] kafka-dst-dir = "/var/lib/haproxystats/incoming.tmp/kafka/": must differ from /var/lib/haproxystats/incoming.tmp/kafka`}},
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

// TestProcessSource: [process] source and the cluster options, their
// defaults tied to [pull] pull-interval, and the [kafka] metric rule.
func TestProcessSource(t *testing.T) {
	const kafka = "[kafka]\nbrokers = k:9092\n"
	for _, tt := range []struct {
		text                         string
		source, cluster              string
		interval, wait, late, expiry time.Duration
		metrics                      bool
	}{
		{"", "spool", "", 10 * time.Second, 10 * time.Second, 30 * time.Second, 50 * time.Second, false},
		{kafka, "spool", "", 10 * time.Second, 10 * time.Second, 30 * time.Second, 50 * time.Second, true},
		{"[pull]\npull-interval = 30\n[process]\nsource = KAFKA\n" + kafka, "kafka", "", 30 * time.Second, 30 * time.Second, 90 * time.Second, 150 * time.Second, false},
		{"[process]\nsource = kafka\ncluster-name = web-fra1\n" + kafka + "topic = lines\n", "kafka", "web-fra1", 10 * time.Second, 10 * time.Second, 30 * time.Second, 50 * time.Second, true},
		{"[process]\nsource = kafka\ncluster-interval = 60\ncluster-wait = 2.5\ncluster-late = 0\ncluster-hosts-expiry = 600\n" + kafka,
			"kafka", "", time.Minute, 2500 * time.Millisecond, 0, 10 * time.Minute, false},
		{"[process]\ncluster-name = web\n", "spool", "web", 10 * time.Second, 10 * time.Second, 30 * time.Second, 50 * time.Second, false},
	} {
		ps, err := load(t, tt.text).ProcessSettings()
		if err != nil {
			t.Errorf("ProcessSettings(%q): %v", tt.text, err)
			continue
		}
		p := ps.Process
		if p.Source != tt.source || p.FromKafka() != (tt.source == "kafka") || p.Cluster != tt.cluster || p.ClusterInterval != tt.interval ||
			p.ClusterWait != tt.wait || p.ClusterLate != tt.late || p.ClusterHostsExpiry != tt.expiry || ps.KafkaMetrics != tt.metrics {
			t.Errorf("ProcessSettings(%q) = source %q cluster %q interval %v wait %v late %v expiry %v kafka metrics %v; want %q %q %v %v %v %v %v",
				tt.text, p.Source, p.Cluster, p.ClusterInterval, p.ClusterWait, p.ClusterLate, p.ClusterHostsExpiry, ps.KafkaMetrics,
				tt.source, tt.cluster, tt.interval, tt.wait, tt.late, tt.expiry, tt.metrics)
		}
	}
	// The puller reads cluster-name only when it publishes.
	pull := "[pull]\nsocket-dir = /run/haproxy\ndestination = kafka\n[process]\ncluster-name = web\n[kafka]\nbrokers = k:1\n"
	if p, err := load(t, pull).PullSettings(); err != nil || p.Cluster != "web" {
		t.Errorf("PullSettings().Cluster = %+v, %v; want web", p, err)
	}
	if p, err := load(t, strings.Replace(pull, "destination = kafka", "destination = spool", 1)).PullSettings(); err != nil || p.Cluster != "" {
		t.Errorf("PullSettings().Cluster with destination = spool = %q, %v; want none", p.Cluster, err)
	}
}

// TestProcessSourceErrors: what the Kafka source and the cluster options
// refuse, each error naming the section, the option and the value.
func TestProcessSourceErrors(t *testing.T) {
	const kafka = "[kafka]\nbrokers = k:9092\n"
	for _, tt := range []struct {
		text string
		want []string
	}{
		{"[process]\nsource = spoool\n", []string{`[process] source = "spoool": unknown source (want one of spool, kafka)`}},
		{"[process]\nsource = kafka\n", []string{`[process] source = "kafka": needs a [kafka] section`}},
		{"[process]\nsource = kafka\nmonotonic-counters = yes\n" + kafka, []string{`[process] monotonic-counters = "true": not supported with source = kafka`}},
		{"[process]\nsource = kafka\n[local-store]\n" + kafka, []string{`[local-store]: not supported with [process] source = kafka`}},
		{"[process]\ncluster-name = web.fra1\n", []string{`[process] cluster-name = "web.fra1": cluster name "web.fra1": byte "."`}},
		{"[process]\ncluster-name =\n", []string{`[process] cluster-name = "": empty cluster name`}},
		{"[process]\ncluster-interval = 0\ncluster-wait = -1\ncluster-late = x\n", []string{`[process] cluster-interval = "0": must be >= 1`,
			`[process] cluster-wait = "-1": must be > 0`, `[process] cluster-late = "x"`}},
		{"[process]\ncluster-interval = 10\ncluster-hosts-expiry = 5\n", []string{`[process] cluster-hosts-expiry = "5": must be >= cluster-interval (10)`}},
		{"[pull]\npull-interval = 0\n", []string{`[process] cluster-interval = "0": must be >= 1`}},
	} {
		_, err := load(t, tt.text).ProcessSettings()
		if err == nil {
			t.Errorf("ProcessSettings(%q): no error", tt.text)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ProcessSettings(%q): error\n%v\nwant one containing %q", tt.text, err, w)
			}
		}
	}
	pull := "[pull]\nsocket-dir = /run/haproxy\ndestination = kafka\n[process]\ncluster-name = a b\n[kafka]\nbrokers = k:1\n"
	if _, err := load(t, pull).PullSettings(); err == nil || !strings.Contains(err.Error(), `[process] cluster-name = "a b"`) {
		t.Errorf("PullSettings with cluster-name = a b: %v, want an error naming it", err)
	}
}
