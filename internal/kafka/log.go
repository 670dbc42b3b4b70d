package kafka

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/haproxystats-go/haproxystats/internal/throttle"
)

// clientLogger hands the Kafka client's warnings and errors to slog, each
// message at most once per throttle.DefaultEvery (with the number of
// repeats left out); with debug enabled, also its informational messages,
// as debug.
type clientLogger struct {
	l     *slog.Logger
	level kgo.LogLevel
	t     throttle.Throttle
}

func newClientLogger(l *slog.Logger) *clientLogger {
	c := &clientLogger{l: l.With("component", "kafka-client"), level: kgo.LogLevelWarn}
	if l.Enabled(context.Background(), slog.LevelDebug) {
		c.level = kgo.LogLevelInfo
	}
	return c
}

func (c *clientLogger) Level() kgo.LogLevel { return c.level }

func (c *clientLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var l slog.Level
	switch {
	case level == kgo.LogLevelError:
		l = slog.LevelError
	case level == kgo.LogLevelWarn && msg == "unable to open connection to broker":
		return // connHook logs every failed connection, SASL included
	case level == kgo.LogLevelWarn:
		l = slog.LevelWarn
	default:
		c.l.Debug(msg, keyvals...)
		return
	}
	c.t.Log(c.l, l, msg, msg, keyvals...)
}

// connHook is a client hook that logs failed broker connections: dial,
// TLS, and SASL authentication (which the client itself logs only at debug
// level when the broker just closes the connection), once per broker per
// throttle.DefaultEvery, and the first success after failures.
type connHook struct {
	l *slog.Logger
	t throttle.Throttle
}

func (h *connHook) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	addr := net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
	if err == nil {
		if h.t.Forget(addr) {
			h.l.Info("kafka: connected to broker again", "broker", addr)
		}
		return
	}
	h.t.Log(h.l, slog.LevelWarn, addr, "kafka: cannot connect to broker; retrying (the snapshots wait in the spool)", "broker", addr, "err", err)
}
