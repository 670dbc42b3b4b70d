package contrib_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

const dashboardFile = "contrib/grafana/haproxystats.json"

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type variable struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Query any    `json:"query"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource map[string]any `json:"datasource"`
	GridPos    map[string]int `json:"gridPos"`
	Panels     []panel        `json:"panels"` // of a collapsed row
	Targets    []struct {
		RefID  string `json:"refId"`
		Target string `json:"target"`
		Hide   bool   `json:"hide"`
	} `json:"targets"`
}

// dashboardTargets loads the dashboard, checks its structure and returns
// every visible target by panel title, and the template variables.
func dashboardTargets(t *testing.T) (map[string][]string, []variable) {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal([]byte(readFile(t, dashboardFile)), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	for _, v := range []string{"datasource", "namespace", "host"} {
		if !vars[v] {
			t.Errorf("%s: no template variable %q", dashboardFile, v)
		}
	}
	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	ids := map[int]bool{}
	targets := map[string][]string{}
	varRef := regexp.MustCompile(`\$\{?([A-Za-z_]+)\}?`)
	for _, p := range all {
		if ids[p.ID] {
			t.Errorf("%s: panel id %d twice", dashboardFile, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource["uid"] != "${datasource}" {
			t.Errorf("%s: panel %q: datasource %v, want the ${datasource} variable", dashboardFile, p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no target", dashboardFile, p.Title)
		}
		if _, dup := targets[p.Title]; dup {
			t.Errorf("%s: two panels titled %q", dashboardFile, p.Title)
		}
		targets[p.Title] = nil
		for _, tg := range p.Targets {
			if tg.Hide {
				continue
			}
			for _, m := range varRef.FindAllStringSubmatch(tg.Target, -1) {
				if !vars[m[1]] {
					t.Errorf("%s: panel %q: target %q uses undefined variable $%s", dashboardFile, p.Title, tg.Target, m[1])
				}
			}
			targets[p.Title] = append(targets[p.Title], tg.Target)
		}
	}
	if len(targets) < 10 {
		t.Fatalf("%s: only %d panels with targets", dashboardFile, len(targets))
	}
	return targets, d.Templating.List
}

// TestContribGrafanaDashboard loads the output of `haproxystats-engine run`
// on a corpus case into a real VictoriaMetrics through its Graphite
// listener and queries every target of the dashboard through its Graphite
// render API: each must return at least one non-null point. The query of
// each query variable goes through the metrics find API and must list the
// value the targets were expanded with.
//
// The case is medium-everything (4 HAProxy processes, per-process metrics,
// percentages, aggregated servers), its snapshot copied six times 10 s
// apart so that perSecond() has consecutive points. The configuration sets
// namespace = loadbalancers and prefix-hostname = false, and the host
// level that prefix-hostname = true would add is inserted as the fixed
// name lbtest, so the dashboard's variables are namespace = loadbalancers,
// host = lbtest.
func TestContribGrafanaDashboard(t *testing.T) {
	t.Parallel()
	targets, variables := dashboardTargets(t)
	vm := testenv.StartVictoriaMetrics(t)
	bin := binaries(t)

	dir := t.TempDir()
	src := filepath.Join(root, "testdata/conformance/medium-everything")
	snaps, err := filepath.Glob(filepath.Join(src, "incoming", "*"))
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots of %s: %q %v", src, snaps, err)
	}
	base := time.Now().Unix()/10*10 - 60
	var dirs []string
	for i := range 6 {
		d := filepath.Join(dir, "incoming", strconv.FormatInt(base+10*int64(i), 10))
		if err := os.CopyFS(d, os.DirFS(snaps[0])); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	conf := filepath.Join(dir, "haproxystats.conf")
	caseConf, err := os.ReadFile(filepath.Join(src, "haproxystats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(caseConf), "prefix-hostname = false") || strings.Contains(string(caseConf), "namespace") {
		t.Fatalf("%s/haproxystats.conf changed: want prefix-hostname = false and the default namespace:\n%s", src, caseConf)
	}
	os.WriteFile(conf, caseConf, 0o644)
	out, errOut, code := runCmd(t, nil, filepath.Join(bin, "haproxystats-engine"), append([]string{"run", "-f", conf}, dirs...)...)
	if code != 0 {
		t.Fatalf("haproxystats-engine run: exit %d\n%s", code, errOut)
	}
	const prefix, withHost = "loadbalancers.haproxy.", "loadbalancers.lbtest.haproxy."
	var sb strings.Builder
	n := 0
	for _, l := range lines(out) {
		if !strings.HasPrefix(l, prefix) {
			t.Fatalf("line %q does not start with %s", l, prefix)
		}
		sb.WriteString(withHost + strings.TrimPrefix(l, prefix) + "\n")
		n++
	}
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(vm.GraphitePort())))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, sb.String()); err != nil {
		t.Fatal(err)
	}
	c.Close()

	from, until := base-60, base+120
	render := func(target string) (series int, points int, err error) {
		q := url.Values{"target": {target}, "format": {"json"},
			"from": {strconv.FormatInt(from, 10)}, "until": {strconv.FormatInt(until, 10)}}
		var res []struct {
			Target     string        `json:"target"`
			Datapoints [][2]*float64 `json:"datapoints"`
		}
		if err := getJSON(vm.URL()+"/render?"+q.Encode(), &res); err != nil {
			return 0, 0, err
		}
		for _, s := range res {
			for _, p := range s.Datapoints {
				if p[0] != nil {
					points++
				}
			}
		}
		return len(res), points, nil
	}
	expand := strings.NewReplacer("${namespace}", "loadbalancers", "$namespace", "loadbalancers",
		"${host}", "lbtest", "$host", "lbtest")

	// Wait until the lines are searchable (ingestion is asynchronous;
	// /internal/force_flush makes what was received searchable at once).
	deadline := time.Now().Add(20 * time.Second)
	for {
		vm.ForceFlush()
		_, pts, err := render(withHost + "haproxystats.TotalWallClockTime")
		if err == nil && pts >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lines sent, TotalWallClockTime not readable after 20 s (%d points, %v)\n%s", n, pts, err, vm.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The last line of the last snapshot is in; flush whatever the
	// listener's workers still held.
	if err := vm.ForceFlush(); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for title, tgs := range targets {
		for _, tg := range tgs {
			target := expand.Replace(tg)
			series, points, err := render(target)
			switch {
			case err != nil:
				t.Errorf("panel %q: render %s: %v", title, target, err)
			case points == 0:
				t.Errorf("panel %q: %s: %d series, no non-null point", title, target, series)
			}
			checked++
		}
	}
	values := map[string]string{"host": "lbtest"}
	for _, v := range variables {
		if v.Type != "query" {
			continue
		}
		query, _ := v.Query.(string)
		if query == "" {
			t.Errorf("%s: variable %s has no query string: %v", dashboardFile, v.Name, v.Query)
			continue
		}
		found, err := findMetrics(vm.URL(), expand.Replace(query))
		if err != nil || !slices.Contains(found, values[v.Name]) {
			t.Errorf("variable %s: metrics find %q = %q, %v; want it to list %q", v.Name, expand.Replace(query), found, err, values[v.Name])
		}
	}
	t.Logf("%d lines loaded; %d targets of %d panels and %d variables checked", n, checked, len(targets), len(variables))
}

// findMetrics asks the Graphite metrics find API, as Grafana does for a
// query variable, and returns the names of the nodes found.
func findMetrics(base, query string) ([]string, error) {
	var nodes []struct {
		Text string `json:"text"`
	}
	if err := getJSON(base+"/metrics/find?"+url.Values{"query": {query}}.Encode(), &nodes); err != nil {
		return nil, err
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Text)
	}
	return names, nil
}

// getJSON decodes the JSON answer of a GET of u into v.
func getJSON(u string, v any) error {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: decode %q: %w", u, body, err)
	}
	return nil
}
