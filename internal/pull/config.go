package pull

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/spool"
)

// Server is a stats socket or master CLI given explicitly (the servers and
// masters options). Its fields are those of the configuration's server
// type, so one converts to the other.
type Server struct {
	// Network is "unix" or "tcp".
	Network string
	// Address is the socket path for "unix", host:port for "tcp".
	Address string
	// Name prefixes the socket's spool files (<Name>_info, <Name>_stat): the
	// socket file's base name for "unix", host:port for "tcp" (an IPv6 host
	// without brackets). For a master, it is the <master> part of its
	// workers' names (spool.WorkerSocketName).
	Name string
}

// Config is the pull section. Durations are Go durations; the configuration
// file's float seconds are converted by the caller.
type Config struct {
	// SocketDir is a directory whose UNIX sockets are all pulled, listed
	// again every round. Empty: none.
	SocketDir string
	// Servers are sockets pulled in addition to those of SocketDir.
	Servers []Server
	// Masters are master CLIs (haproxy -W -S): every round lists their
	// workers, current and leaving, and pulls each of them.
	Masters []Server
	// Retries is the number of connection attempts after the first (-1:
	// forever, bounded by PullTimeout), Timeout bounds each attempt, Interval
	// separates two attempts.
	Retries  int
	Timeout  time.Duration
	Interval time.Duration
	// PullTimeout bounds a whole round (0: no bound); PullInterval separates
	// the start of two rounds.
	PullTimeout  time.Duration
	PullInterval time.Duration
	// BufferLimit is the largest read asked from a socket at once (at most
	// haproxy.MaxReadSize); answers are streamed to their files through
	// Workers buffers of that size.
	BufferLimit int
	// MaxAnswerSize is the longest answer accepted, in bytes: a longer one
	// fails its socket for the round. 0: no limit.
	MaxAnswerSize int64
	// DstDir is the spool; TmpDstDir holds rounds being written. They must be
	// on the same file system so that moving a snapshot is a rename.
	DstDir    string
	TmpDstDir string
	// Workers bounds how many socket exchanges (one command to one socket,
	// and writing its answer) run at once.
	Workers int
	// QueueSize: rounds are skipped while DstDir holds this many snapshot
	// directories or more (and KafkaDstDir, likewise, on its own).
	QueueSize int
	// Destination says which spools a committed round goes to:
	// config.DestinationSpool ("" too: DstDir), config.DestinationKafka
	// (KafkaDstDir only) or config.DestinationBoth.
	Destination string
	// KafkaDstDir is the spool of the Kafka publisher (internal/publish),
	// written through TmpDstDir/kafka; required when Destination sends to
	// Kafka, and then different from DstDir and TmpDstDir.
	KafkaDstDir string
}

// KafkaTmpDir is the temporary directory of the Kafka spool, inside
// TmpDstDir: a round reaches KafkaDstDir by a rename from there.
func (c *Config) KafkaTmpDir() string { return config.KafkaTmpDir(c.TmpDstDir) }

// toSpool and toKafka tell which spools a round is committed into.
func (c *Config) toSpool() bool { return c.Destination != config.DestinationKafka }
func (c *Config) toKafka() bool {
	return c.Destination == config.DestinationKafka || c.Destination == config.DestinationBoth
}

// validate returns every problem of c at once.
func (c *Config) validate() error {
	var errs []error
	bad := func(option string, value any, why string) {
		errs = append(errs, fmt.Errorf("pull option %s = %v: %s", option, value, why))
	}
	if c.SocketDir == "" && len(c.Servers) == 0 && len(c.Masters) == 0 {
		errs = append(errs, errors.New("pull: none of socket-dir, servers and masters is set: nothing to pull"))
	}
	for _, list := range []struct {
		option string
		items  []Server
	}{{"servers", c.Servers}, {"masters", c.Masters}} {
		names := make(map[string]int, len(list.items))
		for i, s := range list.items {
			item := fmt.Sprintf("%s[%d]", list.option, i)
			switch {
			case s.Network != "unix" && s.Network != "tcp":
				bad(item+" network", fmt.Sprintf("%q", s.Network), `must be "unix" or "tcp"`)
			case s.Address == "":
				bad(item+" address", `""`, "must not be empty")
			}
			if err := nameError(list.option, s.Name); err != nil {
				bad(item+" name", fmt.Sprintf("%q", s.Name), err.Error())
			}
			if j, dup := names[s.Name]; dup {
				bad(item+" name", fmt.Sprintf("%q", s.Name), fmt.Sprintf("same spool name as %s[%d]", list.option, j))
			}
			names[s.Name] = i
		}
	}
	if c.Retries < -1 {
		bad("retries", c.Retries, "must be -1 (forever) or more")
	}
	if c.Timeout < 0 {
		bad("timeout", c.Timeout, "must not be negative")
	}
	if c.Interval < 0 {
		bad("interval", c.Interval, "must not be negative")
	}
	if c.PullTimeout < 0 {
		bad("pull-timeout", c.PullTimeout, "must not be negative (0: no limit)")
	}
	if c.PullInterval <= 0 {
		bad("pull-interval", c.PullInterval, "must be positive")
	}
	if c.BufferLimit < 1 {
		bad("buffer-limit", c.BufferLimit, "must be at least 1")
	}
	if c.MaxAnswerSize < 0 {
		bad("max-answer-size", c.MaxAnswerSize, "must not be negative (0: no limit)")
	}
	if c.DstDir == "" {
		bad("dst-dir", `""`, "must be set")
	}
	if c.TmpDstDir == "" {
		bad("tmp-dst-dir", `""`, "must be set")
	}
	if c.DstDir != "" && filepath.Clean(c.DstDir) == filepath.Clean(c.TmpDstDir) {
		bad("tmp-dst-dir", c.TmpDstDir, "must differ from dst-dir")
	}
	if c.Workers < 1 {
		bad("workers", c.Workers, "must be at least 1")
	}
	if c.QueueSize < 1 {
		bad("queue-size", c.QueueSize, "must be at least 1")
	}
	switch c.Destination {
	case "", config.DestinationSpool:
	case config.DestinationKafka, config.DestinationBoth:
		if c.KafkaDstDir == "" {
			bad("kafka-dst-dir", `""`, "must be set with destination "+c.Destination)
		}
		for _, o := range []struct{ option, dir string }{{"dst-dir", c.DstDir}, {"tmp-dst-dir", c.TmpDstDir}} {
			if c.KafkaDstDir != "" && filepath.Clean(c.KafkaDstDir) == filepath.Clean(o.dir) {
				bad("kafka-dst-dir", c.KafkaDstDir, "must differ from "+o.option)
			}
		}
		// Leftovers in the Kafka spool's temporary directory are removed
		// at start: it must not be a spool.
		for _, o := range []struct{ option, dir string }{{"dst-dir", c.DstDir}, {"kafka-dst-dir", c.KafkaDstDir}} {
			if c.TmpDstDir != "" && o.dir != "" && filepath.Clean(o.dir) == c.KafkaTmpDir() {
				bad(o.option, o.dir, "must differ from "+c.KafkaTmpDir()+", where the Kafka spool's rounds are written")
			}
		}
	default:
		bad("destination", fmt.Sprintf("%q", c.Destination), "must be spool, kafka or both")
	}
	return errors.Join(errs...)
}

// nameError tells why name cannot be the spool name of an entry of option
// (servers or masters).
func nameError(option, name string) error {
	if option == "masters" {
		return spool.ValidMasterName(name)
	}
	return spool.ValidPlainSocketName(name)
}

// ConfigFrom maps the validated [pull] settings onto a Config.
func ConfigFrom(s *config.Pull) Config {
	convert := func(in []config.Server) []Server {
		out := make([]Server, len(in))
		for i, srv := range in {
			out[i] = Server(srv)
		}
		return out
	}
	return Config{
		SocketDir:     s.SocketDir,
		Servers:       convert(s.Servers),
		Masters:       convert(s.Masters),
		Retries:       s.Retries,
		Timeout:       s.Timeout,
		Interval:      s.Interval,
		PullTimeout:   s.PullTimeout,
		PullInterval:  s.PullInterval,
		BufferLimit:   s.BufferLimit,
		MaxAnswerSize: s.MaxAnswerSize,
		DstDir:        s.DstDir,
		TmpDstDir:     s.TmpDstDir,
		Workers:       s.Workers,
		QueueSize:     s.QueueSize,
		Destination:   s.Destination,
		KafkaDstDir:   s.KafkaDstDir,
	}
}
