package main

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/engine/enginetest"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// TestCarbonRelay runs the daemon over the medium-defaults case with a real
// carbon-c-relay as Graphite, writing what it receives to a file, and
// checks by the corpus rules that the file holds every expected line once.
func TestCarbonRelay(t *testing.T) {
	t.Parallel()
	const caseName = "medium-defaults"
	relay := testenv.StartCarbonRelay(t)
	exp := loadExpectation(t, caseName)
	s := newScratch(t, caseName, relay.Port(), "", "")
	const epoch = 1795507862
	s.put(t, caseSnapshot(t, caseName), epoch)
	want := exp.text(epoch)

	p := s.start(t)
	waitFor(t, 60*time.Second, "the spool to empty", func() bool { return len(s.left(t)) == 0 })
	// The relay writes to its file in batches: wait until every line that
	// must arrive is there.
	complete := func() bool {
		for _, m := range enginetest.Compare(want, relay.Output(), false) {
			if m.Kind == enginetest.Missing {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(30 * time.Second)
	for !complete() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	p.term(t, 30*time.Second)
	// Let the relay write anything that would come late (an extra line).
	time.Sleep(300 * time.Millisecond)
	got := relay.Output()
	n := 0
	for _, m := range enginetest.Compare(want, got, false) {
		if m.Counted {
			if n < 20 {
				t.Errorf("%s", m)
			}
			n++
		}
	}
	if n > 0 {
		t.Errorf("%d mismatches between %s/expected.txt and the relay's file %s; relay log:\n%s",
			n, caseName, relay.OutputFile(), tail(relay.Log(), 20))
	}
	t.Logf("carbon-c-relay wrote %d lines; %d must arrive", bytes.Count(got, []byte{'\n'}), exp.numbers())
}

// TestVictoriaMetricsRoundTrip sends the medium-defaults case through the
// daemon into a real VictoriaMetrics (Graphite plaintext listener) and reads
// every point back through /api/v1/export: same path, same value (relative
// 1e-9; WallClockTime values finite), same timestamp, and as many points as
// the case has non-NaN lines. The snapshot is renamed to a recent epoch so
// that it falls inside the storage's retention.
func TestVictoriaMetricsRoundTrip(t *testing.T) {
	t.Parallel()
	const caseName = "medium-defaults"
	vm := testenv.StartVictoriaMetrics(t)
	exp := loadExpectation(t, caseName)
	s := newScratch(t, caseName, vm.GraphitePort(), "", "")
	epoch := time.Now().Add(-2 * time.Minute).Unix()
	s.put(t, caseSnapshot(t, caseName), epoch)

	// Only the lines that must be stored: Graphite back ends drop NaN.
	var want bytes.Buffer
	for _, l := range strings.Split(string(exp.text(epoch)), "\n") {
		if f := strings.Split(l, " "); len(f) == 3 && !strings.EqualFold(f[1], "nan") {
			want.WriteString(l + "\n")
		}
	}
	wantN := exp.numbers()

	p := s.start(t)
	waitFor(t, 60*time.Second, "the spool to empty", func() bool { return len(s.left(t)) == 0 })
	p.term(t, 30*time.Second)
	delivered := time.Now()

	const match = `{__name__=~"loadbalancers[.]haproxy[.].*"}`
	from, to := time.Unix(epoch-60, 0), time.Unix(epoch+60, 0)
	var series []testenv.Series
	var points, nans int
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := vm.ForceFlush(); err != nil {
			t.Fatal(err)
		}
		var err error
		series, err = vm.Export(match, from, to)
		if err != nil {
			t.Fatalf("%v\nvictoria-metrics output:\n%s", err, tail(vm.Output(), 20))
		}
		points, nans = 0, 0
		for _, s := range series {
			for _, v := range s.Values {
				if math.IsNaN(v) {
					nans++
				} else {
					points++
				}
			}
		}
		if points >= wantN || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	var got bytes.Buffer
	for _, s := range series {
		for i, v := range s.Values {
			if math.IsNaN(v) {
				continue
			}
			ms := s.Timestamps[i]
			if ms%1000 != 0 {
				t.Errorf("%s: timestamp %dms is not a whole second", s.Name, ms)
			}
			got.WriteString(fmt.Sprintf("%s %s %d\n", s.Name, strconv.FormatFloat(v, 'g', -1, 64), ms/1000))
		}
	}
	n := 0
	for _, m := range enginetest.Compare(want.Bytes(), got.Bytes(), false) {
		if m.Counted {
			if n < 20 {
				t.Errorf("%s", m)
			}
			n++
		}
	}
	if n > 0 {
		t.Errorf("%d mismatches between what was sent and what VictoriaMetrics returns", n)
	}
	if points != wantN {
		t.Errorf("VictoriaMetrics holds %d points, want %d (one per non-NaN line)", points, wantN)
	}
	t.Logf("read back %d series, %d points (%d NaN points stored besides); all visible %v after the daemon stopped",
		len(series), points, nans, time.Since(delivered).Round(time.Millisecond))
}
