package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kafka is the validated [kafka] section: the Kafka destination of
// haproxystats-process. The section's presence enables it; without it every
// other field is zero.
type Kafka struct {
	Enabled bool
	// Brokers are the seed brokers, host:port each (IPv6 in brackets), in
	// the order written.
	Brokers  []string
	Topic    string
	ClientID string
	// Compression is none, gzip, snappy, lz4 or zstd (lower case).
	Compression string
	// TLS is true when tls = true or any tls-* file is set or
	// tls-insecure-skip-verify is true. The files are checked by whoever
	// loads them (internal/kafka), not here.
	TLS                   bool
	TLSCAFile             string // "" = the system's roots
	TLSCertFile           string // client certificate; with TLSKeyFile
	TLSKeyFile            string
	TLSInsecureSkipVerify bool
	// SASLMechanism is "" (no SASL), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512;
	// when set, SASLUser and SASLPassword are too.
	SASLMechanism string
	SASLUser      string
	SASLPassword  string
	DialTimeout   time.Duration // > 0
	// RequestTimeout bounds a request without a timeout of its own, and is
	// added to ProduceTimeout for a produce request.
	RequestTimeout  time.Duration // > 0
	ProduceTimeout  time.Duration // > 0, the broker's own bound (acks=all)
	RetryBackoff    time.Duration // > 0, first wait after a failure
	RetryBackoffMax time.Duration // >= RetryBackoff
	// MaxRecordBytes bounds the value of one record: lines are packed into
	// records up to it, never split.
	MaxRecordBytes int
	// MaxBufferedBytes bounds the record bytes produced and not yet
	// acknowledged; >= MaxRecordBytes.
	MaxBufferedBytes int

	// SnapshotTopic is the topic of the snapshot records (central
	// processing): haproxystats-pull publishes to it with [pull]
	// destination = kafka or both, the processing tier consumes it. It
	// differs from Topic.
	SnapshotTopic string
	// MaxSnapshotBytes bounds one snapshot record's value (before
	// compression), on both sides: a larger snapshot is not published, a
	// larger record is not decoded.
	MaxSnapshotBytes int
	// Group is the consumer group of the processing tier.
	Group string
	// ConsumerDir is where the consumer writes the snapshots it hands
	// to the processor: <ConsumerDir>/<host>/<epoch>.
	ConsumerDir string
	// ConsumerQueueSize bounds the snapshots consumed and not yet
	// processed; the consumer stops fetching at this many.
	ConsumerQueueSize int
	// SessionTimeout is how long a processor of the group may be silent
	// (a crash) before its partitions move to the others.
	SessionTimeout time.Duration
}

// Compressions are the valid values of [kafka] compression.
var Compressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// SASLMechanisms are the valid values of [kafka] sasl-mechanism.
var SASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// MaxKafkaRecordBytes is the largest [kafka] max-record-bytes: with the key
// and the batch overhead a record stays under Kafka's default
// max.message.bytes (1048588).
const MaxKafkaRecordBytes = 1000000

// MaxKafkaSnapshotBytes is the largest [kafka] max-snapshot-bytes: a
// record, with its key and the batch overhead, stays under 1 GiB, the
// largest batch the Kafka client produces.
const MaxKafkaSnapshotBytes = 1<<30 - 1024

// MaxKafkaConsumerQueueSize is the largest [kafka] consumer-queue-size.
const MaxKafkaConsumerQueueSize = 1024

// MaxKafkaSessionTimeout is the largest [kafka] session-timeout (the
// brokers' default group.max.session.timeout.ms is 30 minutes).
const MaxKafkaSessionTimeout = 30 * time.Minute

// KafkaSettings validates and returns the [kafka] section; Enabled is false,
// and nothing is checked, when the user's files do not have it. Every
// problem is reported, joined with errors.Join, each an *Error naming the
// section, option and value.
func (c *Config) KafkaSettings() (*Kafka, error) {
	k := newChecker(c)
	kf := k.kafka()
	if err := k.err(); err != nil {
		return nil, err
	}
	return &kf, nil
}

func (k *checker) kafka() Kafka {
	const s = SectionKafka
	if !k.c.HasSection(s) {
		return Kafka{}
	}
	kf := Kafka{
		Enabled:               true,
		Topic:                 k.topicOption("topic"),
		ClientID:              k.nonEmpty(s, "client-id"),
		TLS:                   k.boolean(s, "tls"),
		TLSInsecureSkipVerify: k.boolean(s, "tls-insecure-skip-verify"),
		DialTimeout:           k.seconds(s, "dial-timeout", true),
		RequestTimeout:        k.seconds(s, "request-timeout", true),
		ProduceTimeout:        k.seconds(s, "produce-timeout", true),
		RetryBackoff:          k.seconds(s, "retry-backoff", true),
		RetryBackoffMax:       k.seconds(s, "retry-backoff-max", true),
		MaxRecordBytes:        k.integer(s, "max-record-bytes", 1024, MaxKafkaRecordBytes),
		MaxBufferedBytes:      k.integer(s, "max-buffered-bytes", 1024, math.MaxInt),
		SnapshotTopic:         k.topicOption("snapshot-topic"),
		MaxSnapshotBytes:      k.integer(s, "max-snapshot-bytes", 1024, MaxKafkaSnapshotBytes),
		Group:                 k.nonEmpty(s, "group"),
		ConsumerDir:           k.nonEmpty(s, "consumer-dir"),
		ConsumerQueueSize:     k.integer(s, "consumer-queue-size", 1, MaxKafkaConsumerQueueSize),
		SessionTimeout:        k.timeout(s, "session-timeout", MaxKafkaSessionTimeout),
	}
	if kf.SnapshotTopic != "" && kf.SnapshotTopic == kf.Topic {
		k.fail(s, "snapshot-topic", kf.SnapshotTopic, errors.New("must differ from topic (metric lines and snapshot records do not share a topic)"))
	}
	if v, ok := k.str(s, "brokers"); ok {
		kf.Brokers = k.brokers(v)
	} else {
		k.errs = append(k.errs, &Error{Section: s, Err: errors.New("brokers is not set: the section's presence enables Kafka, which needs at least one host:port")})
	}
	if v, ok := k.str(s, "compression"); ok {
		kf.Compression = strings.ToLower(v)
		if !slices.Contains(Compressions, kf.Compression) {
			k.fail(s, "compression", v, fmt.Errorf("unknown compression (want one of %s)", strings.Join(Compressions, ", ")))
		}
	}
	if kf.RetryBackoffMax < kf.RetryBackoff {
		v, _ := k.str(s, "retry-backoff-max")
		k.fail(s, "retry-backoff-max", v, fmt.Errorf("must be >= retry-backoff (%v)", kf.RetryBackoff.Seconds()))
	}
	if kf.MaxBufferedBytes < kf.MaxRecordBytes {
		v, _ := k.str(s, "max-buffered-bytes")
		k.fail(s, "max-buffered-bytes", v, fmt.Errorf("must be >= max-record-bytes (%d)", kf.MaxRecordBytes))
	}

	kf.TLSCAFile = k.optionalNonEmpty(s, "tls-ca-file")
	kf.TLSCertFile = k.optionalNonEmpty(s, "tls-cert-file")
	kf.TLSKeyFile = k.optionalNonEmpty(s, "tls-key-file")
	if (kf.TLSCertFile == "") != (kf.TLSKeyFile == "") {
		if kf.TLSCertFile == "" {
			k.fail(s, "tls-key-file", kf.TLSKeyFile, errors.New("needs tls-cert-file (a client certificate and its key go together)"))
		} else {
			k.fail(s, "tls-cert-file", kf.TLSCertFile, errors.New("needs tls-key-file (a client certificate and its key go together)"))
		}
	}
	kf.TLS = kf.TLS || kf.TLSCAFile != "" || kf.TLSCertFile != "" || kf.TLSKeyFile != "" || kf.TLSInsecureSkipVerify

	if v, ok := k.str(s, "sasl-mechanism"); ok {
		kf.SASLMechanism = strings.ToUpper(v)
		if !slices.Contains(SASLMechanisms, kf.SASLMechanism) {
			k.fail(s, "sasl-mechanism", v, fmt.Errorf("unknown SASL mechanism (want one of %s)", strings.Join(SASLMechanisms, ", ")))
		}
	}
	kf.SASLUser = k.optionalNonEmpty(s, "sasl-user")
	kf.SASLPassword = k.optionalNonEmpty(s, "sasl-password")
	if kf.SASLMechanism != "" {
		for _, o := range []string{"sasl-user", "sasl-password"} {
			if !k.c.Has(s, o) {
				k.errs = append(k.errs, &Error{Section: s, Err: fmt.Errorf("sasl-mechanism is set but %s is not", o)})
			}
		}
	} else {
		for _, o := range []string{"sasl-user", "sasl-password"} {
			if k.c.Has(s, o) {
				k.errs = append(k.errs, &Error{Section: s, Err: fmt.Errorf("%s is set but sasl-mechanism is not", o)})
			}
		}
	}
	return kf
}

// optionalNonEmpty returns the value of an option without default: "" when
// unset, an error when set to "".
func (k *checker) optionalNonEmpty(section, option string) string {
	if !k.c.Has(section, option) {
		return ""
	}
	return k.nonEmpty(section, option)
}

// topicOption returns a topic option of [kafka] (topic, snapshot-topic),
// checked against Kafka's rules for topic names: 1 to 249 characters of
// [a-zA-Z0-9._-], not "." or "..".
func (k *checker) topicOption(option string) string {
	v, ok := k.str(SectionKafka, option)
	if !ok {
		return ""
	}
	if err := checkTopic(v); err != nil {
		k.fail(SectionKafka, option, v, err)
	}
	return v
}

func checkTopic(t string) error {
	switch {
	case t == "":
		return errors.New("must not be empty")
	case t == "." || t == "..":
		return errors.New(`"." and ".." are not valid topic names`)
	case len(t) > 249:
		return errors.New("longer than 249 characters")
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("character %q is not valid in a topic name (letters, digits, '.', '_' and '-')", r)
		}
	}
	return nil
}

// brokers parses [kafka] brokers: host:port entries separated by commas
// and/or white space.
func (k *checker) brokers(v string) []string {
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	if len(fields) == 0 {
		k.fail(SectionKafka, "brokers", v, errors.New("must not be empty"))
		return nil
	}
	var out []string
	for _, b := range fields {
		addr, err := ParseBroker(b)
		if err != nil {
			k.fail(SectionKafka, "brokers", v, err)
			continue
		}
		out = append(out, addr)
	}
	return out
}

// ParseBroker checks one broker address, host:port or [IPv6]:port, and
// returns it normalised (port without leading zeros).
func ParseBroker(b string) (string, error) {
	host, port, err := net.SplitHostPort(b)
	if err != nil {
		var aerr *net.AddrError
		if errors.As(err, &aerr) && aerr.Err == "missing port in address" {
			return "", fmt.Errorf("broker %q has no port (want host:port)", b)
		}
		return "", fmt.Errorf("broker %q: want host:port or [IPv6]:port: %w", b, err)
	}
	if host == "" {
		return "", fmt.Errorf("broker %q has no host (want host:port)", b)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strings.Trim(port, "0123456789") != "" {
		return "", fmt.Errorf("broker %q: port %q is not between 1 and 65535", b, port)
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}
