package kafka

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// logEvery is how often one repeating warning is logged (a broker down:
// one failed connection per retry).
const logEvery = 30 * time.Second

// throttle remembers when a repeating message was last logged and how many
// repeats were left out since.
type throttle struct {
	mu   sync.Mutex
	seen map[string]*repeat
}

type repeat struct {
	last    time.Time
	dropped int
}

// allow reports whether the message of key is to be logged now, and how
// many repeats were left out before it.
func (t *throttle) allow(key string) (ok bool, dropped int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen == nil {
		t.seen = map[string]*repeat{}
	}
	r := t.seen[key]
	now := time.Now()
	if r == nil {
		t.seen[key] = &repeat{last: now}
		return true, 0
	}
	if now.Sub(r.last) < logEvery {
		r.dropped++
		return false, 0
	}
	dropped, r.dropped, r.last = r.dropped, 0, now
	return true, dropped
}

// forget drops key; it reports whether key was there.
func (t *throttle) forget(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.seen[key]
	delete(t.seen, key)
	return ok
}

// clientLogger hands the Kafka client's warnings and errors to slog, each
// message at most once per logEvery (with the number of repeats left out);
// with debug enabled, also its informational messages, as debug.
type clientLogger struct {
	l     *slog.Logger
	level kgo.LogLevel
	t     throttle
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
	ok, dropped := c.t.allow(msg)
	if !ok {
		return
	}
	if dropped > 0 {
		keyvals = append(keyvals, "repeated", dropped)
	}
	c.l.Log(context.Background(), l, msg, keyvals...)
}

// connHook is a client hook that logs failed broker connections: dial,
// TLS, and SASL authentication (which the client itself logs only at debug
// level when the broker just closes the connection), once per broker per
// logEvery, and the first success after failures.
type connHook struct {
	l *slog.Logger
	t throttle
}

func (h *connHook) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	addr := net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
	if err == nil {
		if h.t.forget(addr) {
			h.l.Info("kafka: connected to broker again", "broker", addr)
		}
		return
	}
	ok, dropped := h.t.allow(addr)
	if !ok {
		return
	}
	attrs := []any{"broker", addr, "err", err}
	if dropped > 0 {
		attrs = append(attrs, "repeated", dropped)
	}
	h.l.Warn("kafka: cannot connect to broker; retrying (the snapshots wait in the spool)", attrs...)
}
