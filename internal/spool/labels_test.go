package spool

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dots is the path rule the daemon passes (engine.PathName replaces every
// byte outside [A-Za-z0-9_:-]; dots are what matters here).
func dots(s string) string { return strings.ReplaceAll(s, ".", "_") }

func worker(master string, mpid, pid int, leaving bool, started int64) Process {
	return Process{Socket: WorkerSocketName(master, mpid, pid, leaving), ProcessNum: 1, HasProcessNum: true, Started: started}
}

func TestProcessLabels(t *testing.T) {
	const m = "haproxy-master.sock"
	tests := []struct {
		name  string
		procs []Process
		want  []string
	}{
		{"one worker", []Process{worker(m, 7, 1311, false, 100)},
			[]string{"haproxy-master_sock.worker"}},
		{"after a reload", []Process{worker(m, 7, 1250, true, 100), worker(m, 7, 1311, false, 200)},
			[]string{"haproxy-master_sock.leaving1", "haproxy-master_sock.worker"}},
		{"two reloads, newest leaving first", []Process{
			worker(m, 7, 1250, true, 100), worker(m, 7, 1400, false, 300), worker(m, 7, 1311, true, 200)},
			[]string{"haproxy-master_sock.leaving2", "haproxy-master_sock.worker", "haproxy-master_sock.leaving1"}},
		{"same start second: PIDs decide", []Process{worker(m, 7, 20, true, 100), worker(m, 7, 30, true, 100)},
			[]string{"haproxy-master_sock.leaving2", "haproxy-master_sock.leaving1"}},
		{"several current workers, oldest first", []Process{worker(m, 7, 30, false, 200), worker(m, 7, 20, false, 100)},
			[]string{"haproxy-master_sock.worker2", "haproxy-master_sock.worker1"}},
		{"two masters", []Process{worker("a.sock", 7, 11, false, 0), worker("127.0.0.1:9999", 8, 11, false, 0), worker("a.sock", 7, 10, true, 0)},
			[]string{"a_sock.worker", "127_0_0_1:9999.worker", "a_sock.leaving1"}},
		{"plain sockets with distinct Process_num", []Process{
			{Socket: "admin1.sock", ProcessNum: 1, HasProcessNum: true}, {Socket: "admin2.sock", ProcessNum: 2, HasProcessNum: true}},
			[]string{"1", "2"}},
		{"plain sockets all Process_num 1", []Process{
			{Socket: "a.sock", ProcessNum: 1, HasProcessNum: true}, {Socket: "b.sock", ProcessNum: 1, HasProcessNum: true}},
			[]string{"a_sock", "b_sock"}},
		{"plain socket without Process_num", []Process{{Socket: "a.sock"}},
			[]string{"a_sock"}},
		{"plain sockets beside a master: their rule among themselves", []Process{
			{Socket: "a.sock", ProcessNum: 1, HasProcessNum: true}, worker(m, 7, 11, false, 0)},
			[]string{"1", "haproxy-master_sock.worker"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ProcessLabels(tc.procs, dots); !slices.Equal(got, tc.want) {
				t.Errorf("ProcessLabels = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestProcessLabelsStableAcrossReloads runs a master through reloads and
// checks that the labels never hold a PID and that the set of labels in
// use stays within a few names.
func TestProcessLabelsStableAcrossReloads(t *testing.T) {
	used := map[string]bool{}
	type w struct {
		pid     int
		started int64
	}
	var old []w
	cur := w{100, 1000}
	for round := range 20 {
		procs := []Process{worker("m.sock", 7, cur.pid, false, cur.started)}
		for _, o := range old {
			procs = append(procs, worker("m.sock", 7, o.pid, true, o.started))
		}
		procs = append(procs, worker("n.sock", 9, 500, false, 900))
		labels := ProcessLabels(procs, dots)
		if labels[0] != "m_sock.worker" || labels[len(labels)-1] != "n_sock.worker" {
			t.Fatalf("round %d: labels %q", round, labels)
		}
		for i, l := range labels {
			used[l] = true
			p := ParseSocketName(procs[i].Socket)
			for _, pid := range []int{p.PID, p.MasterPID} {
				if strings.Contains(l, strconv.Itoa(pid)) {
					t.Errorf("round %d: label %q of %s holds a PID", round, l, procs[i].Socket)
				}
			}
		}
		// Reload: the current worker leaves; at most two old ones linger.
		old = append([]w{cur}, old...)
		if len(old) > 2 {
			old = old[:2]
		}
		cur = w{cur.pid + 7, cur.started + 60}
	}
	want := []string{"m_sock.leaving1", "m_sock.leaving2", "m_sock.worker", "n_sock.worker"}
	if got := sortedKeys(used); !slices.Equal(got, want) {
		t.Errorf("labels used over 20 reloads: %q, want %q", got, want)
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
