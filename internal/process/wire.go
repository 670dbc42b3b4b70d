package process

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/assemble"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/graphite"
	"github.com/haproxystats-go/haproxystats/internal/kafka"
	"github.com/haproxystats-go/haproxystats/internal/localstore"
	"github.com/haproxystats-go/haproxystats/internal/spool"
)

// Options adjust FromConfig.
type Options struct {
	// SrcDir overrides [process] src-dir (the one-daemon mode uses the
	// puller's dst-dir).
	SrcDir string
	// ConfigDir resolves relative stage module paths.
	ConfigDir string
	// Stages are a Go program's own stages, run next to the built-in and
	// WebAssembly ones.
	Stages []engine.StageSpec
}

// FromConfig builds the daemon from a loaded configuration: every check
// that can refuse to start happens here, with errors naming the option.
// The daemon closes the pipeline's WebAssembly runtimes when Run returns.
func FromConfig(cfg *config.Config, logger *slog.Logger, opts Options) (*Daemon, *config.ProcessSettings, error) {
	s, err := cfg.ProcessSettings()
	if err != nil {
		return nil, nil, err
	}
	client, err := graphite.New(GraphiteConfig(s.Graphite), logger.With("component", "graphite"))
	if err != nil {
		return nil, nil, err
	}
	dests := []Destination{destination(client.Name(), client.Run, client.Open, client.Stalled)}
	if s.LocalStore.Enabled {
		store, err := localstore.New(s.LocalStore.Dir)
		if err != nil {
			return nil, nil, fmt.Errorf("[local-store] dir = %q: %w", s.LocalStore.Dir, err)
		}
		dests = append(dests, destination(store.Name(), store.Run, store.Open, nil))
	}
	var selfMetrics func(engine.Emitter)
	if s.KafkaMetrics {
		// The key of every record: one load balancer's lines go to one
		// partition, whatever prefix-hostname says ([graphite] hostname
		// overrides the host name, as for the Graphite prefix).
		host, err := config.ResolveHostname(s.Graphite.Hostname)
		if err != nil {
			return nil, nil, fmt.Errorf("[kafka]: the record key is the host name: %w", err)
		}
		producer, err := kafka.FromSettings(s.Kafka, host, kafkaCloseTimeout, logger.With("component", "kafka"))
		if err != nil {
			return nil, nil, err
		}
		dests = append(dests, destination(producer.Name(), producer.Run, producer.Open, producer.Stalled))
		selfMetrics = kafkaMetrics(producer)
	}
	// The pipeline's Started and Backlog hooks are the daemon's and the
	// spool's, made below (they are called only once the daemon runs).
	var d *Daemon
	var queued func() int
	built, err := assemble.New(cfg, assemble.Options{
		Logger:      logger,
		ConfigDir:   opts.ConfigDir,
		Stages:      opts.Stages,
		SelfMetrics: selfMetrics,
		Started:     func(name string) { d.Started(name) },
		Backlog:     func() bool { return queued != nil && queued() > 0 },
	})
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*Daemon, *config.ProcessSettings, error) {
		built.Close()
		return nil, nil, err
	}
	var queue Queue
	if s.Process.FromKafka() {
		if queue, err = kafkaQueue(s, built, logger); err != nil {
			return fail(err)
		}
	} else {
		src := s.Process.SrcDir
		if opts.SrcDir != "" {
			src = opts.SrcDir
		}
		if err := config.CheckReadWrite(src); err != nil {
			return fail(fmt.Errorf("[process] src-dir = %q: %w", src, err))
		}
		w, err := spool.NewWatcher(src, logger.With("component", "spool"))
		if err != nil {
			return fail(err)
		}
		queue, queued = w, w.Queued
	}
	var seq Sequencer
	if built.Counters != nil {
		seq = built.Counters
	}
	d, err = New(Config{
		Pipeline:     built.Pipeline,
		Queue:        queue,
		Destinations: dests,
		Workers:      s.Process.Workers,
		StopTimeout:  s.Process.StopTimeout,
		Release:      built.Close,
		Sequencer:    seq,
		Logger:       logger,
	})
	if err != nil {
		return fail(err)
	}
	return d, s, nil
}

// kafkaCloseTimeout is the Kafka producer's final flush (its FlushTimeout).
// The daemon ends the producer's Run only once every snapshot was delivered
// or left in the spool, after the stop timeout at most: the records still
// unacknowledged then belong to snapshots that will be processed again, so
// waiting for them would only add duplicates, and would add to the stop
// timeout.
const kafkaCloseTimeout = time.Second

// kafkaMetrics emits the Kafka producer's counters as self-metrics, when
// [kafka] is configured: KafkaRecords, KafkaBytes and KafkaLines (what the
// brokers acknowledged) and KafkaErrors (records that failed, lines
// refused), cumulative since the start.
func kafkaMetrics(p *kafka.Producer) func(engine.Emitter) {
	return func(emit engine.Emitter) {
		st := p.Stats()
		for _, m := range []struct {
			name string
			v    uint64
		}{
			{"KafkaRecords", st.Records},
			{"KafkaBytes", st.Bytes},
			{"KafkaLines", st.Lines},
			{"KafkaErrors", st.Errors},
		} {
			emit.Emit(engine.Metric{Scope: engine.ScopeSelf, Name: m.name, Value: float64(m.v)})
		}
	}
}

// GraphiteConfig is the Graphite client configuration of [graphite];
// graphite.New refuses what the daemon cannot run with.
func GraphiteConfig(g config.Graphite) graphite.Config {
	return graphite.Config{
		Address:        net.JoinHostPort(g.Server, strconv.Itoa(g.Port)),
		ConnectTimeout: g.ConnectTimeout,
		WriteTimeout:   g.WriteTimeout,
		Retries:        g.Retries,
		Interval:       g.Interval,
		Backoff:        g.Backoff,
		Delay:          g.Delay,
	}
}

// stream is what a destination package's stream offers; W is its own
// waiter type.
type stream[W Waiter] interface {
	Write(p []byte) (int, error)
	Finish() W
	Abort()
}

// destination adapts a destination package's client to Destination:
// stalled may be nil.
func destination[W Waiter, S stream[W]](name string, run func(context.Context) error,
	open func(context.Context, string) (S, error), stalled func(time.Duration) bool) Destination {
	d := adapter[W, S]{name: name, run: run, open: open}
	if stalled != nil {
		return stallingAdapter[W, S]{d, stalled}
	}
	return d
}

type adapter[W Waiter, S stream[W]] struct {
	name string
	run  func(context.Context) error
	open func(context.Context, string) (S, error)
}

func (a adapter[W, S]) Name() string                  { return a.name }
func (a adapter[W, S]) Run(ctx context.Context) error { return a.run(ctx) }
func (a adapter[W, S]) Open(ctx context.Context, snapshot string) (Stream, error) {
	s, err := a.open(ctx, snapshot)
	if err != nil {
		return nil, err
	}
	return streamAdapter[W, S]{s}, nil
}

type stallingAdapter[W Waiter, S stream[W]] struct {
	adapter[W, S]
	stalled func(time.Duration) bool
}

func (a stallingAdapter[W, S]) Stalled(d time.Duration) bool { return a.stalled(d) }

type streamAdapter[W Waiter, S stream[W]] struct{ s S }

func (a streamAdapter[W, S]) Write(p []byte) (int, error) { return a.s.Write(p) }
func (a streamAdapter[W, S]) Finish() Waiter              { return a.s.Finish() }
func (a streamAdapter[W, S]) Abort()                      { a.s.Abort() }

// memoryHeadroom is what the process needs beyond the memory budget: the
// runtime, the program's code, goroutine stacks, the destinations' buffers
// and the garbage of the last snapshots.
const memoryHeadroom = 12 << 20

// LimitMemory sets the Go runtime's soft memory limit (as GOMEMLIMIT does)
// to the [process] memory-budget plus memoryHeadroom, unless the
// environment sets GOMEMLIMIT or the budget is 0 (no bound): the garbage
// collector then runs more often rather than let the heap grow past what
// the budget promises. GOGC keeps its default (100): with the budget
// bounding the live heap, the limit is what keeps a backlog's peak down.
// It returns the limit set, or -1.
func LimitMemory(s *config.ProcessSettings) int64 {
	if os.Getenv("GOMEMLIMIT") != "" || s.Process.MemoryBudget == 0 {
		return -1
	}
	limit := s.Process.MemoryBudget + memoryHeadroom
	debug.SetMemoryLimit(limit)
	return limit
}
