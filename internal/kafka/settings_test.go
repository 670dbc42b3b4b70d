package kafka_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/kafka"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// fromConf builds a producer from the text of a [kafka] section, as the
// daemon does: config validation, then FromSettings (which reads the TLS
// files).
func fromConf(t *testing.T, text string) (*kafka.Producer, error) {
	t.Helper()
	c, err := config.LoadSources(nil, config.Source{Name: "test.conf", Data: []byte(text)})
	if err != nil {
		t.Fatalf("LoadSources(%q): %v", text, err)
	}
	s, err := c.KafkaSettings()
	if err != nil {
		t.Fatalf("KafkaSettings(%q): %v", text, err)
	}
	return kafka.FromSettings(*s, testKey, 10*time.Second, slog.New(slog.DiscardHandler))
}

// TestSecureRoundTrips produces through TLS (server and client
// certificates) and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) to a broker
// that requires them, configured from a [kafka] section, and reads the
// lines back with kcat over the same TLS (SASL: after restarting the broker
// without it, as kcat's librdkafka 2.0 cannot authenticate to kfake).
func TestSecureRoundTrips(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		broker testenv.KafkaConfig
		conf   func(k *testenv.Kafka) string
	}{
		{"tls", testenv.KafkaConfig{TLS: true}, func(k *testenv.Kafka) string {
			return "tls-ca-file = " + k.TLS().CA + "\n"
		}},
		{"tls client certificate", testenv.KafkaConfig{TLS: true, ClientCert: true}, func(k *testenv.Kafka) string {
			f := k.TLS()
			return "tls-ca-file = " + f.CA + "\ntls-cert-file = " + f.ClientCert + "\ntls-key-file = " + f.ClientKey + "\n"
		}},
		{"tls insecure-skip-verify", testenv.KafkaConfig{TLS: true}, func(*testenv.Kafka) string {
			return "tls-insecure-skip-verify = true\n"
		}},
		{"sasl plain", testenv.KafkaConfig{SASL: []testenv.KafkaUser{{Mechanism: "PLAIN", User: "hs", Password: "pw1"}}}, func(*testenv.Kafka) string {
			return "sasl-mechanism = plain\nsasl-user = hs\nsasl-password = pw1\n"
		}},
		{"sasl scram-sha-256", testenv.KafkaConfig{SASL: []testenv.KafkaUser{{Mechanism: "SCRAM-SHA-256", User: "hs", Password: "pw2"}}}, func(*testenv.Kafka) string {
			return "sasl-mechanism = SCRAM-SHA-256\nsasl-user = hs\nsasl-password = pw2\n"
		}},
		{"tls and sasl scram-sha-512", testenv.KafkaConfig{TLS: true, SASL: []testenv.KafkaUser{{Mechanism: "SCRAM-SHA-512", User: "hs", Password: "pw3"}}}, func(k *testenv.Kafka) string {
			return "tls-ca-file = " + k.TLS().CA + "\nsasl-mechanism = SCRAM-SHA-512\nsasl-user = hs\nsasl-password = pw3\n"
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.broker.Topics = []string{"secure"}
			k := testenv.StartKafkaWith(t, tt.broker)
			p, err := fromConf(t, "[kafka]\nbrokers = "+k.Addr()+"\ntopic = secure\nretry-backoff = 0.02\nretry-backoff-max = 0.25\n"+tt.conf(k))
			if err != nil {
				t.Fatalf("FromSettings: %v", err)
			}
			// The section a daemon test would write for this broker works too.
			if _, err := fromConf(t, k.ConfigSection("secure")); err != nil {
				t.Fatalf("FromSettings(ConfigSection): %v", err)
			}
			r := run(t, p, &testenv.Buffer{})
			lines := numbered("secure", 200)
			r.mustDeliver(t, send(t, r.p, "1795507862", lines, 20))
			if len(tt.broker.SASL) > 0 {
				// kcat cannot authenticate to kfake (see RestartWith).
				tt.broker.SASL = nil
				k.RestartWith(tt.broker)
			}
			requireLines(t, checkRecords(t, testenv.KcatConsume(t, k.Addr(), "secure", k.KcatArgs()...), 65536), lines)
		})
	}
}

// TestSASLWrongPassword: a refused authentication is retried like an
// unreachable broker: the delivery does not succeed, the refusal is
// logged, and the stop is prompt, failing the delivery.
func TestSASLWrongPassword(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{Topics: []string{"secure"},
		SASL: []testenv.KafkaUser{{Mechanism: "SCRAM-SHA-256", User: "hs", Password: "right"}}})
	logs := &testenv.Buffer{}
	c, err := config.LoadSources(nil, config.Source{Name: "t", Data: []byte("[kafka]\nbrokers = " + k.Addr() +
		"\ntopic = secure\nsasl-mechanism = SCRAM-SHA-256\nsasl-user = hs\nsasl-password = wrong\nretry-backoff = 0.05\n")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.KafkaSettings()
	if err != nil {
		t.Fatal(err)
	}
	p, err := kafka.FromSettings(*s, testKey, time.Minute, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, p, logs)
	w := send(t, r.p, "1795507862", numbered("denied", 10), 10)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := w.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with a wrong SASL password = %v, want no outcome yet", err)
	}
	r.stop(t, time.Minute)
	if err := wait(t, w, 10*time.Second); !errors.Is(err, kafka.ErrClosed) {
		t.Errorf("Wait after the stop = %v, want ErrClosed", err)
	}
	if st := r.prod.Stats(); st.Records != 0 {
		t.Errorf("Stats() = %+v, want no record", st)
	}
	if !strings.Contains(logs.String(), "cannot connect to broker") {
		t.Errorf("the refused authentication was not logged:\n%s", logs.String())
	}
	t.Logf("log:\n%s", logs.String())
}

// TestFromSettingsFileErrors: the TLS files are read at start-up; a
// missing or unusable one refuses the start with an error naming the
// option and the file.
func TestFromSettingsFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := testenv.WriteTLSFiles(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	fifo := testenv.NamedPipe(t)
	for _, tt := range []struct {
		name, conf, want string
	}{
		{"missing ca", "tls-ca-file = " + missing, `[kafka] tls-ca-file = "` + missing + `": read CA certificates: read ` + missing + `: no such file or directory`},
		// A FIFO (or a device) is refused, not read: it would block the
		// start, or fill memory.
		{"fifo ca", "tls-ca-file = " + fifo, `[kafka] tls-ca-file = "` + fifo + `": read CA certificates: read ` + fifo + `: not a regular file`},
		{"fifo key", "tls-cert-file = " + files.ClientCert + "\ntls-key-file = " + fifo, `[kafka] tls-key-file = "` + fifo + `": load client key: read ` + fifo + `: not a regular file`},
		{"ca not pem", "tls-ca-file = " + notPEM, `[kafka] tls-ca-file = "` + notPEM + `": no PEM certificate found`},
		{"missing cert", "tls-cert-file = " + missing + "\ntls-key-file = " + files.ClientKey, `[kafka] tls-cert-file = "` + missing + `": load client certificate`},
		{"key of another certificate", "tls-cert-file = " + files.ClientCert + "\ntls-key-file = " + files.ServerKey, `[kafka] tls-cert-file = "` + files.ClientCert + `": load client certificate with tls-key-file "` + files.ServerKey + `": tls: private key does not match public key`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fromConf(t, "[kafka]\nbrokers = 127.0.0.1:9092\n"+tt.conf+"\n")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("FromSettings error = %v, want %q", err, tt.want)
			}
			var cerr *config.Error
			if !errors.As(err, &cerr) || cerr.Section != "kafka" {
				t.Errorf("error %v is not a *config.Error of [kafka]", err)
			}
		})
	}
	p, err := fromConf(t, "[kafka]\nbrokers = 127.0.0.1:9092\ntls-ca-file = "+files.CA+"\ntls-cert-file = "+files.ClientCert+"\ntls-key-file = "+files.ClientKey+"\n")
	if err != nil || p == nil {
		t.Errorf("FromSettings with good files = %v", err)
	}
}

// TestCompressions: every codec the option offers is read back by an
// independent client (librdkafka).
func TestCompressions(t *testing.T) {
	t.Parallel()
	k := testenv.StartKafkaWith(t, testenv.KafkaConfig{AutoCreateTopics: true})
	for _, codec := range config.Compressions {
		t.Run(codec, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(k.Addr(), "codec-"+codec)
			cfg.Compression = codec
			r := start(t, cfg)
			lines := numbered(codec, 2000)
			r.mustDeliver(t, send(t, r.p, "1795507862", lines, 100))
			requireLines(t, checkRecords(t, testenv.KcatConsume(t, k.Addr(), cfg.Topic), cfg.MaxRecordBytes), lines)
		})
	}
}

// TestNewValidates: New refuses a configuration it cannot run with.
func TestNewValidates(t *testing.T) {
	t.Parallel()
	for name, change := range map[string]func(*kafka.Config){
		"no broker":           func(c *kafka.Config) { c.Brokers = nil },
		"no topic":            func(c *kafka.Config) { c.Topic = "" },
		"compression":         func(c *kafka.Config) { c.Compression = "brotli" },
		"sasl mechanism":      func(c *kafka.Config) { c.SASL = &kafka.SASL{Mechanism: "GSSAPI"} },
		"dial timeout":        func(c *kafka.Config) { c.DialTimeout = 0 },
		"flush timeout":       func(c *kafka.Config) { c.FlushTimeout = 0 },
		"backoff max":         func(c *kafka.Config) { c.RetryBackoffMax = c.RetryBackoff / 2 },
		"record bytes":        func(c *kafka.Config) { c.MaxRecordBytes = 0 },
		"buffer below record": func(c *kafka.Config) { c.MaxBufferedBytes = c.MaxRecordBytes - 1 },
	} {
		cfg := testConfig("127.0.0.1:9092", "t")
		change(&cfg)
		if _, err := kafka.New(cfg, nil); err == nil {
			t.Errorf("New with %s: no error", name)
		}
	}
	if _, err := kafka.New(testConfig("127.0.0.1:9092", "t"), nil); err != nil {
		t.Errorf("New(testConfig) = %v", err)
	}
}
