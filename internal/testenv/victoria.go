package testenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"go/build"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// VictoriaMetricsModule is the command the tests expect to find installed,
// as `go install` takes it.
const VictoriaMetricsModule = "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@v1.130.0"

// Bounds used by the VictoriaMetrics helpers.
const (
	// VictoriaMetricsStartTimeout bounds the wait for /health to answer OK
	// and the Graphite port to accept connections.
	VictoriaMetricsStartTimeout = 30 * time.Second
	// VictoriaMetricsStopTimeout is how long Stop waits after SIGTERM
	// before SIGKILL.
	VictoriaMetricsStopTimeout = 10 * time.Second
	// victoriaHTTPTimeout bounds one HTTP request to it.
	victoriaHTTPTimeout = 10 * time.Second
)

// VictoriaMetricsBinary returns the path of the victoria-metrics executable
// (in PATH, in $GOBIN or in $GOPATH/bin, where `go install` puts it), or
// skips the test with a loud message when it is not installed (fails it
// under CI; see Missing).
func VictoriaMetricsBinary(t testing.TB) string {
	t.Helper()
	if path, err := exec.LookPath("victoria-metrics"); err == nil {
		return path
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	for _, p := range filepath.SplitList(build.Default.GOPATH) {
		dirs = append(dirs, filepath.Join(p, "bin"))
	}
	for _, d := range dirs {
		path := filepath.Join(d, "victoria-metrics")
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return path
		}
	}
	Missing(t, fmt.Sprintf("SKIPPING INTEGRATION TEST: victoria-metrics binary not found in PATH nor in %s; "+
		"install it with `go install %s` (or run .ci/install-deps) to run this test",
		strings.Join(dirs, ", "), VictoriaMetricsModule))
	return ""
}

// VictoriaMetrics is a single-node VictoriaMetrics started by
// StartVictoriaMetrics: in the foreground, under the test's own user, its
// HTTP API and its Graphite plaintext listener on loopback, its data in a
// temporary directory.
type VictoriaMetrics struct {
	t        testing.TB
	dir      string
	httpPort int
	gPort    int

	mu sync.Mutex
	p  *process
}

// StartVictoriaMetrics starts victoria-metrics with its storage in a new
// temporary directory, HTTP and Graphite on 127.0.0.1, and the search
// settings that make data visible as soon as it is ingested
// (-search.latencyOffset=0, -search.disableCache). It waits (at most
// VictoriaMetricsStartTimeout) until /health answers and the Graphite port
// accepts connections. The process is stopped by PID when the test ends. It
// skips the test when the binary is not installed.
func StartVictoriaMetrics(t testing.TB) *VictoriaMetrics {
	t.Helper()
	bin := VictoriaMetricsBinary(t)
	v := &VictoriaMetrics{t: t, dir: t.TempDir()}
	t.Cleanup(v.Stop)
	if err := startOnFreePorts(t, "victoria-metrics", func() error { return v.start(bin) }); err != nil {
		t.Fatalf("victoria-metrics did not start: %v; output:\n%s", err, v.Output())
	}
	return v
}

func (v *VictoriaMetrics) start(bin string) error {
	v.t.Helper()
	v.httpPort, v.gPort = FreePort(v.t), FreePort(v.t)
	for v.gPort == v.httpPort {
		v.gPort = FreePort(v.t)
	}
	p, err := startProcess(v.dir, bin,
		"-httpListenAddr", net.JoinHostPort("127.0.0.1", strconv.Itoa(v.httpPort)),
		"-graphiteListenAddr", net.JoinHostPort("127.0.0.1", strconv.Itoa(v.gPort)),
		"-storageDataPath", filepath.Join(v.dir, "data"),
		"-retentionPeriod", "100y",
		"-search.latencyOffset", "0s",
		"-search.disableCache",
		"-loggerLevel", "WARN",
		"-memory.allowedPercent", "10",
	)
	if err != nil {
		v.t.Fatal(err)
	}
	v.mu.Lock()
	v.p = p
	v.mu.Unlock()

	client := &http.Client{Timeout: time.Second}
	gaddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(v.gPort))
	err = p.waitReady(VictoriaMetricsStartTimeout, func() error {
		resp, err := client.Get(v.URL() + "/health")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/health: %s %q", resp.Status, body)
		}
		c, err := net.DialTimeout("tcp", gaddr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		v.Stop()
		return err
	}
	return nil
}

// URL is the base URL of its HTTP API, http://127.0.0.1:PORT.
func (v *VictoriaMetrics) URL() string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(v.httpPort))
}

// GraphitePort is the loopback TCP port of its Graphite plaintext listener.
func (v *VictoriaMetrics) GraphitePort() int { return v.gPort }

// Output returns what the current process wrote on stdout and stderr.
func (v *VictoriaMetrics) Output() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.p.output()
}

// Stop stops the process by PID: SIGTERM, then SIGKILL if it has not
// exited within VictoriaMetricsStopTimeout. It is safe to call more than
// once and is called at cleanup.
func (v *VictoriaMetrics) Stop() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.p != nil {
		v.p.stop(v.t, VictoriaMetricsStopTimeout)
	}
}

// ForceFlush makes the samples ingested so far visible to searches at once
// (/internal/force_flush); without it new series take several seconds to
// show.
func (v *VictoriaMetrics) ForceFlush() error {
	client := &http.Client{Timeout: victoriaHTTPTimeout}
	resp, err := client.Get(v.URL() + "/internal/force_flush")
	if err != nil {
		return fmt.Errorf("force flush: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("force flush: %s", resp.Status)
	}
	return nil
}

// Series is one time series read back through /api/v1/export.
type Series struct {
	// Name is the metric name: the Graphite path.
	Name string
	// Values and Timestamps (milliseconds since the epoch) are parallel.
	Values     []float64
	Timestamps []int64
}

// Export reads every sample of the series that match the series selector
// match (e.g. `{__name__=~"a\\.b\\..*"}`) with timestamps in [start, end]
// through /api/v1/export, one request bounded in time. A value that is not
// a JSON number (VictoriaMetrics may write NaN or Inf as bare words or
// null) reads as NaN or ±Inf.
func (v *VictoriaMetrics) Export(match string, start, end time.Time) ([]Series, error) {
	q := url.Values{}
	q.Set("match[]", match)
	q.Set("start", strconv.FormatInt(start.Unix(), 10))
	q.Set("end", strconv.FormatInt(end.Unix(), 10))
	client := &http.Client{Timeout: victoriaHTTPTimeout}
	resp, err := client.Get(v.URL() + "/api/v1/export?" + q.Encode())
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", match, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("export %s: %s %q", match, resp.Status, body)
	}
	var out []Series
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var raw struct {
			Metric     map[string]string `json:"metric"`
			Values     []json.RawMessage `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		// Bare NaN/Inf words are not JSON: quote them before decoding.
		fixed := nonJSONNumber.Replace(string(line))
		if err := json.Unmarshal([]byte(fixed), &raw); err != nil {
			return nil, fmt.Errorf("export %s: decode %q: %w", match, line, err)
		}
		s := Series{Name: raw.Metric["__name__"], Timestamps: raw.Timestamps}
		for _, rv := range raw.Values {
			s.Values = append(s.Values, parseExportValue(rv))
		}
		if len(s.Values) != len(s.Timestamps) {
			return nil, fmt.Errorf("export %s: series %s has %d values and %d timestamps",
				match, s.Name, len(s.Values), len(s.Timestamps))
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("export %s: read: %w", match, err)
	}
	return out, nil
}

var nonJSONNumber = strings.NewReplacer(",NaN", `,"NaN"`, "[NaN", `["NaN"`,
	",Inf", `,"Inf"`, "[Inf", `["Inf"`, ",-Inf", `,"-Inf"`, "[-Inf", `["-Inf"`)

func parseExportValue(rv json.RawMessage) float64 {
	s := strings.Trim(string(rv), `"`)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}
