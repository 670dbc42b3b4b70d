package config

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

func TestPullSettingsDefaults(t *testing.T) {
	c := load(t, "[pull]\nsocket-dir = /run/haproxy\n")
	got, err := c.PullSettings()
	if err != nil {
		t.Fatalf("PullSettings() error: %v", err)
	}
	want := &Pull{
		Loglevel:      slog.LevelInfo,
		SocketDir:     "/run/haproxy",
		Retries:       1,
		Timeout:       100 * time.Millisecond,
		Interval:      500 * time.Millisecond,
		PullTimeout:   2 * time.Second,
		PullInterval:  10 * time.Second,
		BufferLimit:   6291456,
		MaxAnswerSize: 268435456,
		DstDir:        "/var/lib/haproxystats/incoming",
		TmpDstDir:     "/var/lib/haproxystats/incoming.tmp",
		Workers:       8,
		QueueSize:     360,
		Destination:   DestinationSpool,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PullSettings() = %+v, want %+v", got, want)
	}
}

func TestPullSettingsServers(t *testing.T) {
	c := load(t, "[pull]\nloglevel = DEBUG\nservers = unix:///run/haproxy.sock, tcp://127.0.0.1:5555,tcp://[FE80::1]:4444,tcp://Foo.Bar.com:0080\n")
	got, err := c.PullSettings()
	if err != nil {
		t.Fatalf("PullSettings() error: %v", err)
	}
	want := []Server{
		{Network: "unix", Address: "/run/haproxy.sock", Name: "haproxy.sock"},
		{Network: "tcp", Address: "127.0.0.1:5555", Name: "127.0.0.1:5555"},
		{Network: "tcp", Address: "[fe80::1]:4444", Name: "fe80::1:4444"},
		{Network: "tcp", Address: "foo.bar.com:80", Name: "foo.bar.com:80"},
	}
	if !reflect.DeepEqual(got.Servers, want) {
		t.Errorf("PullSettings().Servers = %+v, want %+v", got.Servers, want)
	}
	if got.SocketDir != "" || got.Loglevel != slog.LevelDebug {
		t.Errorf("PullSettings() SocketDir, Loglevel = %q, %v, want \"\", DEBUG", got.SocketDir, got.Loglevel)
	}
}

// masters alone is something to pull from; masters and the other two
// combine; max-answer-size 0 is no limit.
func TestPullSettingsMasters(t *testing.T) {
	c := load(t, "[pull]\nmasters = unix:///run/haproxy-master.sock, tcp://127.0.0.1:9999,tcp://[::1]:9999\nmax-answer-size = 0\n")
	got, err := c.PullSettings()
	if err != nil {
		t.Fatalf("PullSettings() error: %v", err)
	}
	want := []Server{
		{Network: "unix", Address: "/run/haproxy-master.sock", Name: "haproxy-master.sock"},
		{Network: "tcp", Address: "127.0.0.1:9999", Name: "127.0.0.1:9999"},
		{Network: "tcp", Address: "[::1]:9999", Name: "::1:9999"},
	}
	if !reflect.DeepEqual(got.Masters, want) || got.Servers != nil || got.SocketDir != "" || got.MaxAnswerSize != 0 {
		t.Errorf("PullSettings() = %+v, want Masters %+v only, MaxAnswerSize 0", got, want)
	}
	c = load(t, "[pull]\nsocket-dir = /run/haproxy\nservers = unix:///a.sock\nmasters = unix:///run/haproxy-master.sock\n")
	got, err = c.PullSettings()
	if err != nil || got.SocketDir == "" || len(got.Servers) != 1 || len(got.Masters) != 1 {
		t.Errorf("PullSettings() with all three = %+v, %v", got, err)
	}
}

func TestParseServer(t *testing.T) {
	tests := []struct {
		in   string
		want Server
		err  string
	}{
		{"unix:///run/haproxy/admin1.sock", Server{"unix", "/run/haproxy/admin1.sock", "admin1.sock"}, ""},
		{"unix:/run/a.sock", Server{"unix", "/run/a.sock", "a.sock"}, ""},
		{"UNIX:///a.sock", Server{"unix", "/a.sock", "a.sock"}, ""},
		{"tcp://127.0.0.1:9000", Server{"tcp", "127.0.0.1:9000", "127.0.0.1:9000"}, ""},
		{"tcp://[::1]:9000", Server{"tcp", "[::1]:9000", "::1:9000"}, ""},
		{"tcp://lb:9000/ignored", Server{"tcp", "lb:9000", "lb:9000"}, ""},
		{"http://127.0.0.1:80", Server{}, `scheme "http" is not tcp or unix`},
		{"/run/haproxy.sock", Server{}, "not a URL"},
		{"tcp://127.0.0.1", Server{}, "without a port"},
		{"tcp://127.0.0.1:", Server{}, "without a port"},
		{"tcp://[::1]", Server{}, "without a port"},
		{"tcp://::1:9000", Server{}, "too many colons"},
		{"tcp://:9000", Server{}, "without a host"},
		{"tcp://h:99999", Server{}, "not between 1 and 65535"},
		{"tcp://h:http", Server{}, "not between 1 and 65535"},
		{"unix://", Server{}, "without a path"},
		{"unix:", Server{}, "without a path"},
		{"unix://run/haproxy.sock", Server{}, `with host "run"`},
		{"unix:///run/haproxy/", Server{}, "names a directory"},
		{"", Server{}, "empty URL"},
	}
	for _, tt := range tests {
		got, err := ParseServer(tt.in)
		if tt.err == "" {
			if err != nil || got != tt.want {
				t.Errorf("ParseServer(%q) = %+v, %v, want %+v", tt.in, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseServer(%q) error = %v, want %q", tt.in, err, tt.err)
		}
	}
}

func TestProcessSettingsDefaults(t *testing.T) {
	c := load(t, "")
	got, err := c.ProcessSettings()
	if err != nil {
		t.Fatalf("ProcessSettings() error: %v", err)
	}
	want := &ProcessSettings{
		Process: Process{
			Loglevel:              slog.LevelInfo,
			SrcDir:                "/var/lib/haproxystats/incoming",
			Workers:               4,
			LivenessCheckInterval: 10 * time.Second,
			StopTimeout:           10 * time.Second,
			StageCacheDir:         "/var/lib/haproxystats/stage-cache",
			MaxFileSize:           268435456,
			MemoryBudget:          16777216,
			CountersDir:           "/var/lib/haproxystats/counters",
			CountersExpiry:        time.Hour,
			Source:                SourceSpool,
			ClusterInterval:       10 * time.Second,
			ClusterWait:           10 * time.Second,
			ClusterLate:           30 * time.Second,
			ClusterHostsExpiry:    50 * time.Second,
		},
		Graphite: Graphite{
			Server:         "127.0.0.1",
			Port:           3002,
			Retries:        3,
			Interval:       1800 * time.Millisecond,
			Backoff:        2,
			Delay:          10 * time.Second,
			ConnectTimeout: time.Second,
			WriteTimeout:   time.Second,
			Namespace:      "loadbalancers",
			PrefixHostname: true,
			FQDN:           true,
			QueueSize:      1000000,
		},
		LocalStore: LocalStore{Enabled: false, Dir: "/var/lib/haproxystats/local-store"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ProcessSettings() = %+v, want %+v", got, want)
	}
}

func TestProcessSettings(t *testing.T) {
	c := load(t, `[DEFAULT]
loglevel = Warning
[paths]
base-dir = /srv/hs
[process]
workers = 2
frontend-metrics = bin bout stot hrsp_2xx
backend-metrics = lbtot act rtime
server-metrics = lbtot weight ttime
exclude-frontends = exclude-frontends.txt
exclude-backends = exclude-backends.txt
aggr-server-metrics = On
per-process-metrics = YES
calculate-percentages = 1
liveness-check-interval = 2.5
stop-timeout = 0.5
monotonic-counters = yes
counters-expiry = 86400
[graphite]
server = graphite.example.com
port = 2003
retries = 0
interval = 1e-1
backoff = 1.5
delay = 0
connect-timeout = 0.25
write-timeout = 3
namespace = metrics_lb.fra1
prefix-hostname = off
fqdn = False
queue-size = 1_000
group-namespace = team
group-namespace-double-writes = true
[frontend-groups]
warm = ^fe_(red|green)
[backend-groups]
Warm = ^be_(red|green)
cold = blue|idle
[server-groups]
primary = ^app0[12]$$
[local-store]
dir = local-store
`)
	got, err := c.ProcessSettings()
	if err != nil {
		t.Fatalf("ProcessSettings() error: %v", err)
	}
	wantProcess := Process{
		Loglevel:              slog.LevelWarn,
		SrcDir:                "/srv/hs/incoming",
		Workers:               2,
		FrontendMetrics:       []string{"bin", "bout", "stot", "hrsp_2xx"},
		BackendMetrics:        []string{"lbtot", "act", "rtime"},
		ServerMetrics:         []string{"lbtot", "weight", "ttime"},
		ExcludeFrontends:      "exclude-frontends.txt",
		ExcludeBackends:       "exclude-backends.txt",
		AggrServerMetrics:     true,
		PerProcessMetrics:     true,
		CalculatePercentages:  true,
		LivenessCheckInterval: 2500 * time.Millisecond,
		StopTimeout:           500 * time.Millisecond,
		StageCacheDir:         "/srv/hs/stage-cache",
		MaxFileSize:           268435456,
		MemoryBudget:          16777216,
		MonotonicCounters:     true,
		CountersDir:           "/srv/hs/counters",
		CountersExpiry:        24 * time.Hour,
		Source:                SourceSpool,
		ClusterInterval:       10 * time.Second,
		ClusterWait:           10 * time.Second,
		ClusterLate:           30 * time.Second,
		ClusterHostsExpiry:    50 * time.Second,
	}
	if !reflect.DeepEqual(got.Process, wantProcess) {
		t.Errorf("ProcessSettings().Process = %+v, want %+v", got.Process, wantProcess)
	}
	wantGraphite := Graphite{
		Server:                     "graphite.example.com",
		Port:                       2003,
		Retries:                    0,
		Interval:                   100 * time.Millisecond,
		Backoff:                    1.5,
		Delay:                      0,
		ConnectTimeout:             250 * time.Millisecond,
		WriteTimeout:               3 * time.Second,
		Namespace:                  "metrics_lb.fra1",
		PrefixHostname:             false,
		FQDN:                       false,
		QueueSize:                  1000,
		GroupNamespace:             "team",
		GroupNamespaceDoubleWrites: true,
	}
	if got.Graphite != wantGraphite {
		t.Errorf("ProcessSettings().Graphite = %+v, want %+v", got.Graphite, wantGraphite)
	}
	groups := func(gs []Group) string {
		var s []string
		for _, g := range gs {
			s = append(s, g.Name+"="+g.Pattern.String())
		}
		return strings.Join(s, " ")
	}
	for _, tt := range []struct {
		name string
		got  []Group
		want string
	}{
		{"Frontend", got.Groups.Frontend, "warm=^fe_(red|green)"},
		{"Backend", got.Groups.Backend, "warm=^be_(red|green) cold=blue|idle"},
		{"Server", got.Groups.Server, "primary=^app0[12]$"},
	} {
		if g := groups(tt.got); g != tt.want {
			t.Errorf("ProcessSettings().Groups.%s = %q, want %q", tt.name, g, tt.want)
		}
	}
	if !got.Groups.Server[0].Pattern.MatchString("app01") || got.Groups.Server[0].Pattern.MatchString("app011") {
		t.Errorf("server group %q does not match as ^app0[12]$", got.Groups.Server[0].Pattern)
	}
	if want := (LocalStore{Enabled: true, Dir: "local-store"}); got.LocalStore != want {
		t.Errorf("ProcessSettings().LocalStore = %+v, want %+v", got.LocalStore, want)
	}
}

// TestGroupsIgnoreDefault: a name that is an option of [DEFAULT] (built
// in, or set in the user's [DEFAULT]) is not a group, whether inherited or
// set in the group section itself (SPEC §5.6; the original skips every
// name of config.defaults()).
func TestGroupsIgnoreDefault(t *testing.T) {
	c := load(t, `[DEFAULT]
shared = x
[graphite]
group-namespace = g
group-namespace-double-writes = no
[frontend-groups]
interval = ^fe_i
a = (?i)^FE
shared = ^fe_s
[backend-groups]
loglevel = ^be
retries = ^be
timeout = ^be
b = ^be
[server-groups]
Shared = ^srv
`)
	got, err := c.ProcessSettings()
	if err != nil {
		t.Fatalf("ProcessSettings() error: %v", err)
	}
	if len(got.Groups.Frontend) != 1 || got.Groups.Frontend[0].Name != "a" {
		t.Fatalf("Groups.Frontend = %+v, want only group a", got.Groups.Frontend)
	}
	if !got.Groups.Frontend[0].Pattern.MatchString("fe_x") {
		t.Errorf("(?i)^FE does not match fe_x")
	}
	if len(got.Groups.Backend) != 1 || got.Groups.Backend[0].Name != "b" {
		t.Errorf("Groups.Backend = %+v, want only group b", got.Groups.Backend)
	}
	if len(got.Groups.Server) != 0 {
		t.Errorf("Groups.Server = %+v, want none", got.Groups.Server)
	}
	// Not groups, so not checked as group names or regexes either.
	c = load(t, "[graphite]\ngroup-namespace = g\ngroup-namespace-double-writes = no\n[frontend-groups]\na = ^fe\ninterval = (\n")
	if _, err := c.ProcessSettings(); err != nil {
		t.Errorf("ProcessSettings() with interval = ( in a group section: %v, want it ignored", err)
	}
}

// TestValidation has one row per rule of SPEC §2 "Validation at start-up";
// every error must name the section, the option and the value.
func TestValidation(t *testing.T) {
	const pullOK = "[pull]\nsocket-dir = /run/haproxy\n"
	tests := []struct {
		name string
		text string
		pull bool // PullSettings, else ProcessSettings
		want string
	}{
		{"pull loglevel", pullOK + "loglevel = verbose\n", true, `[pull] loglevel = "verbose": not a log level`},
		{"DEFAULT loglevel", "[DEFAULT]\nloglevel = loud\n", false, `[process] loglevel = "loud" (from [DEFAULT]): not a log level`},
		{"process loglevel", "[process]\nloglevel = 3\n", false, `[process] loglevel = "3": not a log level`},
		{"pull retries type", pullOK + "retries = x\n", true, `[pull] retries = "x": not an integer`},
		{"pull retries range", pullOK + "retries = -2\n", true, `[pull] retries = "-2": must be >= -1`},
		{"pull timeout type", pullOK + "timeout = 1s\n", true, `[pull] timeout = "1s": not a number`},
		{"pull timeout zero", pullOK + "timeout = 0\n", true, `[pull] timeout = "0": must be > 0`},
		{"pull interval negative", pullOK + "interval = -1\n", true, `[pull] interval = "-1": must be >= 0`},
		{"pull-timeout", pullOK + "pull-timeout = soon\n", true, `[pull] pull-timeout = "soon": not a number`},
		{"pull-interval float", pullOK + "pull-interval = 10.5\n", true, `[pull] pull-interval = "10.5": not an integer`},
		{"pull-interval zero", pullOK + "pull-interval = 0\n", true, `[pull] pull-interval = "0": must be >= 1`},
		{"buffer-limit", pullOK + "buffer-limit = 0\n", true, `[pull] buffer-limit = "0": must be >= 1`},
		{"buffer-limit type", pullOK + "buffer-limit = 6M\n", true, `[pull] buffer-limit = "6M": not an integer`},
		{"pull workers", pullOK + "workers = -1\n", true, `[pull] workers = "-1": must be between 1 and 1024`},
		{"pull workers zero", pullOK + "workers = 0\n", true, `[pull] workers = "0": must be between 1 and 1024`},
		{"pull workers huge", pullOK + "workers = 100000000\n", true, `[pull] workers = "100000000": must be between 1 and 1024`},
		{"pull queue-size", pullOK + "queue-size = -5\n", true, `[pull] queue-size = "-5": must be >= 1`},
		{"dst-dir empty", pullOK + "dst-dir =\n", true, `[pull] dst-dir = "": must not be empty`},
		{"socket-dir empty", "[pull]\nsocket-dir =\n", true, `[pull] socket-dir = "": must not be empty`},
		{"servers empty", "[pull]\nservers =\n", true, `[pull] servers = "": must not be empty`},
		{"neither", "[pull]\n", true, `[pull]: none of socket-dir, servers and masters is set`},
		{"server scheme", "[pull]\nservers = http://h:1\n", true, `[pull] servers = "http://h:1": server "http://h:1": scheme "http" is not tcp or unix`},
		{"tcp without port", "[pull]\nservers = tcp://127.0.0.1\n", true, `[pull] servers = "tcp://127.0.0.1": server "tcp://127.0.0.1": tcp URL without a port`},
		{"unix without path", "[pull]\nservers = unix://\n", true, `[pull] servers = "unix://": server "unix://": unix URL without a path`},
		{"server empty element", "[pull]\nservers = unix:///a.sock,\n", true, `[pull] servers = "unix:///a.sock,": server "": empty URL`},
		{"server duplicate name", "[pull]\nservers = unix:///a/x.sock,unix:///b/x.sock\n", true, `would write the same spool files "x.sock"`},
		{"server named as a worker", "[pull]\nservers = unix:///a/m:master-1:worker-2\n", true, `[pull] servers = "unix:///a/m:master-1:worker-2": socket name "m:master-1:worker-2" reads as a master CLI worker's`},
		{"masters empty", "[pull]\nmasters =\n", true, `[pull] masters = "": must not be empty`},
		{"master scheme", "[pull]\nmasters = udp://h:1\n", true, `[pull] masters = "udp://h:1": server "udp://h:1": scheme "udp" is not tcp or unix`},
		{"master name", "[pull]\nmasters = unix:///run/my master.sock\n", true, `[pull] masters = "unix:///run/my master.sock": master name "my master.sock" holds ' '`},
		{"master duplicate name", "[pull]\nmasters = unix:///a/m.sock,unix:///b/m.sock\n", true, `[pull] masters = "unix:///a/m.sock,unix:///b/m.sock": "unix:///a/m.sock" and "unix:///b/m.sock" would write the same spool files "m.sock"`},
		{"max-answer-size", pullOK + "max-answer-size = -1\n", true, `[pull] max-answer-size = "-1": must be >= 0`},
		{"max-answer-size type", pullOK + "max-answer-size = 256M\n", true, `[pull] max-answer-size = "256M": not an integer`},
		{"process workers", "[process]\nworkers = -1\n", false, `[process] workers = "-1": must be between 1 and 1024`},
		{"process workers huge", "[process]\nworkers = 100000000\n", false, `[process] workers = "100000000": must be between 1 and 1024`},
		{"stop-timeout zero", "[process]\nstop-timeout = 0\n", false, `[process] stop-timeout = "0": must be > 0 and at most 3600`},
		{"stop-timeout huge", "[process]\nstop-timeout = 3600.5\n", false, `[process] stop-timeout = "3600.5": must be > 0 and at most 3600`},
		{"stop-timeout type", "[process]\nstop-timeout = 10s\n", false, `[process] stop-timeout = "10s": not a number`},
		{"namespace space", "[graphite]\nnamespace = lb x\n", false, `[graphite] namespace = "lb x": byte " " at offset 2 is not allowed`},
		{"namespace newline", "[graphite]\nnamespace = lb\n  forged 1 1\n", false, `[graphite] namespace = "lb\nforged 1 1": byte "\n" at offset 2 is not allowed`},
		{"namespace tag", "[graphite]\nnamespace = lb;env=prod\n", false, `[graphite] namespace = "lb;env=prod": byte ";" at offset 2`},
		{"namespace double dot", "[graphite]\nnamespace = fra1..edge\n", false, `[graphite] namespace = "fra1..edge": empty part`},
		{"namespace leading dot", "[graphite]\nnamespace = .edge\n", false, `[graphite] namespace = ".edge": empty part`},
		{"namespace trailing dot", "[graphite]\nnamespace = edge.\n", false, `[graphite] namespace = "edge.": empty part`},
		{"namespace unicode", "[graphite]\nnamespace = lb\u00a0x\n", false, `[graphite] namespace = "lb\u00a0x": byte "\xc2" at offset 2`},
		{"group-namespace", "[graphite]\ngroup-namespace = a b\ngroup-namespace-double-writes = 1\n[frontend-groups]\na = b\n", false,
			`[graphite] group-namespace = "a b": byte " " at offset 1`},
		{"group name", "[graphite]\ngroup-namespace = g\ngroup-namespace-double-writes = 1\n[frontend-groups]\nweb farm = ^fe\n", false,
			`[frontend-groups] web farm = "^fe": group name "web farm": byte " " at offset 3`},
		{"group name tag", "[graphite]\ngroup-namespace = g\ngroup-namespace-double-writes = 1\n[backend-groups]\nx;y = ^be\n", false,
			`[backend-groups] x;y = "^be": group name "x;y": byte ";" at offset 1`},
		{"src-dir empty", "[process]\nsrc-dir =\n", false, `[process] src-dir = "": must not be empty`},
		{"frontend-metrics", "[process]\nfrontend-metrics = bin foo\n", false, `[process] frontend-metrics = "bin foo": invalid metric names "foo"`},
		{"frontend-metrics double space", "[process]\nfrontend-metrics = bin  bout\n", false, `[process] frontend-metrics = "bin  bout": invalid metric names ""`},
		{"backend-metrics", "[process]\nbackend-metrics = lbtot ctime throttle\n", false, `[process] backend-metrics = "lbtot ctime throttle": invalid metric names "throttle"`},
		{"server-metrics", "[process]\nserver-metrics = act\n", false, `[process] server-metrics = "act": invalid metric names "act"`},
		{"metrics empty", "[process]\nserver-metrics =\n", false, `[process] server-metrics = "": invalid metric names ""`},
		{"bool", "[process]\naggr-server-metrics = maybe\n", false, `[process] aggr-server-metrics = "maybe": not a boolean`},
		{"bool per-process", "[process]\nper-process-metrics = 2\n", false, `[process] per-process-metrics = "2": not a boolean`},
		{"bool percentages", "[process]\ncalculate-percentages = y\n", false, `[process] calculate-percentages = "y": not a boolean`},
		{"liveness", "[process]\nliveness-check-interval = often\n", false, `[process] liveness-check-interval = "often": not a number`},
		{"graphite port type", "[graphite]\nport = http\n", false, `[graphite] port = "http": not an integer`},
		{"graphite port range", "[graphite]\nport = 70000\n", false, `[graphite] port = "70000": must be between 1 and 65535`},
		{"graphite server empty", "[graphite]\nserver =\n", false, `[graphite] server = "": must not be empty`},
		{"graphite retries", "[graphite]\nretries = 1.5\n", false, `[graphite] retries = "1.5": not an integer`},
		{"graphite interval", "[graphite]\ninterval = x\n", false, `[graphite] interval = "x": not a number`},
		{"graphite backoff", "[graphite]\nbackoff = -2\n", false, `[graphite] backoff = "-2": must be a finite number > 0`},
		{"graphite backoff zero", "[graphite]\nbackoff = 0\n", false, `[graphite] backoff = "0": must be a finite number > 0`},
		{"graphite retries forever", "[graphite]\nretries = -1\n", false, `[graphite] retries = "-1": must be >= 0`},
		{"graphite backoff inf", "[graphite]\nbackoff = inf\n", false, `[graphite] backoff = "inf": must be a finite number > 0`},
		{"graphite delay", "[graphite]\ndelay = -1\n", false, `[graphite] delay = "-1": must be >= 0`},
		{"graphite connect-timeout", "[graphite]\nconnect-timeout = 0\n", false, `[graphite] connect-timeout = "0": must be > 0`},
		{"graphite write-timeout", "[graphite]\nwrite-timeout = nan\n", false, `[graphite] write-timeout = "nan": not a finite number of seconds`},
		{"graphite namespace", "[graphite]\nnamespace =\n", false, `[graphite] namespace = "": must not be empty`},
		{"graphite prefix-hostname", "[graphite]\nprefix-hostname = sure\n", false, `[graphite] prefix-hostname = "sure": not a boolean`},
		{"graphite fqdn", "[graphite]\nfqdn = 2\n", false, `[graphite] fqdn = "2": not a boolean`},
		{"graphite queue-size", "[graphite]\nqueue-size = -1\n", false, `[graphite] queue-size = "-1": must be >= 1`},
		{"group-namespace without groups", "[graphite]\ngroup-namespace = g\ngroup-namespace-double-writes = true\n", false,
			`[graphite] group-namespace = "g": needs at least one of the sections [frontend-groups], [backend-groups], [server-groups]`},
		{"group-namespace without double-writes", "[graphite]\ngroup-namespace = g\n[frontend-groups]\na = b\n", false,
			`[graphite]: group-namespace is set but group-namespace-double-writes is not`},
		{"double-writes not bool", "[graphite]\ngroup-namespace = g\ngroup-namespace-double-writes = twice\n[frontend-groups]\na = b\n", false,
			`[graphite] group-namespace-double-writes = "twice": not a boolean`},
		{"group-namespace empty", "[graphite]\ngroup-namespace =\ngroup-namespace-double-writes = 0\n[frontend-groups]\na = b\n", false,
			`[graphite] group-namespace = "": must not be empty`},
		{"groups without group-namespace", "[backend-groups]\nabc = x\n", false, `[backend-groups]: group section without group-namespace in [graphite]`},
		{"bad regex", "[graphite]\ngroup-namespace = g\ngroup-namespace-double-writes = 1\n[server-groups]\nbad = (?!x)\n", false,
			`[server-groups] bad = "(?!x)": bad regular expression`},
		{"bad regex parenthesis", "[graphite]\ngroup-namespace = g\ngroup-namespace-double-writes = 1\n[frontend-groups]\nbad = ^(fe\n", false,
			`[frontend-groups] bad = "^(fe": bad regular expression`},
		{"local-store dir empty", "[local-store]\ndir =\n", false, `[local-store] dir = "": must not be empty`},
		{"interpolation", "[process]\nsrc-dir = ${paths:nope}/x\n", false, `[process] src-dir = "${paths:nope}/x": reference ${paths:nope}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := load(t, tt.text)
			var err error
			if tt.pull {
				_, err = c.PullSettings()
			} else {
				_, err = c.ProcessSettings()
			}
			if err == nil {
				t.Fatalf("settings of %q: no error, want %q", tt.text, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("settings of %q: error = %q, want %q", tt.text, err, tt.want)
			}
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Errorf("settings of %q: error %v is not an *Error", tt.text, err)
			}
		})
	}
}

func TestValidationAllAtOnce(t *testing.T) {
	c := load(t, `[pull]
buffer-limit = 0
workers = x
servers = http://a
[process]
workers = -3
frontend-metrics = nope
[graphite]
port = 0
fqdn = perhaps
[frontend-groups]
a = (
`)
	_, err := c.PullSettings()
	for _, want := range []string{"[pull] buffer-limit", "[pull] workers", "[pull] servers"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("PullSettings() error = %v, want it to contain %q", err, want)
		}
	}
	_, err = c.ProcessSettings()
	wants := []string{"[process] workers", "[process] frontend-metrics", "[graphite] port", "[graphite] fqdn",
		"[frontend-groups]: group section without group-namespace", "[frontend-groups] a"}
	for _, want := range wants {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ProcessSettings() error = %v, want it to contain %q", err, want)
		}
	}
	if n := len(strings.Split(err.Error(), "\n")); n != len(wants) {
		t.Errorf("ProcessSettings() gave %d errors, want %d:\n%v", n, len(wants), err)
	}
}

func TestCheckReadWrite(t *testing.T) {
	dir := t.TempDir()
	if err := CheckReadWrite(dir); err != nil {
		t.Errorf("CheckReadWrite(%q) = %v, want nil", dir, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("CheckReadWrite(%q) left %d files", dir, len(entries))
	}
	missing := filepath.Join(dir, "missing")
	if err := CheckReadWrite(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("CheckReadWrite(%q) = %v, want an error naming it", missing, err)
	}
	if err := CheckReadWrite(""); err == nil {
		t.Errorf("CheckReadWrite(\"\") = nil, want an error")
	}
	// A named pipe: an error, not a wait for a writer.
	fifo := testenv.NamedPipe(t)
	err := testenv.ReturnsWithin(t, 30*time.Second, "CheckReadWrite(fifo)", func() error { return CheckReadWrite(fifo) })
	if err == nil || !strings.Contains(err.Error(), fifo) {
		t.Errorf("CheckReadWrite(%q) = %v, want an error naming it", fifo, err)
	}
	if os.Geteuid() == 0 {
		t.Skip("running as root: permission bits do not stop root, read-only case not tested")
	}
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := CheckReadWrite(ro); err == nil || !strings.Contains(err.Error(), ro) {
		t.Errorf("CheckReadWrite(%q) = %v, want an error naming it", ro, err)
	}
}

func TestStages(t *testing.T) {
	c, err := LoadSources(nil, Source{Name: "s.conf", Data: []byte(`[DEFAULT]
timeout = 5
[process]
stages = ratio  rate
[stage.ratio]
module = ratio.wasm
top = ${process:workers}
[stage.rate]
module = /abs/rate.wasm
`)})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := c.ProcessSettings()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ps.Process.Stages, ","); got != "ratio,rate" {
		t.Errorf("Stages = %q, want ratio,rate", got)
	}
	opts, err := c.StageOptions("ratio")
	if err != nil {
		t.Fatal(err)
	}
	if len(opts) != 2 || opts["module"] != "ratio.wasm" || opts["top"] != "4" {
		t.Errorf("StageOptions(ratio) = %v, want module and top only (no DEFAULT timeout), top interpolated", opts)
	}
	c, _ = LoadSources(nil, Source{Name: "s.conf", Data: []byte("[process]\nstages = missing\n")})
	_, err = c.ProcessSettings()
	if err == nil || !strings.Contains(err.Error(), `[process] stages = "missing"`) || !strings.Contains(err.Error(), "[stage.missing]") {
		t.Errorf("stage without section: error %v", err)
	}
}
