package config

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestKafkaSettingsAbsent(t *testing.T) {
	c := load(t, "[graphite]\nport = 2003\n")
	got, err := c.KafkaSettings()
	if err != nil {
		t.Fatalf("KafkaSettings() without [kafka]: %v", err)
	}
	if !reflect.DeepEqual(*got, Kafka{}) {
		t.Errorf("KafkaSettings() without [kafka] = %+v, want the zero value (disabled)", *got)
	}
	ps, err := c.ProcessSettings()
	if err != nil {
		t.Fatal(err)
	}
	if ps.Kafka.Enabled {
		t.Error("ProcessSettings().Kafka.Enabled = true without a [kafka] section")
	}
}

func TestKafkaSettingsDefaults(t *testing.T) {
	c := load(t, "[kafka]\nbrokers = k1:9092\n")
	got, err := c.KafkaSettings()
	if err != nil {
		t.Fatalf("KafkaSettings(): %v", err)
	}
	want := Kafka{
		Enabled:          true,
		Brokers:          []string{"k1:9092"},
		Topic:            "haproxystats-metrics",
		ClientID:         "haproxystats",
		Compression:      "snappy",
		DialTimeout:      10 * time.Second,
		RequestTimeout:   10 * time.Second,
		ProduceTimeout:   10 * time.Second,
		RetryBackoff:     250 * time.Millisecond,
		RetryBackoffMax:  5 * time.Second,
		MaxRecordBytes:   65536,
		MaxBufferedBytes: 33554432,

		SnapshotTopic:     "haproxystats-snapshots",
		MaxSnapshotBytes:  67108864,
		Group:             "haproxystats-process",
		ConsumerDir:       "/var/lib/haproxystats/kafka-incoming",
		ConsumerQueueSize: 16,
		SessionTimeout:    45 * time.Second,
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("KafkaSettings() =\n%+v\nwant\n%+v", *got, want)
	}
	ps, err := c.ProcessSettings()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ps.Kafka, want) {
		t.Errorf("ProcessSettings().Kafka = %+v, want %+v", ps.Kafka, want)
	}
}

func TestKafkaSettingsAll(t *testing.T) {
	c := load(t, `[kafka]
brokers = k1:9092, k2:09093
  [::1]:9094	k4.example.com:9095
topic = lb.metrics_v1
client-id = lb7
compression = ZSTD
tls-ca-file = /etc/ca.pem
tls-cert-file = /etc/cert.pem
tls-key-file = /etc/key.pem
sasl-mechanism = scram-sha-512
sasl-user = hs
sasl-password = s$$cret
dial-timeout = 2.5
request-timeout = 3
produce-timeout = 4
retry-backoff = 0.1
retry-backoff-max = 0.1
max-record-bytes = 1024
max-buffered-bytes = 1024
snapshot-topic = lb.snapshots
max-snapshot-bytes = 1024
group = central-1
consumer-dir = /srv/from-kafka
consumer-queue-size = 1
session-timeout = 6.5
`)
	got, err := c.KafkaSettings()
	if err != nil {
		t.Fatalf("KafkaSettings(): %v", err)
	}
	want := Kafka{
		Enabled:          true,
		Brokers:          []string{"k1:9092", "k2:9093", "[::1]:9094", "k4.example.com:9095"},
		Topic:            "lb.metrics_v1",
		ClientID:         "lb7",
		Compression:      "zstd",
		TLS:              true,
		TLSCAFile:        "/etc/ca.pem",
		TLSCertFile:      "/etc/cert.pem",
		TLSKeyFile:       "/etc/key.pem",
		SASLMechanism:    "SCRAM-SHA-512",
		SASLUser:         "hs",
		SASLPassword:     "s$cret",
		DialTimeout:      2500 * time.Millisecond,
		RequestTimeout:   3 * time.Second,
		ProduceTimeout:   4 * time.Second,
		RetryBackoff:     100 * time.Millisecond,
		RetryBackoffMax:  100 * time.Millisecond,
		MaxRecordBytes:   1024,
		MaxBufferedBytes: 1024,

		SnapshotTopic:     "lb.snapshots",
		MaxSnapshotBytes:  1024,
		Group:             "central-1",
		ConsumerDir:       "/srv/from-kafka",
		ConsumerQueueSize: 1,
		SessionTimeout:    6500 * time.Millisecond,
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("KafkaSettings() =\n%+v\nwant\n%+v", *got, want)
	}
}

// TestKafkaTLSEnabledBy checks which options turn TLS on.
func TestKafkaTLSEnabledBy(t *testing.T) {
	for _, tt := range []struct {
		text string
		want bool
	}{
		{"", false},
		{"tls = true\n", true},
		{"tls-ca-file = /ca.pem\n", true},
		{"tls-insecure-skip-verify = yes\n", true},
		{"tls-cert-file = /c\ntls-key-file = /k\n", true},
		{"tls = off\n", false},
	} {
		c := load(t, "[kafka]\nbrokers = k:1\n"+tt.text)
		got, err := c.KafkaSettings()
		if err != nil {
			t.Fatalf("KafkaSettings(%q): %v", tt.text, err)
		}
		if got.TLS != tt.want {
			t.Errorf("KafkaSettings(%q).TLS = %v, want %v", tt.text, got.TLS, tt.want)
		}
	}
}

func TestKafkaValidation(t *testing.T) {
	const ok = "[kafka]\nbrokers = k:9092\n"
	for _, tt := range []struct {
		name, text, want string
	}{
		{"no brokers", "[kafka]\n", `[kafka]: brokers is not set`},
		{"brokers empty", "[kafka]\nbrokers = , \n", `[kafka] brokers = ",": must not be empty`},
		{"broker without port", "[kafka]\nbrokers = k1:9092,k2\n", `[kafka] brokers = "k1:9092,k2": broker "k2" has no port`},
		{"broker port range", "[kafka]\nbrokers = k1:70000\n", `[kafka] brokers = "k1:70000": broker "k1:70000": port "70000" is not between 1 and 65535`},
		{"broker port name", "[kafka]\nbrokers = k1:kafka\n", `port "kafka" is not between 1 and 65535`},
		{"broker without host", "[kafka]\nbrokers = :9092\n", `[kafka] brokers = ":9092": broker ":9092" has no host`},
		{"broker ipv6 without brackets", "[kafka]\nbrokers = ::1:9092\n", `[kafka] brokers = "::1:9092": broker "::1:9092": want host:port`},
		{"topic empty", ok + "topic =\n", `[kafka] topic = "": must not be empty`},
		{"topic character", ok + "topic = lb/metrics\n", `[kafka] topic = "lb/metrics": character '/' is not valid`},
		{"topic dot", ok + "topic = ..\n", `[kafka] topic = "..": "." and ".." are not valid`},
		{"topic long", ok + "topic = " + strings.Repeat("t", 250) + "\n", `longer than 249 characters`},
		{"client-id empty", ok + "client-id =\n", `[kafka] client-id = "": must not be empty`},
		{"compression", ok + "compression = brotli\n", `[kafka] compression = "brotli": unknown compression (want one of none, gzip, snappy, lz4, zstd)`},
		{"tls", ok + "tls = maybe\n", `[kafka] tls = "maybe": not a boolean`},
		{"tls-insecure-skip-verify", ok + "tls-insecure-skip-verify = 2\n", `[kafka] tls-insecure-skip-verify = "2": not a boolean`},
		{"tls-ca-file empty", ok + "tls-ca-file =\n", `[kafka] tls-ca-file = "": must not be empty`},
		{"cert without key", ok + "tls-cert-file = /c.pem\n", `[kafka] tls-cert-file = "/c.pem": needs tls-key-file`},
		{"key without cert", ok + "tls-key-file = /k.pem\n", `[kafka] tls-key-file = "/k.pem": needs tls-cert-file`},
		{"sasl mechanism", ok + "sasl-mechanism = GSSAPI\nsasl-user = u\nsasl-password = p\n", `[kafka] sasl-mechanism = "GSSAPI": unknown SASL mechanism (want one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)`},
		{"sasl without user", ok + "sasl-mechanism = PLAIN\nsasl-password = p\n", `[kafka]: sasl-mechanism is set but sasl-user is not`},
		{"sasl without password", ok + "sasl-mechanism = PLAIN\nsasl-user = u\n", `[kafka]: sasl-mechanism is set but sasl-password is not`},
		{"sasl user without mechanism", ok + "sasl-user = u\n", `[kafka]: sasl-user is set but sasl-mechanism is not`},
		{"sasl password empty", ok + "sasl-mechanism = PLAIN\nsasl-user = u\nsasl-password =\n", `[kafka] sasl-password = "": must not be empty`},
		{"dial-timeout", ok + "dial-timeout = 0\n", `[kafka] dial-timeout = "0": must be > 0`},
		{"request-timeout", ok + "request-timeout = 1m\n", `[kafka] request-timeout = "1m": not a number`},
		{"produce-timeout", ok + "produce-timeout = -1\n", `[kafka] produce-timeout = "-1": must be > 0`},
		{"retry-backoff", ok + "retry-backoff = 0\n", `[kafka] retry-backoff = "0": must be > 0`},
		{"retry-backoff-max below", ok + "retry-backoff = 2\nretry-backoff-max = 1\n", `[kafka] retry-backoff-max = "1": must be >= retry-backoff (2)`},
		{"max-record-bytes small", ok + "max-record-bytes = 100\n", `[kafka] max-record-bytes = "100": must be between 1024 and 1000000`},
		{"max-record-bytes large", ok + "max-record-bytes = 2000000\n", `[kafka] max-record-bytes = "2000000": must be between 1024 and 1000000`},
		{"max-buffered-bytes below record", ok + "max-buffered-bytes = 4096\n", `[kafka] max-buffered-bytes = "4096": must be >= max-record-bytes (65536)`},
		{"max-buffered-bytes type", ok + "max-buffered-bytes = 32M\n", `[kafka] max-buffered-bytes = "32M": not an integer`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := load(t, tt.text)
			_, err := c.KafkaSettings()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("KafkaSettings() of %q: error = %v, want %q", tt.text, err, tt.want)
			}
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Errorf("error %v is not an *Error", err)
			}
			if _, err := c.ProcessSettings(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ProcessSettings() of %q: error = %v, want %q", tt.text, err, tt.want)
			}
		})
	}
}

// TestKafkaValidationAllAtOnce: every problem of the section in one error.
func TestKafkaValidationAllAtOnce(t *testing.T) {
	c := load(t, "[kafka]\nbrokers = k\ncompression = lzma\ndial-timeout = 0\n")
	_, err := c.KafkaSettings()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"brokers", "compression", "dial-timeout"} {
		if !strings.Contains(err.Error(), "[kafka] "+want+" = ") {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// TestPrintKafka: -P lists [kafka] only when the user's files have it, and
// hides the SASL password.
func TestPrintKafka(t *testing.T) {
	var b bytes.Buffer
	if err := load(t, "").Print(&b, ProcessSections); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "[kafka]") {
		t.Errorf("Print without [kafka] lists it:\n%s", b.String())
	}
	b.Reset()
	c := load(t, "[kafka]\nbrokers = k:9092\nsasl-mechanism = PLAIN\nsasl-user = u\nsasl-password = hunter2\n")
	if err := c.Print(&b, ProcessSections); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"[kafka]\n", "brokers = k:9092\n", "sasl-password = (hidden)\n", "topic = haproxystats-metrics\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("Print with [kafka] lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("Print shows the SASL password:\n%s", out)
	}
	// haproxystats-pull reads [kafka] too (destination = kafka or both).
	b.Reset()
	if err := c.Print(&b, PullSections); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "[kafka]\n") || strings.Contains(b.String(), "hunter2") {
		t.Errorf("Print(PullSections) does not list [kafka], or shows the password:\n%s", b.String())
	}
}

func TestParseBroker(t *testing.T) {
	for in, want := range map[string]string{
		"k:9092":         "k:9092",
		"k:09092":        "k:9092",
		"[::1]:9092":     "[::1]:9092",
		"10.0.0.1:1":     "10.0.0.1:1",
		"kafka.lan:9093": "kafka.lan:9093",
	} {
		if got, err := ParseBroker(in); err != nil || got != want {
			t.Errorf("ParseBroker(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"k", "k:", ":1", "k:0", "k:65536", "k:+1", "::1:9092", "k:1:2"} {
		if got, err := ParseBroker(in); err == nil {
			t.Errorf("ParseBroker(%q) = %q, want an error", in, got)
		}
	}
}

// TestSecretNotInErrors: a SASL password with a "$" that is not an
// interpolation, or one a validation refuses, is never printed in the
// error (which goes to the journal), as -P never prints it.
func TestSecretNotInErrors(t *testing.T) {
	for _, text := range []string{
		"[kafka]\nbrokers = k:9092\nsasl-mechanism = PLAIN\nsasl-user = u\nsasl-password = s3cr$tpass\n",
		"[kafka]\nbrokers = k:9092\nsasl-mechanism = PLAIN\nsasl-user = u\nsasl-password = ${nowhere:s3cretpass}\n",
	} {
		c := load(t, text)
		_, err := c.ProcessSettings()
		var b bytes.Buffer
		perr := c.Print(&b, ProcessSections)
		for _, e := range []error{err, perr} {
			if e == nil {
				t.Errorf("%q: no error", text)
				continue
			}
			if strings.Contains(e.Error(), "s3cr") || !strings.Contains(e.Error(), "[kafka] sasl-password = \"(hidden)\"") {
				t.Errorf("%q: the error shows the password, or does not name the option: %v", text, e)
			}
		}
	}
	// Error itself hides the value of a secret option, whoever built it.
	e := &Error{Section: SectionKafka, Option: "sasl-password", Value: "hunter2", Err: errors.New("too short")}
	if strings.Contains(e.Error(), "hunter2") {
		t.Errorf("Error() = %s", e)
	}
}
