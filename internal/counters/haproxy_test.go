package counters_test

import (
	"context"
	"fmt"
	"github.com/haproxystats-go/haproxystats/internal/counters"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/spool"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// TestRealReload runs Debian's HAProxy in master-worker mode through a
// reload whose old worker a held connection keeps alive, and a restart of
// the store from its file, pulling `show stat` from every worker as
// haproxystats-pull does: frontend "traffic"'s req_tot and stot, sent
// with the offsets, always equal the requests sent by the client, while
// the plain sum drops when the old worker exits.
func TestRealReload(t *testing.T) {
	dir := testenv.ShortDir(t)
	sock := filepath.Join(dir, "m.sock")
	mw := testenv.StartMasterWorker(t, testenv.MasterWorkerConfig{MasterSockets: []string{sock}})
	stateDir := t.TempDir()
	open := func() (*counters.Store, *counters.Part) {
		st, err := counters.Open(counters.Options{Dir: stateDir})
		if err != nil {
			t.Fatal(err)
		}
		p, err := st.Part("frontend", []string{"req_tot", "stot"})
		if err != nil {
			t.Fatal(err)
		}
		return st, p
	}
	st, p := open()
	ts := time.Now().Unix()
	// snapshot pulls every worker and returns what is sent for the
	// frontend, and the plain sum.
	snapshot := func() (sent, plain [2]float64) {
		t.Helper()
		ts++
		s := p.NewSample()
		o, sum := pullFrontend(t, mw, sock, s)
		copy(plain[:], sum)
		st.Pending(ts)
		if _, err := p.Advance(context.Background(), ts, s); err != nil {
			t.Fatal(err)
		}
		if err := st.Done(ts); err != nil {
			t.Fatal(err)
		}
		for c := range sent {
			sent[c] = plain[c] + s.Offset(o, c)
		}
		return sent, plain
	}
	get := func(n int) {
		t.Helper()
		for range n {
			if err := mw.Get(); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := func(step string, sent [2]float64) {
		t.Helper()
		n := float64(mw.Requests())
		if sent != [2]float64{n, n} {
			t.Errorf("%s: req_tot and stot sent %v, the client sent %v requests", step, sent, n)
		}
	}

	get(5)
	sent, _ := snapshot()
	want("before the reload", sent)

	hold := mw.Hold()
	old, _, err := mw.Workers()
	if err != nil || len(old) != 1 {
		t.Fatalf("workers before the reload: %v, %v", old, err)
	}
	mw.Reload()
	get(3)
	sent, _ = snapshot()
	want("old worker leaving", sent)

	// haproxystats-process restarts while the old worker lingers.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, p = open()
	get(1)
	sent, _ = snapshot()
	want("after a restart of the store", sent)

	hold.Close()
	if !mw.WaitWorkerGone(old[0], 30*time.Second) {
		t.Fatalf("old worker %d did not exit", old[0])
	}
	for i := range counters.DepartedGrace + 2 {
		get(2)
		sent, plain := snapshot()
		want("old worker gone, snapshot "+strconv.Itoa(i), sent)
		if plain[0] >= sent[0] {
			t.Errorf("the plain sum %v did not drop below %v: the old worker's requests were not lost without offsets", plain, sent)
		}
	}
}

// TestRealClearCounters: after a reload whose old worker exits at once,
// its requests are carried; `clear counters all` on the current worker
// starts the instance again from 0.
func TestRealClearCounters(t *testing.T) {
	dir := testenv.ShortDir(t)
	sock := filepath.Join(dir, "m.sock")
	mw := testenv.StartMasterWorker(t, testenv.MasterWorkerConfig{MasterSockets: []string{sock}})
	st, err := counters.Open(counters.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.Part("frontend", []string{"req_tot"})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Unix()
	sent := func() float64 {
		t.Helper()
		ts++
		s := p.NewSample()
		o, sum := pullFrontend(t, mw, sock, s)
		if _, err := p.Advance(context.Background(), ts, s); err != nil {
			t.Fatal(err)
		}
		return sum[0] + s.Offset(o, 0)
	}
	get := func(n int) {
		t.Helper()
		for range n {
			if err := mw.Get(); err != nil {
				t.Fatal(err)
			}
		}
	}
	get(5)
	if got := sent(); got != 5 {
		t.Fatalf("before the reload: sent %v, want 5", got)
	}
	old, _, _ := mw.Workers()
	cur := mw.Reload()
	if !mw.WaitWorkerGone(old[0], 30*time.Second) {
		t.Fatalf("old worker %d did not exit", old[0])
	}
	get(2)
	for i := range counters.DepartedGrace + 2 {
		if got := sent(); got != 7 {
			t.Fatalf("after the reload, snapshot %d: sent %v, want 7", i, got)
		}
	}
	if out, err := testenv.MasterCommand(sock, fmt.Sprintf("@!%d clear counters all", cur), 5*time.Second); err != nil {
		t.Fatalf("clear counters all: %v %q", err, out)
	}
	if got := sent(); got != 0 {
		t.Errorf("after clear counters all: sent %v, want 0", got)
	}
	get(1)
	if got := sent(); got != 1 {
		t.Errorf("after clear counters all and a request: sent %v, want 1", got)
	}
}

// pullFrontend asks every worker of mw, current and leaving, for `show
// stat` through the master socket sock, as haproxystats-pull does, and
// adds frontend "traffic"'s values of the sample's counters to s. It
// returns the frontend's object number and the plain sums.
func pullFrontend(t *testing.T, mw *testenv.MasterWorker, sock string, s *counters.Sample) (int, []float64) {
	t.Helper()
	current, leaving, err := mw.Workers()
	if err != nil {
		t.Fatal(err)
	}
	o := s.Object("frontend", "traffic")
	sum := make([]float64, len(s.Counters()))
	for _, pid := range slices.Concat(current, leaving) {
		out, err := testenv.MasterCommand(sock, fmt.Sprintf("@!%d show stat", pid), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		w := s.Worker(spool.WorkerSocketName(filepath.Base(sock), mw.MasterPID(), pid, slices.Contains(leaving, pid)))
		for c, v := range frontendRow(t, string(out), "traffic", s.Counters()...) {
			s.Add(w, o, c, v)
			sum[c] += v
		}
	}
	return o, sum
}

// frontendRow returns the named columns of frontend px's row of a
// `show stat` answer: a minimal CSV reader for tests, independent from the
// engine's parser.
func frontendRow(t *testing.T, csv, px string, cols ...string) []float64 {
	t.Helper()
	lines := strings.Split(csv, "\n")
	if !strings.HasPrefix(lines[0], "# ") {
		t.Fatalf("show stat answered %.80q", csv)
	}
	header := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	for _, line := range lines[1:] {
		cells := strings.Split(line, ",")
		if len(cells) < 2 || cells[0] != px || cells[1] != "FRONTEND" {
			continue
		}
		out := make([]float64, len(cols))
		for i, c := range cols {
			j := slices.Index(header, c)
			if j < 0 || j >= len(cells) {
				t.Fatalf("show stat: no column %s", c)
			}
			v, err := strconv.ParseFloat(cells[j], 64)
			if err != nil {
				t.Fatalf("show stat: %s = %q: %v", c, cells[j], err)
			}
			out[i] = v
		}
		return out
	}
	t.Fatalf("show stat: no FRONTEND row for %s", px)
	return nil
}
