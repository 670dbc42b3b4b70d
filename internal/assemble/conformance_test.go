package assemble_test

import (
	"bytes"
	"context"
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haproxystats-go/haproxystats/engine/enginetest"
	"github.com/haproxystats-go/haproxystats/internal/cases"
)

var update = flag.Bool("update", false, "rewrite expected.txt of the cases from the output")

// TestConformance runs every case of the corpus through the same runner
// as `haproxystats-engine test`. It is the drop-in promise: the output of
// the original for real HAProxy snapshots.
func TestConformance(t *testing.T) {
	all, err := enginetest.Find(filepath.Join("..", "..", "testdata", "conformance"))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 25 {
		t.Fatalf("found %d cases, want the 25 of the corpus", len(all))
	}
	for _, c := range all {
		t.Run(c.Name, func(t *testing.T) {
			r := enginetest.Run(context.Background(), c, cases.Build)
			if *update {
				if err := enginetest.Update(r); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !r.Passed() {
				var b bytes.Buffer
				enginetest.Report(&b, r, true)
				t.Error(b.String())
			}
			if len(r.Output) == 0 {
				t.Error("no output at all")
			}
		})
	}
}

// TestReferenceFailureCases checks the Decisions on the cases where the
// original crashed: the rest of the snapshot is processed.
func TestReferenceFailureCases(t *testing.T) {
	for name, want := range map[string][]string{
		// libslz build without zlib keys: everything but those two.
		"no-zlib-info": {"loadbalancers.haproxy.daemon.CurrConns ", "loadbalancers.haproxy.backend.", "loadbalancers.haproxy.haproxystats.MetricsHAProxy "},
		// 62-field CSV with the default lists: the fields 1.6 has.
		"csv62-defaults": {"loadbalancers.haproxy.frontend.fe_web.stot ", "loadbalancers.haproxy.backend.", ".server."},
		// non-CSV stat file: skipped, counted, the other process processed.
		"garbage-stat": {"loadbalancers.haproxy.haproxystats.RejectedFiles 1 ", "loadbalancers.haproxy.frontend."},
	} {
		dir := filepath.Join("..", "..", "testdata", "conformance", name)
		r := enginetest.Run(context.Background(), enginetest.Case{Name: name, Dir: dir}, cases.Build)
		if !r.Passed() {
			t.Errorf("%s does not pass", name)
		}
		for _, w := range want {
			if !strings.Contains(string(r.Output), w) {
				t.Errorf("%s: no line containing %q", name, w)
			}
		}
		if name == "no-zlib-info" && strings.Contains(string(r.Output), "ZlibMemUsage") {
			t.Errorf("%s: sent a key that no file carries", name)
		}
	}
}
