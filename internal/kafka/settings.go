package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/config"
)

// FromSettings builds the producer of a validated [kafka] section: key is
// the record key (the host name, see Config.Key), flushTimeout the daemon's
// stop timeout. It reads the TLS files now, so that a missing or bad file
// refuses the start with an error naming the option. Like New, it starts
// nothing.
func FromSettings(s config.Kafka, key string, flushTimeout time.Duration, logger *slog.Logger) (*Producer, error) {
	cfg, err := ConfigFromSettings(s)
	if err != nil {
		return nil, err
	}
	cfg.Key = key
	cfg.FlushTimeout = flushTimeout
	return New(cfg, logger)
}

// ConfigFromSettings converts a validated [kafka] section to a Config
// without Key and FlushTimeout, reading the TLS files. Errors are
// *config.Error values naming the option.
func ConfigFromSettings(s config.Kafka) (Config, error) {
	cfg := Config{
		Brokers:          s.Brokers,
		Topic:            s.Topic,
		ClientID:         s.ClientID,
		Compression:      s.Compression,
		DialTimeout:      s.DialTimeout,
		RequestTimeout:   s.RequestTimeout,
		ProduceTimeout:   s.ProduceTimeout,
		RetryBackoff:     s.RetryBackoff,
		RetryBackoffMax:  s.RetryBackoffMax,
		MaxRecordBytes:   s.MaxRecordBytes,
		MaxBufferedBytes: s.MaxBufferedBytes,
	}
	if s.SASLMechanism != "" {
		cfg.SASL = &SASL{Mechanism: s.SASLMechanism, User: s.SASLUser, Password: s.SASLPassword}
	}
	if !s.TLS {
		return cfg, nil
	}
	tc, err := tlsConfig(s)
	if err != nil {
		return Config{}, err
	}
	cfg.TLS = tc
	return cfg, nil
}

// tlsConfig loads the files of the TLS options.
func tlsConfig(s config.Kafka) (*tls.Config, error) {
	fail := func(option, value string, err error) error {
		return &config.Error{Section: config.SectionKafka, Option: option, Value: value, Err: err}
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.TLSInsecureSkipVerify}
	var errs []error
	if s.TLSCAFile != "" {
		pem, err := config.ReadRegular(s.TLSCAFile, config.MaxFileSize)
		if err != nil {
			errs = append(errs, fail("tls-ca-file", s.TLSCAFile, fmt.Errorf("read CA certificates: %w", err)))
		} else {
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				errs = append(errs, fail("tls-ca-file", s.TLSCAFile, errors.New("no PEM certificate found")))
			}
		}
	}
	if s.TLSCertFile != "" {
		// Read as every file an operator names is (config.ReadRegular):
		// a FIFO or a device must not block the start or fill memory.
		certPEM, err := config.ReadRegular(s.TLSCertFile, config.MaxFileSize)
		if err != nil {
			errs = append(errs, fail("tls-cert-file", s.TLSCertFile, fmt.Errorf("load client certificate: %w", err)))
		}
		keyPEM, kerr := config.ReadRegular(s.TLSKeyFile, config.MaxFileSize)
		if kerr != nil {
			errs = append(errs, fail("tls-key-file", s.TLSKeyFile, fmt.Errorf("load client key: %w", kerr)))
		}
		if err == nil && kerr == nil {
			cert, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				errs = append(errs, fail("tls-cert-file", s.TLSCertFile, fmt.Errorf("load client certificate with tls-key-file %q: %w", s.TLSKeyFile, err)))
			} else {
				tc.Certificates = []tls.Certificate{cert}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return tc, nil
}
