package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/haproxystats-go/haproxystats/builtin"
	"github.com/haproxystats-go/haproxystats/internal/snaprecord"
	"github.com/haproxystats-go/haproxystats/internal/spool"
)

// Server is one entry of [pull] servers.
type Server struct {
	Network string // "unix" or "tcp"
	Address string // socket path for unix, host:port (IPv6 in brackets) for tcp
	// Name is the prefix of the server's spool files: the base name of the
	// socket file for unix, host:port for tcp with an IPv6 host written
	// without brackets.
	Name string
}

// MaxWorkers bounds [pull] workers and [process] workers: each worker holds
// buffers (and a WebAssembly instance per stage), so a mistyped 100000000
// would end in an out-of-memory crash rather than an error.
const MaxWorkers = 1024

// MaxStopTimeout bounds [process] stop-timeout.
const MaxStopTimeout = time.Hour

// Pull is the validated [pull] section.
type Pull struct {
	Loglevel  slog.Level
	SocketDir string   // "" = unset
	Servers   []Server // nil = unset
	// Masters are master CLIs (haproxy -W -S); nil = unset. Their Name
	// holds only the characters spool.ValidMasterName allows.
	Masters []Server
	// Retries is the number of connect attempts after the first: -1 =
	// forever, 0 = none.
	Retries      int
	Timeout      time.Duration // connect timeout, > 0
	Interval     time.Duration // sleep between connect attempts
	PullTimeout  time.Duration // bound of a whole pull round; 0 = no limit
	PullInterval time.Duration // whole seconds
	BufferLimit  int
	// MaxAnswerSize is the longest answer accepted from a socket, bytes;
	// 0 = no limit.
	MaxAnswerSize int64
	DstDir        string
	TmpDstDir     string
	Workers       int
	QueueSize     int
	// Destination says where a committed round goes: DestinationSpool
	// (DstDir, for haproxystats-process), DestinationKafka (KafkaDstDir,
	// the spool of the Kafka publisher) or DestinationBoth.
	Destination string
	// KafkaDstDir is the Kafka publisher's spool; it differs from DstDir
	// and TmpDstDir.
	KafkaDstDir string
	// Kafka is the validated [kafka] section when Destination sends to
	// Kafka (the section is then required); zero otherwise.
	Kafka Kafka
	// Hostname is [graphite] hostname, "" when unset: see
	// ResolveHostname.
	Hostname string
	// Cluster is [process] cluster-name when Destination sends to Kafka,
	// "" when unset: the snapshot records carry it and are keyed by it.
	Cluster string
}

// Values of [pull] destination.
const (
	DestinationSpool = "spool"
	DestinationKafka = "kafka"
	DestinationBoth  = "both"
)

// Destinations are the valid values of [pull] destination.
var Destinations = []string{DestinationSpool, DestinationKafka, DestinationBoth}

// ToSpool reports whether rounds are committed into DstDir.
func (p *Pull) ToSpool() bool { return p.Destination != DestinationKafka }

// ToKafka reports whether rounds are committed into KafkaDstDir and
// published to [kafka] snapshot-topic.
func (p *Pull) ToKafka() bool {
	return p.Destination == DestinationKafka || p.Destination == DestinationBoth
}

// Process is the validated [process] section.
type Process struct {
	Loglevel slog.Level
	SrcDir   string
	Workers  int
	// FrontendMetrics, BackendMetrics and ServerMetrics are the names of
	// the option split on single spaces, in the order written; nil = unset.
	FrontendMetrics, BackendMetrics, ServerMetrics []string
	// ExcludeFrontends and ExcludeBackends are file names, not resolved
	// here; "" = unset.
	ExcludeFrontends, ExcludeBackends string
	AggrServerMetrics                 bool
	PerProcessMetrics                 bool
	CalculatePercentages              bool
	LivenessCheckInterval             time.Duration
	// StopTimeout bounds how long a stop waits for the snapshots in
	// flight while bytes are still being acknowledged; > 0, at most
	// MaxStopTimeout.
	StopTimeout time.Duration
	// Stages names the WebAssembly stages, in order, each configured by a
	// [stage.<name>] section (see Config.StageOptions); nil = none.
	Stages []string
	// StageCacheDir holds the compiled stage modules between restarts.
	StageCacheDir string
	// MaxFileSize is the largest snapshot file read, in bytes.
	MaxFileSize int64
	// MemoryBudget bounds the working memory of the snapshots processed
	// at once, in bytes; 0 = no bound.
	MemoryBudget int64
	// MonotonicCounters makes cumulative counters survive HAProxy reloads
	// (internal/counters); CountersDir holds their state and
	// CountersExpiry is how long, in snapshot time, the state remembers
	// what it no longer sees.
	MonotonicCounters bool
	CountersDir       string
	CountersExpiry    time.Duration
	// Source is where the snapshots come from: SourceSpool (SrcDir) or
	// SourceKafka ([kafka] snapshot-topic in consumer group [kafka]
	// group; Kafka is then enabled).
	Source string
	// Cluster is cluster-name, "" when unset: on a load balancer, the
	// cluster its snapshot records carry (and are keyed by); on a
	// processor with SourceKafka, the cluster of records that carry
	// none. It passes snaprecord.CheckCluster.
	Cluster string
	// ClusterInterval is the width of a cluster bucket (whole seconds,
	// default [pull] pull-interval); ClusterWait how long a bucket waits
	// for its hosts after its first snapshot arrived (> 0, default
	// ClusterInterval); ClusterLate how long after its delivery a bucket
	// is recomputed for a late host (>= 0, default 3 x ClusterInterval);
	// ClusterHostsExpiry how long a host that stopped reporting is still
	// waited for (>= ClusterInterval, default 5 x ClusterInterval).
	ClusterInterval, ClusterWait, ClusterLate, ClusterHostsExpiry time.Duration
}

// Values of [process] source.
const (
	SourceSpool = "spool"
	SourceKafka = "kafka"
)

// Sources are the valid values of [process] source.
var Sources = []string{SourceSpool, SourceKafka}

// FromKafka reports whether the snapshots come from Kafka.
func (p *Process) FromKafka() bool { return p.Source == SourceKafka }

// Graphite is the validated [graphite] section.
type Graphite struct {
	Server         string
	Port           int
	Retries        int // -1 = forever
	Interval       time.Duration
	Backoff        float64
	Delay          time.Duration
	ConnectTimeout time.Duration // > 0
	WriteTimeout   time.Duration // > 0
	Namespace      string
	PrefixHostname bool
	FQDN           bool
	// QueueSize is accepted for compatibility and not used: lines are
	// streamed, never queued (docs/configuration.md).
	QueueSize int
	// GroupNamespace is "" when unset; when set, Groups has at least one
	// group section and GroupNamespaceDoubleWrites was given.
	GroupNamespace             string
	GroupNamespaceDoubleWrites bool
	// Hostname overrides the machine's host name ("" = unset): see
	// ResolveHostname.
	Hostname string
}

// Group is one option of a *-groups section.
type Group struct {
	Name    string // the option name, lower-case
	Pattern *regexp.Regexp
}

// Groups are the [frontend-groups], [backend-groups] and [server-groups]
// sections, each in file order (the first match wins). A name that is an
// option of [DEFAULT] (built in, or set in the user's [DEFAULT]) is not a
// group, even when the group section sets it itself (SPEC §5.6).
type Groups struct {
	Frontend, Backend, Server []Group
}

// LocalStore is the [local-store] section.
type LocalStore struct {
	Enabled bool // the section is in the user's files
	Dir     string
}

// ProcessSettings is everything haproxystats-process reads.
type ProcessSettings struct {
	Process    Process
	Graphite   Graphite
	Groups     Groups
	LocalStore LocalStore
	Kafka      Kafka
	// KafkaMetrics is true when the metric lines also go to [kafka]
	// topic: the [kafka] section is present and, with the Kafka source
	// (which needs the section to consume), topic is written in it.
	KafkaMetrics bool
}

// PullSettings validates and returns the [pull] section. Every problem is
// reported, joined with errors.Join, each an *Error naming the section,
// option and value.
func (c *Config) PullSettings() (*Pull, error) {
	k := newChecker(c)
	const s = SectionPull
	p := &Pull{
		Loglevel:      k.level(s, "loglevel"),
		Retries:       k.integer(s, "retries", -1, math.MaxInt),
		Timeout:       k.seconds(s, "timeout", true),
		Interval:      k.seconds(s, "interval", false),
		PullTimeout:   k.seconds(s, "pull-timeout", false),
		PullInterval:  k.wholeSeconds(s, "pull-interval"),
		BufferLimit:   k.integer(s, "buffer-limit", 1, math.MaxInt),
		MaxAnswerSize: int64(k.integer(s, "max-answer-size", 0, math.MaxInt)),
		DstDir:        k.nonEmpty(s, "dst-dir"),
		TmpDstDir:     k.nonEmpty(s, "tmp-dst-dir"),
		Workers:       k.integer(s, "workers", 1, MaxWorkers),
		QueueSize:     k.integer(s, "queue-size", 1, math.MaxInt),
	}
	if c.Has(s, "socket-dir") {
		p.SocketDir = k.nonEmpty(s, "socket-dir")
	}
	if v, ok := k.str(s, "servers"); ok {
		p.Servers = k.servers("servers", v)
	}
	if v, ok := k.str(s, "masters"); ok {
		p.Masters = k.servers("masters", v)
	}
	if !c.Has(s, "socket-dir") && !c.Has(s, "servers") && !c.Has(s, "masters") {
		k.errs = append(k.errs, &Error{Section: s, Err: errors.New("none of socket-dir, servers and masters is set: nothing to pull from")})
	}
	p.Destination, p.KafkaDstDir = k.destination()
	if p.ToKafka() {
		if c.HasSection(SectionKafka) {
			p.Kafka = k.kafka()
		} else {
			k.fail(s, "destination", p.Destination, errors.New("needs a [kafka] section with brokers"))
		}
		p.Hostname = k.hostname()
		p.Cluster = k.clusterName()
	}
	if err := k.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// ProcessSettings validates and returns the [process], [graphite],
// *-groups, [local-store] and [kafka] sections. Every problem is reported, joined
// with errors.Join, each an *Error naming the section, option and value.
// It does not touch the file system; see CheckReadWrite.
func (c *Config) ProcessSettings() (*ProcessSettings, error) {
	k := newChecker(c)
	ps := &ProcessSettings{}
	const p = SectionProcess
	ps.Process = Process{
		Loglevel:              k.level(p, "loglevel"),
		SrcDir:                k.nonEmpty(p, "src-dir"),
		Workers:               k.integer(p, "workers", 1, MaxWorkers),
		FrontendMetrics:       k.metrics("frontend-metrics", builtin.ValidFrontendMetrics()),
		BackendMetrics:        k.metrics("backend-metrics", builtin.ValidBackendMetrics()),
		ServerMetrics:         k.metrics("server-metrics", builtin.ValidServerMetrics()),
		AggrServerMetrics:     k.boolean(p, "aggr-server-metrics"),
		PerProcessMetrics:     k.boolean(p, "per-process-metrics"),
		CalculatePercentages:  k.boolean(p, "calculate-percentages"),
		LivenessCheckInterval: k.seconds(p, "liveness-check-interval", false),
		MaxFileSize:           int64(k.integer(p, "max-file-size", 1, math.MaxInt)),
		MemoryBudget:          int64(k.integer(p, "memory-budget", 0, math.MaxInt)),
		StopTimeout:           k.timeout(p, "stop-timeout", MaxStopTimeout),
		MonotonicCounters:     k.boolean(p, "monotonic-counters"),
		CountersExpiry:        k.wholeSeconds(p, "counters-expiry"),
	}
	ps.Process.StageCacheDir, _ = k.str(p, "stage-cache-dir")
	if ps.Process.MonotonicCounters {
		ps.Process.CountersDir = k.nonEmpty(p, "counters-dir")
	} else {
		ps.Process.CountersDir, _ = k.str(p, "counters-dir")
	}
	if v, ok := k.str(p, "stages"); ok {
		ps.Process.Stages = strings.Fields(v)
		for _, name := range ps.Process.Stages {
			if !c.HasSection(StageSection(name)) {
				k.errs = append(k.errs, &Error{Section: p, Option: "stages", Value: v,
					Err: fmt.Errorf("no [%s] section", StageSection(name))})
			}
		}
	}
	ps.Process.ExcludeFrontends, _ = k.str(p, "exclude-frontends")
	ps.Process.ExcludeBackends, _ = k.str(p, "exclude-backends")

	const g = SectionGraphite
	ps.Graphite = Graphite{
		Server:         k.nonEmpty(g, "server"),
		Port:           k.integer(g, "port", 1, 65535),
		Retries:        k.integer(g, "retries", 0, math.MaxInt),
		Interval:       k.seconds(g, "interval", false),
		Backoff:        k.positive(g, "backoff"),
		Delay:          k.seconds(g, "delay", false),
		ConnectTimeout: k.seconds(g, "connect-timeout", true),
		WriteTimeout:   k.seconds(g, "write-timeout", true),
		Namespace:      k.namespace(g, "namespace"),
		PrefixHostname: k.boolean(g, "prefix-hostname"),
		FQDN:           k.boolean(g, "fqdn"),
		QueueSize:      k.integer(g, "queue-size", 1, math.MaxInt),
		Hostname:       k.hostname(),
	}
	ps.Groups = k.groups(&ps.Graphite)

	ps.LocalStore.Enabled = c.HasSection(SectionLocalStore)
	if ps.LocalStore.Enabled {
		ps.LocalStore.Dir = k.nonEmpty(SectionLocalStore, "dir")
	} else {
		ps.LocalStore.Dir, _ = k.str(SectionLocalStore, "dir")
	}
	ps.Kafka = k.kafka()
	k.source(ps)
	ps.KafkaMetrics = ps.Kafka.Enabled && (!ps.Process.FromKafka() || slices.Contains(k.c.OwnOptions(SectionKafka), "topic"))
	if err := k.err(); err != nil {
		return nil, err
	}
	return ps, nil
}

// source reads [process] source and the cluster options, and checks what
// the Kafka source cannot be combined with.
func (k *checker) source(ps *ProcessSettings) {
	const p = SectionProcess
	pr := &ps.Process
	pr.Source = SourceSpool
	if v, ok := k.str(p, "source"); ok {
		if src := strings.ToLower(v); slices.Contains(Sources, src) {
			pr.Source = src
		} else {
			k.fail(p, "source", v, fmt.Errorf("unknown source (want one of %s)", strings.Join(Sources, ", ")))
		}
	}
	pr.Cluster = k.clusterName()
	pr.ClusterInterval = k.wholeSeconds(p, "cluster-interval")
	pr.ClusterWait = k.seconds(p, "cluster-wait", true)
	pr.ClusterLate = 3 * pr.ClusterInterval
	if k.c.Has(p, "cluster-late") {
		pr.ClusterLate = k.seconds(p, "cluster-late", false)
	}
	pr.ClusterHostsExpiry = 5 * pr.ClusterInterval
	if k.c.Has(p, "cluster-hosts-expiry") {
		pr.ClusterHostsExpiry = k.seconds(p, "cluster-hosts-expiry", true)
		if v, _ := k.str(p, "cluster-hosts-expiry"); pr.ClusterInterval > 0 && pr.ClusterHostsExpiry > 0 && pr.ClusterHostsExpiry < pr.ClusterInterval {
			k.fail(p, "cluster-hosts-expiry", v, fmt.Errorf("must be >= cluster-interval (%v)", pr.ClusterInterval.Seconds()))
		}
	}
	if !pr.FromKafka() {
		return
	}
	src, _ := k.str(p, "source")
	if !ps.Kafka.Enabled {
		k.fail(p, "source", src, errors.New("needs a [kafka] section with brokers (the snapshots are consumed from its snapshot-topic)"))
	}
	if pr.MonotonicCounters {
		k.fail(p, "monotonic-counters", "true", errors.New("not supported with source = kafka yet: one processor handles many hosts' snapshots and the clusters', whose counters would share one state"))
	}
	if ps.LocalStore.Enabled {
		k.errs = append(k.errs, &Error{Section: SectionLocalStore,
			Err: errors.New("not supported with [process] source = kafka: the store is one directory per epoch, which the hosts of a processing tier share")})
	}
}

// clusterName reads [process] cluster-name, "" when unset.
func (k *checker) clusterName() string {
	const p = SectionProcess
	if !k.c.Has(p, "cluster-name") {
		return ""
	}
	v, _ := k.str(p, "cluster-name")
	if err := snaprecord.CheckCluster(v); err != nil {
		k.fail(p, "cluster-name", v, err)
	}
	return v
}

// destination reads [pull] destination and kafka-dst-dir; the directory is
// checked only when rounds go to Kafka.
func (k *checker) destination() (dest, dir string) {
	const s = SectionPull
	v, ok := k.str(s, "destination")
	if !ok {
		return DestinationSpool, ""
	}
	dest = strings.ToLower(v)
	if !slices.Contains(Destinations, dest) {
		k.fail(s, "destination", v, fmt.Errorf("unknown destination (want one of %s)", strings.Join(Destinations, ", ")))
		return DestinationSpool, ""
	}
	if dest == DestinationSpool {
		return dest, ""
	}
	dir = k.nonEmpty(s, "kafka-dst-dir")
	for _, other := range []string{"dst-dir", "tmp-dst-dir"} {
		if o, _ := k.str(s, other); dir != "" && path.Clean(o) == path.Clean(dir) {
			k.fail(s, "kafka-dst-dir", dir, fmt.Errorf("must differ from %s: the Kafka publisher removes what it published", other))
		}
	}
	// The Kafka spool's rounds are written in KafkaTmpDir, whose
	// leftovers are removed at every start: it must not be a spool.
	if tmp, _ := k.str(s, "tmp-dst-dir"); tmp != "" {
		kt := KafkaTmpDir(tmp)
		for _, o := range []string{"dst-dir", "kafka-dst-dir"} {
			if v, _ := k.str(s, o); v != "" && path.Clean(v) == kt {
				k.fail(s, o, v, fmt.Errorf("must differ from %s, where the Kafka spool's rounds are written (leftovers there are removed at start)", kt))
			}
		}
	}
	return dest, dir
}

// KafkaTmpDir is the temporary directory of the Kafka spool of pull, inside
// [pull] tmp-dst-dir: a round reaches kafka-dst-dir by a rename from there.
func KafkaTmpDir(tmpDstDir string) string { return path.Join(path.Clean(tmpDstDir), "kafka") }

// hostname reads [graphite] hostname, "" when unset.
func (k *checker) hostname() string {
	const g = SectionGraphite
	if !k.c.Has(g, "hostname") {
		return ""
	}
	v, _ := k.str(g, "hostname")
	if err := snaprecord.CheckHost(v); err != nil {
		k.fail(g, "hostname", v, err)
	}
	return v
}

// ResolveHostname returns the host name the programs use for this machine
// wherever they need one (the Graphite prefix of prefix-hostname, the key
// of Kafka records, the host of a snapshot record): override, the
// [graphite] hostname option, when set, else the operating system's host
// name. The name must pass snaprecord.CheckHost; the error of one that
// does not, or of os.Hostname, names [graphite] hostname as the way out.
func ResolveHostname(override string) (string, error) {
	if override != "" {
		return override, nil
	}
	h, err := os.Hostname()
	if err == nil {
		err = snaprecord.CheckHost(h)
	}
	if err != nil {
		return "", &Error{Section: SectionGraphite, Option: "hostname",
			Err: fmt.Errorf("unset, and the host name of the operating system cannot be used (set hostname): %w", err)}
	}
	return h, nil
}

// StageSection is the name of the section that configures stage name.
func StageSection(name string) string { return "stage." + name }

// StageOptions returns the options written in the [stage.<name>] section,
// interpolated. Options of [DEFAULT] are not inherited: they would become
// the stage's parameters (and DEFAULT's timeout its time limit).
func (c *Config) StageOptions(name string) (map[string]string, error) {
	section := StageSection(name)
	if !c.HasSection(section) {
		return nil, &Error{Section: section, Err: ErrNoSection}
	}
	out := make(map[string]string)
	var errs []error
	x := newExpansion()
	for _, opt := range c.OwnOptions(section) {
		v, err := c.get(section, opt, x)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[opt] = v
	}
	return out, errors.Join(capErrors(errs, "["+section+"]")...)
}

// CheckReadWrite checks that dir (process src-dir) can be listed and that a
// file can be created in it and removed, as the original did at start.
func CheckReadWrite(dir string) error {
	if dir == "" {
		return errors.New("check read and write access: empty directory name")
	}
	// O_DIRECTORY: a named pipe there is an error, not a wait for a writer.
	d, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("check read access to %s: %w", dir, err)
	}
	_, err = d.Readdirnames(1)
	d.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("check read access to %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".read_write_check-*")
	if err != nil {
		return fmt.Errorf("check write access to %s: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("check write access to %s: %w", dir, err)
	}
	return nil
}

// checker reads typed options and collects every problem.
type checker struct {
	c    *Config
	x    *expansion // shared by every value read
	errs []error
}

func newChecker(c *Config) *checker { return &checker{c: c, x: newExpansion()} }

func (k *checker) err() error {
	return errors.Join(capErrors(k.errs, "configuration")...)
}

func (k *checker) fail(section, option, value string, err error) {
	_, from, _ := k.c.raw(section, option)
	k.errs = append(k.errs, &Error{Section: section, Option: option, Value: value, From: from, Err: err})
}

// str returns the interpolated value and whether the option is set.
func (k *checker) str(section, option string) (string, bool) {
	if !k.c.Has(section, option) {
		return "", false
	}
	v, err := k.c.get(section, option, k.x)
	if err != nil {
		k.errs = append(k.errs, err)
		return "", false
	}
	return v, true
}

// parsed returns the value of an option that has a default, parsed with
// parse; ok is false after a problem, which is recorded.
func parsed[T any](k *checker, section, option string, parse func(string) (T, error)) (t T, v string, ok bool) {
	v, set := k.str(section, option)
	if !set {
		if !k.c.Has(section, option) {
			k.errs = append(k.errs, &Error{Section: section, Err: fmt.Errorf("%s: %w", option, ErrNoOption)})
		}
		return t, v, false
	}
	t, err := parse(v)
	if err != nil {
		k.fail(section, option, v, err)
		return t, v, false
	}
	return t, v, true
}

func (k *checker) nonEmpty(section, option string) string {
	v, ok := k.str(section, option)
	if ok && v == "" {
		k.fail(section, option, v, errors.New("must not be empty"))
	}
	return v
}

func (k *checker) level(section, option string) slog.Level {
	l, _, _ := parsed(k, section, option, ParseLevel)
	return l
}

func (k *checker) boolean(section, option string) bool {
	b, _, _ := parsed(k, section, option, ParseBool)
	return b
}

// integer returns an int that must be >= lo and <= hi; hi = math.MaxInt
// is no upper bound.
func (k *checker) integer(section, option string, lo, hi int) int {
	n, v, ok := parsed(k, section, option, ParseInt)
	switch {
	case !ok:
	case hi != math.MaxInt && (n < lo || n > hi):
		k.fail(section, option, v, fmt.Errorf("must be between %d and %d", lo, hi))
	case n < lo:
		k.fail(section, option, v, fmt.Errorf("must be >= %d", lo))
	}
	return n
}

// float returns a finite number >= 0.
func (k *checker) float(section, option string) float64 {
	f, v, ok := parsed(k, section, option, ParseFloat)
	if ok && !(f >= 0 && !math.IsInf(f, 0)) {
		k.fail(section, option, v, errors.New("must be a finite number >= 0"))
	}
	return f
}

// positive returns a finite number > 0.
func (k *checker) positive(section, option string) float64 {
	f, v, ok := parsed(k, section, option, ParseFloat)
	if ok && !(f > 0 && !math.IsInf(f, 0)) {
		k.fail(section, option, v, errors.New("must be a finite number > 0"))
	}
	return f
}

// wholeSeconds returns a duration written as an integer number of seconds,
// > 0, as the original's getint.
func (k *checker) wholeSeconds(section, option string) time.Duration {
	n, v, ok := parsed(k, section, option, ParseInt)
	switch {
	case !ok:
	case n < 1:
		k.fail(section, option, v, errors.New("must be >= 1"))
	case n > int(math.MaxInt64/int64(time.Second)):
		k.fail(section, option, v, errors.New("too many seconds"))
	default:
		return time.Duration(n) * time.Second
	}
	return 0
}

// timeout returns a duration written as float seconds, > 0 and at most
// limit.
func (k *checker) timeout(section, option string, limit time.Duration) time.Duration {
	d, v, ok := parsed(k, section, option, ParseSeconds)
	if ok && (d <= 0 || d > limit) {
		k.fail(section, option, v, fmt.Errorf("must be > 0 and at most %v", limit.Seconds()))
	}
	return d
}

// namespace returns a value that starts metric paths as written
// (checkNamespace).
func (k *checker) namespace(section, option string) string {
	v, ok := k.str(section, option)
	if !ok {
		return v
	}
	if v == "" {
		k.fail(section, option, v, errors.New("must not be empty"))
	} else if err := checkNamespace(v); err != nil {
		k.fail(section, option, v, err)
	}
	return v
}

// seconds returns a duration written as float seconds, >= 0, or > 0 if
// positive.
func (k *checker) seconds(section, option string, positive bool) time.Duration {
	d, v, ok := parsed(k, section, option, ParseSeconds)
	switch {
	case !ok:
	case positive && d <= 0:
		k.fail(section, option, v, errors.New("must be > 0"))
	case d < 0:
		k.fail(section, option, v, errors.New("must be >= 0"))
	}
	return d
}

// metrics returns a [process] metric list, nil when unset. The value is
// split on single spaces as the original's split(' '), so a double space
// makes an empty name, which is invalid.
func (k *checker) metrics(option string, valid []string) []string {
	v, ok := k.str(SectionProcess, option)
	if !ok {
		return nil
	}
	names := strings.Split(v, " ")
	var bad []string
	for _, n := range names {
		if !slices.Contains(valid, n) && !slices.Contains(bad, n) {
			bad = append(bad, n)
		}
	}
	if len(bad) > 0 {
		quoted := make([]string, len(bad))
		for i, n := range bad {
			quoted[i] = strconv.Quote(n)
		}
		k.fail(SectionProcess, option, v, fmt.Errorf("invalid metric names %s (valid: %s)",
			strings.Join(quoted, ", "), strings.Join(valid, " ")))
	}
	return names
}

// servers parses the comma-separated URLs of [pull] servers or masters.
func (k *checker) servers(option, v string) []Server {
	if v == "" {
		k.fail(SectionPull, option, v, errors.New("must not be empty"))
		return nil
	}
	var out []Server
	names := map[string]string{}
	for _, u := range strings.Split(v, ",") {
		srv, err := ParseServer(u)
		if err == nil && option == "masters" {
			err = spool.ValidMasterName(srv.Name)
		} else if err == nil {
			err = spool.ValidPlainSocketName(srv.Name)
		}
		if err != nil {
			k.fail(SectionPull, option, v, err)
			continue
		}
		if prev, ok := names[srv.Name]; ok {
			k.fail(SectionPull, option, v, fmt.Errorf("%q and %q would write the same spool files %q", prev, strings.TrimSpace(u), srv.Name))
			continue
		}
		names[srv.Name] = strings.TrimSpace(u)
		out = append(out, srv)
	}
	return out
}

// ParseServer parses one server URL: unix:///path/to/socket or
// tcp://host:port, tcp://[IPv6]:port.
func ParseServer(u string) (Server, error) {
	u = strings.TrimSpace(u)
	fail := func(format string, args ...any) (Server, error) {
		return Server{}, fmt.Errorf("server %q: %s", u, fmt.Sprintf(format, args...))
	}
	if u == "" {
		return fail("empty URL")
	}
	scheme, rest, ok := strings.Cut(u, ":")
	if !ok || scheme == "" {
		return fail("not a URL (want tcp://host:port or unix:///path)")
	}
	host, hasHost := "", strings.HasPrefix(rest, "//")
	if hasHost {
		rest = rest[2:]
		i := strings.IndexAny(rest, "/?#")
		if i < 0 {
			i = len(rest)
		}
		host, rest = rest[:i], rest[i:]
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	switch strings.ToLower(scheme) {
	case "unix":
		switch {
		case host != "":
			return fail("unix URL with host %q (write unix:///path)", host)
		case rest == "":
			return fail("unix URL without a path")
		case strings.HasSuffix(rest, "/"):
			return fail("unix URL names a directory (use socket-dir for a directory of sockets)")
		}
		return Server{Network: "unix", Address: rest, Name: path.Base(rest)}, nil
	case "tcp":
		if !hasHost || host == "" {
			return fail("tcp URL without a host")
		}
		if strings.Contains(host, "@") {
			return fail("tcp URL with user information")
		}
		h, port, err := net.SplitHostPort(host)
		var aerr *net.AddrError
		if (errors.As(err, &aerr) && aerr.Err == "missing port in address") || (err == nil && port == "") {
			return fail("tcp URL without a port")
		}
		if err != nil {
			return fail("want tcp://host:port, tcp://[IPv6]:port: %v", err)
		}
		if h == "" {
			return fail("tcp URL without a host")
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strings.Trim(port, "0123456789") != "" {
			return fail("port %q is not between 1 and 65535", port)
		}
		h = strings.ToLower(h) // as Python's urlparse(...).hostname
		port = strconv.Itoa(n)
		return Server{Network: "tcp", Address: net.JoinHostPort(h, port), Name: h + ":" + port}, nil
	default:
		return fail("scheme %q is not tcp or unix", scheme)
	}
}

// groups reads the *-groups sections and checks them against
// group-namespace and group-namespace-double-writes of [graphite], which it
// sets in g.
func (k *checker) groups(g *Graphite) Groups {
	const gs = SectionGraphite
	nsSet := k.c.Has(gs, "group-namespace")
	ns := k.namespace(gs, "group-namespace")
	if k.c.Has(gs, "group-namespace-double-writes") {
		g.GroupNamespaceDoubleWrites = k.boolean(gs, "group-namespace-double-writes")
	} else if nsSet {
		k.errs = append(k.errs, &Error{Section: gs, Err: errors.New("group-namespace is set but group-namespace-double-writes is not")})
	}
	var groups Groups
	present := false
	for _, s := range groupSections {
		if !k.c.HasSection(s) {
			continue
		}
		present = true
		if !nsSet {
			k.errs = append(k.errs, &Error{Section: s, Err: errors.New("group section without group-namespace in [graphite]")})
		}
		var list []Group
		for _, name := range k.c.OwnOptions(s) {
			if k.c.isDefaultOption(name) {
				// As the original, which skips every name of
				// config.defaults(): not a group, even set here.
				continue
			}
			v, ok := k.str(s, name)
			if !ok {
				continue
			}
			if err := CheckPathName(name); err != nil {
				k.fail(s, name, v, fmt.Errorf("group name %q: %w", name, err))
				continue
			}
			re, err := regexp.Compile(v)
			if err != nil {
				k.fail(s, name, v, fmt.Errorf("bad regular expression: %w", err))
				continue
			}
			list = append(list, Group{Name: name, Pattern: re})
		}
		switch s {
		case SectionFrontendGroups:
			groups.Frontend = list
		case SectionBackendGroups:
			groups.Backend = list
		case SectionServerGroups:
			groups.Server = list
		}
	}
	if nsSet && !present {
		k.fail(gs, "group-namespace", ns, fmt.Errorf("needs at least one of the sections [%s]", strings.Join(groupSections, "], [")))
	}
	g.GroupNamespace = ns
	return groups
}
