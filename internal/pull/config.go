package pull

import (
	"errors"
	"fmt"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"path/filepath"
	"strings"
	"time"
)

// Server is a stats socket given explicitly (the servers option). Its fields
// are those of the configuration's server type, so one converts to the
// other.
type Server struct {
	// Network is "unix" or "tcp".
	Network string
	// Address is the socket path for "unix", host:port for "tcp".
	Address string
	// Name prefixes the socket's spool files (<Name>_info, <Name>_stat): the
	// socket file's base name for "unix", host:port for "tcp" (an IPv6 host
	// without brackets).
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
	// BufferLimit is the largest read asked from a socket at once.
	BufferLimit int
	// DstDir is the spool; TmpDstDir holds rounds being written. They must be
	// on the same file system so that moving a snapshot is a rename.
	DstDir    string
	TmpDstDir string
	// Workers bounds how many socket exchanges (one command to one socket,
	// and writing its answer) run at once.
	Workers int
	// QueueSize: rounds are skipped while DstDir holds this many snapshot
	// directories or more.
	QueueSize int
	// Handoff, when set, is offered the answers of every complete round
	// before they are written: when it returns true the caller took the
	// snapshot (in memory) and nothing is written; otherwise the snapshot is
	// committed to DstDir as usual. It runs on the round's goroutine.
	Handoff func(name string, answers map[string][]byte) bool
}

// validate returns every problem of c at once.
func (c *Config) validate() error {
	var errs []error
	bad := func(option string, value any, why string) {
		errs = append(errs, fmt.Errorf("pull option %s = %v: %s", option, value, why))
	}
	if c.SocketDir == "" && len(c.Servers) == 0 {
		errs = append(errs, errors.New("pull: neither socket-dir nor servers is set: nothing to pull"))
	}
	names := make(map[string]int, len(c.Servers))
	for i, s := range c.Servers {
		switch {
		case s.Network != "unix" && s.Network != "tcp":
			bad(fmt.Sprintf("servers[%d] network", i), fmt.Sprintf("%q", s.Network), `must be "unix" or "tcp"`)
		case s.Address == "":
			bad(fmt.Sprintf("servers[%d] address", i), `""`, "must not be empty")
		case !validName(s.Name):
			bad(fmt.Sprintf("servers[%d] name", i), fmt.Sprintf("%q", s.Name), "must be a non-empty file name without /")
		}
		if j, dup := names[s.Name]; dup {
			bad(fmt.Sprintf("servers[%d] name", i), fmt.Sprintf("%q", s.Name), fmt.Sprintf("same spool file name as servers[%d]", j))
		}
		names[s.Name] = i
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
	return errors.Join(errs...)
}

func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

// ConfigFrom maps the validated [pull] settings onto a Config.
func ConfigFrom(s *config.Pull) Config {
	servers := make([]Server, len(s.Servers))
	for i, srv := range s.Servers {
		servers[i] = Server(srv)
	}
	return Config{
		SocketDir:    s.SocketDir,
		Servers:      servers,
		Retries:      s.Retries,
		Timeout:      s.Timeout,
		Interval:     s.Interval,
		PullTimeout:  s.PullTimeout,
		PullInterval: s.PullInterval,
		BufferLimit:  s.BufferLimit,
		DstDir:       s.DstDir,
		TmpDstDir:    s.TmpDstDir,
		Workers:      s.Workers,
		QueueSize:    s.QueueSize,
	}
}
