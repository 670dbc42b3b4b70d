package assemble

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/haproxystats-go/haproxystats/builtin"
	"github.com/haproxystats-go/haproxystats/internal/config"
)

// textColumns are the `show stat` columns that hold text.
var textColumns = map[string]bool{
	"status": true, "tracked": true, "check_status": true, "last_chk": true, "last_agt": true,
	"agent_status": true, "check_desc": true, "agent_desc": true, "addr": true, "cookie": true,
	"mode": true, "algo": true, "proto": true, "-": true,
}

// headerRows returns a `show stat` answer with the header line of an
// HAProxy version and rows of every kind, every numeric cell of column i
// holding i+1 (the module columns after `-` included): frontends OPEN and
// PAUSED, a listener, a backend and servers in the states HAProxy 2.6-3.5
// print (DRAIN (agent), MAINT (via px/srv), UP 1/3, no check).
func headerRows(header string) string {
	cols := strings.Split(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(header), "# "), ","), ",")
	row := func(px, sv string, typ int, status string) string {
		cells := make([]string, len(cols))
		for i, c := range cols {
			switch {
			case c == "pxname":
				cells[i] = px
			case c == "svname":
				cells[i] = sv
			case c == "type":
				cells[i] = strconv.Itoa(typ)
			case c == "status":
				cells[i] = status
			case c == "-":
				cells[i] = ""
			case c == "check_status":
				cells[i] = "L4OK"
			case c == "mode":
				cells[i] = "http"
			case c == "proto":
				cells[i] = "tcp"
			case c == "addr":
				cells[i] = "127.0.0.1:8080"
			case textColumns[c]:
				cells[i] = ""
			default:
				cells[i] = strconv.Itoa(i + 1)
			}
		}
		return strings.Join(cells, ",") + ",\n"
	}
	var b strings.Builder
	b.WriteString(strings.TrimSpace(header) + "\n")
	b.WriteString(row("fe", "FRONTEND", 0, "OPEN"))
	b.WriteString(row("fe", "sock-1", 3, "OPEN"))
	b.WriteString(row("fe_paused", "FRONTEND", 0, "PAUSED"))
	b.WriteString(row("be", "s1", 2, "DRAIN (agent)"))
	b.WriteString(row("be", "s2", 2, "MAINT (via be/s1)"))
	b.WriteString(row("be", "s3", 2, "UP 1/3"))
	b.WriteString(row("be", "s4", 2, "no check"))
	b.WriteString(row("be", "BACKEND", 1, "UP"))
	return b.String()
}

// present returns the names of list that are columns of cols.
func present(list, cols []string) []string {
	var out []string
	for _, n := range list {
		if slices.Contains(cols, n) {
			out = append(out, n)
		}
	}
	return out
}

// TestEveryHAProxyHeader runs the `show stat` header of every HAProxy
// version of testdata/haproxy-headers (2.6 to 3.5) through the built-in
// stages, two processes with the same rows, with custom metric lists naming
// every column the version has that the stages accept (the new counter
// columns among them, which the configuration must accept), without and
// with monotonic counters: every summed column is the sum over the
// processes, every averaged one the value, for every object, whatever its
// status string, and the module columns after `-` do not shift anything.
func TestEveryHAProxyHeader(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "haproxy-headers")
	headers, err := filepath.Glob(filepath.Join(dir, "*.stat"))
	if err != nil || len(headers) < 7 {
		t.Fatalf("header files in %s: %v, %v", dir, headers, err)
	}
	for _, file := range headers {
		version := strings.TrimSuffix(filepath.Base(file), ".stat")
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		header := strings.TrimSpace(string(data))
		cols := strings.Split(strings.TrimSuffix(strings.TrimPrefix(header, "# "), ","), ",")
		value := func(c string) float64 { return float64(slices.Index(cols, c) + 1) }
		fe := present(builtin.ValidFrontendMetrics(), cols)
		be := present(slices.Concat(builtin.BackendSummed, builtin.BackendExtra), cols)
		sv := present(slices.Concat(builtin.ServerSummed, builtin.ServerExtra), cols)
		for _, mono := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/monotonic=%v", version, mono), func(t *testing.T) {
				caseDir := t.TempDir()
				conf := fmt.Sprintf("[process]\nfrontend-metrics = %s\nbackend-metrics = %s\nserver-metrics = %s\naggr-server-metrics = true\nmonotonic-counters = %v\n[graphite]\nnamespace = lb\nprefix-hostname = false\n",
					strings.Join(fe, " "), strings.Join(be, " "), strings.Join(sv, " "), mono)
				confFile := filepath.Join(caseDir, "haproxystats.conf")
				if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
					t.Fatal(err)
				}
				snap := filepath.Join(caseDir, "1700000000")
				if err := os.MkdirAll(snap, 0o755); err != nil {
					t.Fatal(err)
				}
				rows := headerRows(header)
				for _, p := range []string{"a.sock", "b.sock"} {
					if err := os.WriteFile(filepath.Join(snap, p+"_stat"), []byte(rows), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				built, err := ForCase(caseDir, confFile)
				if err != nil {
					t.Fatalf("configuration naming the columns of HAProxy %s refused: %v", version, err)
				}
				defer built.Close()
				if (built.Counters != nil) != mono {
					t.Fatalf("counters store %v with monotonic-counters = %v", built.Counters, mono)
				}
				var out bytes.Buffer
				res, err := built.Pipeline.ProcessDir(context.Background(), snap, &out)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Problems) > 0 {
					t.Errorf("problems: %v", res.Problems)
				}
				got := map[string]float64{}
				for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
					f := strings.Fields(l)
					v, err := strconv.ParseFloat(f[1], 64)
					if len(f) != 3 || err != nil {
						t.Fatalf("line %q", l)
					}
					got[f[0]] = v
				}
				check := func(path string, want float64) {
					t.Helper()
					if v, ok := got[path]; !ok || v != want {
						t.Errorf("%s = %v (sent %v), want %v", path, v, ok, want)
					}
				}
				for _, c := range fe {
					check("lb.haproxy.frontend.fe."+c, 2*value(c))
					check("lb.haproxy.frontend.fe_paused."+c, 2*value(c))
				}
				for _, c := range be {
					check("lb.haproxy.backend.be."+c, 2*value(c))
				}
				for _, c := range present(slices.Concat(builtin.BackendAveraged, builtin.BackendTimes), cols) {
					check("lb.haproxy.backend.be."+c, value(c))
				}
				for _, s := range []string{"s1", "s2", "s3", "s4"} {
					for _, c := range sv {
						check("lb.haproxy.backend.be.server."+s+"."+c, 2*value(c))
					}
					for _, c := range present(slices.Concat(builtin.ServerAveraged, builtin.ServerTimes), cols) {
						check("lb.haproxy.backend.be.server."+s+"."+c, value(c))
					}
					for _, c := range present(builtin.ServerSummed, cols) {
						check("lb.haproxy.server."+s+"."+c, 2*value(c))
					}
				}
				check("lb.haproxy.backend.be.TotalServers", 4)
				// Listener rows are no object: nothing under their name.
				for path := range got {
					if strings.Contains(path, "sock-1") {
						t.Errorf("listener row sent: %s", path)
					}
				}
			})
		}
	}
}

// TestNewColumnsInCustomLists checks that the configuration accepts the
// counter columns of HAProxy 2.6-3.5 in the custom lists, and refuses a
// column no list accepts, naming it.
func TestNewColumnsInCustomLists(t *testing.T) {
	dir := t.TempDir()
	load := func(conf string) error {
		file := filepath.Join(dir, "haproxystats.conf")
		if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.LoadFiles(nil, file)
		if err != nil {
			return err
		}
		_, err = cfg.ProcessSettings()
		return err
	}
	if err := load("[process]\nfrontend-metrics = stot h1req h2req h3req req_other h1sess reqbin cache_hint_hits sess_other\nbackend-metrics = stot connect reuse reqbin resbout\nserver-metrics = stot connect reuse idle_conn_cur priv_idle_cur req_tot\n"); err != nil {
		t.Errorf("new columns refused: %v", err)
	}
	if err := load("[process]\nserver-metrics = stot agg_server_status\n"); err == nil || !strings.Contains(err.Error(), "agg_server_status") {
		t.Errorf("server-metrics = agg_server_status: %v, want an error naming it", err)
	}
}
