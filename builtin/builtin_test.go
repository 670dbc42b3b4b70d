package builtin

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/haproxystats-go/haproxystats/engine"
)

// run processes in-memory files with the built-in stages and returns the
// lines as path -> value, failing on a duplicate path.
func run(t *testing.T, paths *engine.Paths, opts Options, files ...engine.File) map[string]string {
	t.Helper()
	if paths == nil {
		paths = &engine.Paths{Prefix: "lb.haproxy"}
	}
	p, err := engine.NewPipeline(engine.Config{Paths: paths}, Stages(opts)...)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := p.ProcessFiles(context.Background(), "100", files, &out); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		f := strings.Split(l, " ")
		if len(f) != 3 || f[2] != "100" {
			t.Fatalf("malformed line %q", l)
		}
		if _, dup := got[f[0]]; dup {
			t.Fatalf("path %s sent twice", f[0])
		}
		got[f[0]] = f[1]
	}
	return got
}

func info(name string, kv ...any) engine.File {
	var b strings.Builder
	b.WriteString("Name: HAProxy\n")
	for i := 0; i < len(kv); i += 2 {
		fmt.Fprintf(&b, "%s: %v\n", kv[i], kv[i+1])
	}
	return engine.File{Name: name + "_info", Data: []byte(b.String())}
}

func idle(procs ...int) []engine.File {
	var files []engine.File
	for i, v := range procs {
		files = append(files, info(fmt.Sprintf("admin%d.sock", i+1), "Process_num", i+1, "Idle_pct", v, "Uptime_sec", 10*(i+1)))
	}
	return files
}

func TestCPUPercentiles(t *testing.T) {
	for _, tc := range []struct {
		idle []int
		want [5]string // 25 50 75 95 99
		std  float64
	}{
		// cpu 10 20 30: positions 0.5 -> 0 (tie to even), 1, 1.5 -> 2, 1.9 -> 2, 1.98 -> 2.
		{[]int{90, 80, 70}, [5]string{"10", "20", "30", "30", "30"}, 10},
		// cpu 10 20 30 40: positions 0.75 -> 1, 1.5 -> 2 (tie to even), 2.25 -> 2, 2.85 -> 3, 2.97 -> 3.
		{[]int{60, 90, 80, 70}, [5]string{"20", "30", "30", "40", "40"}, math.Sqrt(500.0 / 3)},
		// Two processes: 0.25 -> 0, 0.5 -> 0 (tie to even), 0.75 -> 1.
		{[]int{100, 0}, [5]string{"0", "0", "100", "100", "100"}, math.Sqrt(5000)},
	} {
		got := run(t, nil, Options{}, idle(tc.idle...)...)
		for i, q := range []string{"25", "50", "75", "95", "99"} {
			if v := got["lb.haproxy.daemon."+q+"PercentileCpuUsagePct"]; v != tc.want[i] {
				t.Errorf("idle %v: %sPercentileCpuUsagePct = %s, want %s", tc.idle, q, v, tc.want[i])
			}
		}
		std, _ := strconv.ParseFloat(got["lb.haproxy.daemon.StdCpuUsagePct"], 64)
		if math.Abs(std-tc.std) > 1e-9 {
			t.Errorf("idle %v: StdCpuUsagePct = %v, want %v", tc.idle, std, tc.std)
		}
	}
	// One process: no percentiles, no std.
	got := run(t, nil, Options{}, idle(50)...)
	for p := range got {
		if strings.Contains(p, "CpuUsagePct") {
			t.Errorf("one process sent %s", p)
		}
	}
}

func TestDaemonAggregates(t *testing.T) {
	files := []engine.File{
		info("a", "Process_num", 1, "CurrConns", 1, "Maxconn", 3, "ConnRate", 0, "ConnRateLimit", 0, "Idle_pct", 90, "Uptime_sec", 10),
		info("b", "Process_num", 2, "CurrConns", 0, "Maxconn", 3, "ConnRate", 5, "ConnRateLimit", 0, "Idle_pct", 95, "Uptime_sec", 15),
	}
	got := run(t, nil, Options{CalculatePercentages: true, PerProcessMetrics: true}, files...)
	want := map[string]string{
		"lb.haproxy.daemon.CurrConns":      "1",
		"lb.haproxy.daemon.Maxconn":        "6",
		"lb.haproxy.daemon.Idle_pct":       "92.5",
		"lb.haproxy.daemon.Uptime_sec":     "12.5",
		"lb.haproxy.daemon.ConnPercentage": "16", // int(100*1/6)
		// limit sum 0: 0, not a division by zero.
		"lb.haproxy.daemon.ConnRatePercentage":           "0",
		"lb.haproxy.daemon.process.1.ConnPercentage":     "33", // int(100*1/3)
		"lb.haproxy.daemon.process.2.ConnPercentage":     "0",
		"lb.haproxy.daemon.process.2.ConnRatePercentage": "0",
		"lb.haproxy.daemon.process.1.CpuUsagePct":        "10",
		"lb.haproxy.daemon.process.2.Idle_pct":           "95",
		"lb.haproxy.daemon.process.2.Uptime_sec":         "15",
		"lb.haproxy.daemon.process.2.CurrConns":          "0",
		// 4 sums + 2 averages + 6 cpu + 2 percentages + 2 x (4 sums + 3 + 2 percentages), plus 1.
		"lb.haproxy.haproxystats.MetricsHAProxy": "33",
	}
	for p, v := range want {
		if got[p] != v {
			t.Errorf("%s = %q, want %q", p, got[p], v)
		}
	}
	// Keys that no file carries (SslConnPercentage's) are skipped.
	for p := range got {
		if strings.Contains(p, "Ssl") {
			t.Errorf("sent %s although no file has Ssl keys", p)
		}
	}
}

func TestProcessLabels(t *testing.T) {
	// Several HAProxy 2.x instances all report Process_num 1: the socket
	// name (dots replaced) names the process instead.
	files := []engine.File{
		info("admin.a.sock", "Process_num", 1, "Idle_pct", 90, "Uptime_sec", 1),
		info("admin.b.sock", "Process_num", 1, "Idle_pct", 80, "Uptime_sec", 1),
	}
	got := run(t, nil, Options{PerProcessMetrics: true}, files...)
	for _, p := range []string{"lb.haproxy.daemon.process.admin_a_sock.Idle_pct", "lb.haproxy.daemon.process.admin_b_sock.CpuUsagePct"} {
		if _, ok := got[p]; !ok {
			t.Errorf("%s not sent", p)
		}
	}
}

func TestDaemonDifferentKeys(t *testing.T) {
	got := run(t, nil, Options{PerProcessMetrics: true},
		info("a", "Idle_pct", 90, "CurrConns", 1), info("b", "Idle_pct", 80))
	if len(got) != 3 || got["lb.haproxy.haproxystats.WallClockTimeHAProxy"] == "" {
		t.Errorf("different key sets: got %v, want only the three wall-clock lines", got)
	}
}

const csv = "# pxname,svname,qcur,scur,lbtot,rtime,weight,act,hrsp_5xx,type,\n"

func statFile(name string, rows ...string) engine.File {
	return engine.File{Name: name + "_stat", Data: []byte(csv + strings.Join(rows, "\n") + "\n")}
}

func TestServersAndBackends(t *testing.T) {
	files := []engine.File{
		statFile("a",
			"fe.www,FRONTEND,,3,,,,,1,0,",
			"be.api,web.01,0,1,10,4,1,1,2,2,",
			"be.api,web.02,0,2,0,9,3,1,0,2,",
			"be.api,BACKEND,0,3,10,4,4,2,2,1,",
			"be_api,web.01,1,1,1,6,1,1,0,2,"), // merges with be.api after dot replacement
		statFile("b",
			"be.api,web.01,0,5,5,8,1,1,1,2,",
			"be.api,BACKEND,0,5,5,8,1,1,1,1,"),
	}
	got := run(t, nil, Options{AggrServerMetrics: true}, files...)
	want := map[string]string{
		"lb.haproxy.frontend.fe_www.scur":                  "3",
		"lb.haproxy.backend.be_api.scur":                   "8",
		"lb.haproxy.backend.be_api.weight":                 "2.5", // averaged over rows
		"lb.haproxy.backend.be_api.rtime":                  "6",   // lbtot > 0 rows only
		"lb.haproxy.backend.be_api.TotalServers":           "2",
		"lb.haproxy.backend.be_api.server.web_01.scur":     "7",
		"lb.haproxy.backend.be_api.server.web_01.rtime":    "6", // (4+6+8)/3
		"lb.haproxy.backend.be_api.server.web_02.weight":   "3",
		"lb.haproxy.server.web_01.hrsp_5xx":                "3",
		"lb.haproxy.haproxystats.MetricsServer":            "0", // checked below
		"lb.haproxy.backend.be_api.server.web_01.hrsp_5xx": "3",
	}
	delete(want, "lb.haproxy.haproxystats.MetricsServer")
	for p, v := range want {
		if got[p] != v {
			t.Errorf("%s = %q, want %q", p, got[p], v)
		}
	}
	// web.02 was never selected (lbtot 0): its times are NaN, not sent.
	if v, ok := got["lb.haproxy.backend.be_api.server.web_02.rtime"]; ok {
		t.Errorf("web_02.rtime = %s, want no line (NaN)", v)
	}
	// MetricsServer counts NaN values too: 2 servers x 26 summed... only the
	// columns this CSV has: qcur scur lbtot hrsp_5xx summed, weight
	// averaged, rtime timed = 6 per server, + TotalServers, + 2 aggregated
	// servers x 6, + 1.
	if got["lb.haproxy.haproxystats.MetricsServer"] != "26" {
		t.Errorf("MetricsServer = %s, want 26", got["lb.haproxy.haproxystats.MetricsServer"])
	}
}

func TestCustomListOverlap(t *testing.T) {
	got := run(t, nil, Options{BackendMetrics: []string{"scur", "weight", "rtime"}}, statFile("a",
		"be,s1,0,1,10,4,1,1,2,2,",
		"be,BACKEND,0,3,10,4,4,2,2,1,"))
	for p, v := range map[string]string{
		"lb.haproxy.backend.be.weight_x": "4", "lb.haproxy.backend.be.weight_y": "4",
		"lb.haproxy.backend.be.rtime_x": "4", "lb.haproxy.backend.be.rtime_y": "4",
		"lb.haproxy.backend.be.scur": "3", "lb.haproxy.backend.be.act": "2",
	} {
		if got[p] != v {
			t.Errorf("%s = %q, want %q", p, got[p], v)
		}
	}
	if _, ok := got["lb.haproxy.backend.be.weight"]; ok {
		t.Error("plain weight sent next to weight_x/weight_y")
	}
}

func TestExclusions(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "exclude.txt")
	if err := os.WriteFile(file, []byte("# comment\n\n  be.api  \nunknown\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	names, err := NewExclusions(file, os.ReadFile, nil).Names()
	if err != nil || strings.Join(names, ",") != "be.api,unknown" {
		t.Fatalf("Names = %v, %v", names, err)
	}
	if _, err := NewExclusions(filepath.Join(dir, "missing"), os.ReadFile, nil).Names(); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Names(missing) error %v does not name the file", err)
	}
	got := run(t, nil, Options{ExcludeBackends: StaticExclusions(names...), ExcludeFrontends: StaticExclusions("fe.www"), AggrServerMetrics: true}, statFile("a",
		"fe.www,FRONTEND,,3,,,,,1,0,",
		"be.api,s1,0,1,10,4,1,1,2,2,",
		"be.api,BACKEND,0,3,10,4,4,2,2,1,",
		"be2,s1,0,1,10,4,1,1,2,2,",
		"be2,BACKEND,0,3,10,4,4,2,2,1,"))
	for p := range got {
		if strings.Contains(p, "be_api") || strings.Contains(p, "fe_www") {
			t.Errorf("excluded object sent: %s", p)
		}
	}
	// The aggregated server ignores exclusions: both backends' s1 rows.
	if got["lb.haproxy.server.s1.scur"] != "2" {
		t.Errorf("aggregated s1.scur = %q, want 2", got["lb.haproxy.server.s1.scur"])
	}
	if got["lb.haproxy.haproxystats.MetricsFrontend"] != "1" {
		t.Errorf("MetricsFrontend = %q, want 1 (excluded frontends not counted)", got["lb.haproxy.haproxystats.MetricsFrontend"])
	}
}

func TestGroups(t *testing.T) {
	paths := func(double bool) *engine.Paths {
		return &engine.Paths{
			Prefix: "lb.haproxy", GroupNamespace: "team", DoubleWrites: double,
			FrontendGroups: []engine.Group{{Name: "web", Pattern: regexp.MustCompile("^fe_")}},
			BackendGroups: []engine.Group{
				{Name: "first", Pattern: regexp.MustCompile("api")},
				{Name: "second", Pattern: regexp.MustCompile("(?i)BE_")},
			},
			ServerGroups: []engine.Group{{Name: "s", Pattern: regexp.MustCompile("^s1$")}},
		}
	}
	files := statFile("a",
		"fe.www,FRONTEND,,3,,,,,1,0,",
		"be.api,s1,0,1,10,4,1,1,2,2,",
		"be.api,BACKEND,0,3,10,4,4,2,2,1,",
		"other,s2,0,1,10,4,1,1,2,2,",
		"other,BACKEND,0,3,10,4,4,2,2,1,")
	got := run(t, paths(false), Options{AggrServerMetrics: true}, files)
	for _, p := range []string{
		"lb.haproxy.team.web.frontend.fe_www.scur",
		"lb.haproxy.team.first.backend.be_api.scur", // first matching group wins
		"lb.haproxy.team.first.backend.be_api.server.s1.scur",
		"lb.haproxy.team.first.backend.be_api.TotalServers",
		"lb.haproxy.team.s.server.s1.scur",
		"lb.haproxy.backend.other.scur", // no group: plain path
		"lb.haproxy.server.s2.scur",
		"lb.haproxy.haproxystats.MetricsBackend", // never grouped
	} {
		if _, ok := got[p]; !ok {
			t.Errorf("single writes: %s not sent", p)
		}
	}
	if _, ok := got["lb.haproxy.backend.be_api.scur"]; ok {
		t.Error("single writes: grouped backend also sent under the plain path")
	}
	double := run(t, paths(true), Options{AggrServerMetrics: true}, files)
	for _, p := range []string{"lb.haproxy.backend.be_api.scur", "lb.haproxy.team.first.backend.be_api.scur", "lb.haproxy.server.s1.scur", "lb.haproxy.team.s.server.s1.scur"} {
		if _, ok := double[p]; !ok {
			t.Errorf("double writes: %s not sent", p)
		}
	}
	if double["lb.haproxy.haproxystats.MetricsBackend"] != got["lb.haproxy.haproxystats.MetricsBackend"] {
		t.Error("double writes are counted in MetricsBackend")
	}
}

func TestAppendValue(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{12, "12"}, {0, "0"}, {-3, "-3"}, {0.5, "0.5"}, {1.0 / 3, "0.3333333333333333"}, {19.070046320517072, "19.070046320517072"}, {1e20, "100000000000000000000"}, {2.5e-7, "0.00000025"}} {
		if got := string(engine.AppendValue(nil, tc.v)); got != tc.want {
			t.Errorf("AppendValue(%v) = %s, want %s", tc.v, got, tc.want)
		}
	}
}

func TestValidLists(t *testing.T) {
	for name, list := range map[string][]string{"frontend": ValidFrontendMetrics(), "backend": ValidBackendMetrics(), "server": ValidServerMetrics()} {
		s := append([]string(nil), list...)
		sort.Strings(s)
		for i := 1; i < len(s); i++ {
			if s[i] == s[i-1] {
				t.Errorf("%s list has %s twice", name, s[i])
			}
		}
	}
	if n := len(ValidBackendMetrics()); n != len(BackendSummed)+7+len(BackendExtra) {
		t.Errorf("backend valid names = %d", n)
	}
}

func TestDaemonSumsDoNotWrap(t *testing.T) {
	// Two processes at the top of int64: the sum is about 1.8e19 (values
	// are float64, printed in the shortest form that parses back), not -2.
	files := []engine.File{
		info("a", "Process_num", 1, "CurrConns", "9223372036854775807", "Idle_pct", 90),
		info("b", "Process_num", 2, "CurrConns", "9223372036854775807", "Idle_pct", 90),
	}
	got := run(t, nil, Options{}, files...)
	v, err := strconv.ParseFloat(got["lb.haproxy.daemon.CurrConns"], 64)
	if err != nil || v != 2*9223372036854775807.0 {
		t.Errorf("CurrConns = %s, want 18446744073709551614 as a float64 (%v)", got["lb.haproxy.daemon.CurrConns"], 2*9223372036854775807.0)
	}
}

func TestDaemonDroppedCell(t *testing.T) {
	// One unparsable value drops only that cell: the daemon metrics are
	// sent, summed and averaged over the other processes.
	files := []engine.File{
		info("a", "Process_num", 1, "CurrConns", 5, "Idle_pct", 90, "Uptime_sec", 10),
		info("b", "Process_num", 2, "CurrConns", "lots", "Idle_pct", 70, "Uptime_sec", 20),
	}
	got := run(t, nil, Options{PerProcessMetrics: true}, files...)
	for p, v := range map[string]string{
		"lb.haproxy.daemon.CurrConns":            "5",
		"lb.haproxy.daemon.Idle_pct":             "80",
		"lb.haproxy.daemon.process.1.CurrConns":  "5",
		"lb.haproxy.daemon.process.2.Idle_pct":   "70",
		"lb.haproxy.haproxystats.MetricsHAProxy": "",
	} {
		if v == "" {
			if got[p] == "" {
				t.Errorf("%s not sent", p)
			}
			continue
		}
		if got[p] != v {
			t.Errorf("%s = %q, want %q", p, got[p], v)
		}
	}
	if _, ok := got["lb.haproxy.daemon.process.2.CurrConns"]; ok {
		t.Error("the dropped cell was sent for process 2")
	}
}

// The exclusion file is read once per snapshot, whatever the number of
// stages that ask (backends and servers), and again for the next one.
func TestExclusionsReadOncePerSnapshot(t *testing.T) {
	reads := 0
	content := "be1\n"
	e := NewExclusions("excl", func(string) ([]byte, error) {
		reads++
		return []byte(content), nil
	}, nil)
	for _, snap := range []string{"100", "100", "101", "101"} {
		if got := e.Current(snap); !got["be1"] || len(got) != 1 {
			t.Fatalf("Current(%s) = %v, want be1", snap, got)
		}
	}
	if reads != 2 {
		t.Errorf("%d reads for 2 snapshots asked twice each, want 2", reads)
	}
	content = "be2\n"
	if got := e.Current("102"); !got["be2"] || got["be1"] {
		t.Errorf("Current(102) after the file changed = %v, want be2 alone", got)
	}
}

// The servers' sums do not depend on the order in which the processes
// list them: the slot of a file's n-th row is a hint, checked against the
// row's key, whether it comes from the file before (the first snapshot)
// or from the last snapshot, and whatever the files' names and order.
func TestServersInAnyOrder(t *testing.T) {
	p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "lb"}}, Stages(Options{})...)
	if err != nil {
		t.Fatal(err)
	}
	row := func(sv string, scur int) string { return fmt.Sprintf("be,%s,0,%d,0,0,0,0,2,2,", sv, scur) }
	snapshots := [][]engine.File{
		{statFile("a", row("s1", 1), row("s2", 2), row("s3", 3)), statFile("b", row("s3", 30), row("s1", 10), row("s4", 40))},
		{statFile("a", row("s3", 300), row("s1", 100), row("s4", 400)), statFile("b", row("s1", 1000), row("s2", 2000), row("s3", 3000))},
		{statFile("c", row("s2", 5), row("s1", 7)), statFile("a", row("s1", 70), row("s2", 50), row("s3", 90))},
	}
	want := []map[string]string{
		{"s1": "11", "s2": "2", "s3": "33", "s4": "40"},
		{"s1": "1100", "s2": "2000", "s3": "3300", "s4": "400"},
		{"s1": "77", "s2": "55", "s3": "90"},
	}
	for i, files := range snapshots {
		var out bytes.Buffer
		if _, err := p.ProcessFiles(context.Background(), strconv.Itoa(100+i), files, &out); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, l := range strings.Split(out.String(), "\n") {
			if f := strings.Fields(l); len(f) == 3 && strings.HasPrefix(f[0], "lb.backend.be.server.") && strings.HasSuffix(f[0], ".scur") {
				got[strings.TrimSuffix(strings.TrimPrefix(f[0], "lb.backend.be.server."), ".scur")] = f[1]
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want[i]) {
			t.Errorf("snapshot %d: server scur %v, want %v", i, got, want[i])
		}
	}
}

// TestNewFoldSizedFromLastSnapshot: once a Fold of a Folder finished a
// snapshot, the Folder's new Folds (a new work value, in a backlog) have
// room for that snapshot's objects at once rather than growing their
// slots a row at a time, and a pipeline whose first Folds are made so
// writes the same lines.
func TestNewFoldSizedFromLastSnapshot(t *testing.T) {
	var rows []string
	for b := range 3 {
		for s := range 4 {
			rows = append(rows, fmt.Sprintf("be%d,srv%d,0,%d,1,%d,0,1,1,2,", b, s, b+s, 10*s))
		}
		rows = append(rows, fmt.Sprintf("be%d,BACKEND,0,1,1,1,0,1,1,1,", b))
	}
	rows = append(rows, "fe,FRONTEND,,3,,,,,1,0,")
	files := []engine.File{statFile("a", rows...), statFile("b", rows...)}
	opts := Options{AggrServerMetrics: true}
	sv, fe, be := newServers(opts), newFrontends(opts), newBackends(opts)
	before := sv.NewFold().(*serverFold)
	lines := func() string {
		p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "lb"}},
			engine.StageSpec{Name: "frontends", Folder: fe},
			engine.StageSpec{Name: "backends", Folder: be},
			engine.StageSpec{Name: "servers", Folder: sv})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := p.ProcessFiles(context.Background(), "100", files, &out); err != nil {
			t.Fatal(err)
		}
		// Sorted (the stages' blocks come in any order), without the
		// times, which differ.
		var kept []string
		for _, l := range strings.SplitAfter(out.String(), "\n") {
			if !strings.Contains(l, "WallClockTime") {
				kept = append(kept, l)
			}
		}
		sort.Strings(kept)
		return strings.Join(kept, "")
	}
	first := lines()
	after := sv.NewFold().(*serverFold)
	for _, c := range []struct {
		name          string
		before, after *aggregator
		objects       int
	}{
		{"servers", before.agg, after.agg, 12},
		{"aggregated servers", before.aggr, after.aggr, 4},
		{"backends", newBackends(opts).NewFold().(*proxyFold).agg, be.NewFold().(*proxyFold).agg, 3},
		{"frontends", newFrontends(opts).NewFold().(*proxyFold).agg, fe.NewFold().(*proxyFold).agg, 1},
	} {
		if n := cap(c.before.rows); n != 0 {
			t.Errorf("%s: a Fold made before any snapshot has room for %d slots, want 0", c.name, n)
		}
		a := c.after
		for what, n := range map[string]int{"rows": cap(a.rows), "served": cap(a.served), "names": cap(a.names), "stamp": cap(a.stamp), "order": cap(a.order), "sums[0]": cap(a.sums[0]), fmt.Sprintf("sums[%d]", len(a.sums)-1): cap(a.sums[len(a.sums)-1])} {
			if n < c.objects {
				t.Errorf("%s: a Fold made after a snapshot of %d objects has room for %d in %s", c.name, c.objects, n, what)
			}
		}
	}
	if second := lines(); second != first {
		t.Errorf("Folds sized from the last snapshot write\n%s\nwant\n%s", second, first)
	}
}

func TestTotalServers(t *testing.T) {
	// A backend's servers counted wherever its rows are (HAProxy lists them
	// together; another order must count the same), backends in
	// first-seen order, and nothing left from the snapshot before.
	p, err := engine.NewPipeline(engine.Config{Paths: &engine.Paths{Prefix: "lb"}}, Stages(Options{})...)
	if err != nil {
		t.Fatal(err)
	}
	row := func(be, sv string) string { return be + "," + sv + ",0,1,0,0,0,0,2,2," }
	for i, c := range []struct {
		files []engine.File
		want  []string
	}{
		{[]engine.File{statFile("a", row("be1", "s1"), row("be2", "s1"), row("be1", "s2"), row("be2", "s2"), row("be1", "s3")),
			statFile("b", row("be3", "s1"), row("be1", "s4"), row("be1", "s1"))},
			[]string{"be1 4", "be2 2", "be3 1"}},
		{[]engine.File{statFile("a", row("be2", "s1"), row("be2", "s9"))}, []string{"be2 2"}},
	} {
		var out bytes.Buffer
		if _, err := p.ProcessFiles(context.Background(), strconv.Itoa(100+i), c.files, &out); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range strings.Split(out.String(), "\n") {
			if f := strings.Fields(l); len(f) == 3 && strings.HasSuffix(f[0], ".TotalServers") {
				got = append(got, strings.TrimSuffix(strings.TrimPrefix(f[0], "lb.backend."), ".TotalServers")+" "+f[1])
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("snapshot %d: TotalServers %q, want %q", i, got, c.want)
		}
	}
}
