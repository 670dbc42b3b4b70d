package counters_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/haproxystats-go/haproxystats/builtin"
	"github.com/haproxystats-go/haproxystats/internal/counters"
)

// TestExtraMetricColumns checks the columns builtin offers beyond the
// original's lists: each is a column of some HAProxy version, and each is
// a cumulative counter unless it is one of the gauges or the mistagged
// counter its documentation names.
func TestExtraMetricColumns(t *testing.T) {
	files, err := filepath.Glob("../../testdata/haproxy-headers/*.stat")
	if err != nil || len(files) == 0 {
		t.Fatalf("no header files: %v", err)
	}
	columns := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		line, _, _ := strings.Cut(strings.TrimPrefix(string(data), "# "), "\n")
		for _, c := range strings.Split(line, ",") {
			columns[c] = true
		}
	}
	notCounters := []string{"sess_other", "srv_icur", "idle_conn_cur", "safe_conn_cur", "used_conn_cur", "need_conn_est", "priv_idle_cur"}
	for kind, list := range map[string][]string{"frontend": builtin.FrontendExtra, "backend": builtin.BackendExtra, "server": builtin.ServerExtra} {
		for _, name := range list {
			if !columns[name] {
				t.Errorf("%s extra %s is a column of no HAProxy header", kind, name)
			}
			if counters.IsStatCounter(name) == slices.Contains(notCounters, name) {
				t.Errorf("%s extra %s: IsStatCounter = %v, documented otherwise", kind, name, counters.IsStatCounter(name))
			}
		}
	}
}
