package spool

import (
	"cmp"
	"slices"
	"strconv"
)

// Process is one process of a snapshot, as ProcessLabels names it: the
// socket name of its files and what its `show info` says.
type Process struct {
	// Socket is the socket name of its files (see ParseSocketName).
	Socket string
	// ProcessNum is its Process_num; HasProcessNum is false when the
	// process did not report one.
	ProcessNum    int64
	HasProcessNum bool
	// Started is when the process started, in seconds since the epoch
	// (Start_time_sec, or the snapshot time minus Uptime_sec); 0 when
	// unknown.
	Started int64
}

// ProcessLabels names the processes of one snapshot for per-process
// metrics and CPU percentiles (P.daemon.process.<label>.<metric>), so that
// a Graphite path never holds a PID and stays the same across reloads.
// escape is applied to every name taken from a socket or master name (the
// metric path rule, engine.PathName, which turns dots into '_'); nil
// leaves them as they are. labels[i] names procs[i].
//
// Workers of a master CLI are named after their master and their role:
//
//	<master>.worker                the master's current worker
//	<master>.worker1 .. workerN    when it has several current workers,
//	                               oldest first (by Started, then PID)
//	<master>.leaving1 .. leavingN  its leaving workers (old workers after
//	                               a reload), newest first (by Started,
//	                               then PID, descending)
//
// so that after a reload the new worker takes over <master>.worker and the
// old one becomes <master>.leaving1. The metric path writer escapes a
// process label as one name, so the label stays one level of the path,
// its dot turned into '_' like the master's own:
// P.daemon.process.haproxy-master_sock_worker.CpuUsagePct. Plain stats
// sockets keep the original's rule among themselves: their Process_num
// when every plain socket has one and no two are equal, else their socket
// name. Two masters whose names escape to the same string get the same
// labels; their metrics then share paths.
func ProcessLabels(procs []Process, escape func(string) string) []string {
	if escape == nil {
		escape = func(s string) string { return s }
	}
	labels := make([]string, len(procs))
	names := make([]SocketName, len(procs))
	var plain []int
	byMaster := map[string][]int{}
	var masters []string
	for i, p := range procs {
		names[i] = ParseSocketName(p.Socket)
		if !names[i].IsWorker() {
			plain = append(plain, i)
			continue
		}
		m := names[i].Master
		if _, ok := byMaster[m]; !ok {
			masters = append(masters, m)
		}
		byMaster[m] = append(byMaster[m], i)
	}

	// Plain sockets: Process_num when unique, else the socket name.
	seen := make(map[int64]bool, len(plain))
	unique := true
	for _, i := range plain {
		if !procs[i].HasProcessNum || seen[procs[i].ProcessNum] {
			unique = false
			break
		}
		seen[procs[i].ProcessNum] = true
	}
	for _, i := range plain {
		if unique {
			labels[i] = strconv.FormatInt(procs[i].ProcessNum, 10)
		} else {
			labels[i] = escape(procs[i].Socket)
		}
	}

	// Workers: by master and role.
	older := func(a, b int) int { // oldest first
		if c := cmp.Compare(procs[a].Started, procs[b].Started); c != 0 {
			return c
		}
		return cmp.Compare(names[a].PID, names[b].PID)
	}
	for _, m := range masters {
		var current, leaving []int
		for _, i := range byMaster[m] {
			if names[i].Leaving {
				leaving = append(leaving, i)
			} else {
				current = append(current, i)
			}
		}
		prefix := escape(m) + "."
		slices.SortFunc(current, older)
		for n, i := range current {
			labels[i] = prefix + "worker"
			if len(current) > 1 {
				labels[i] += strconv.Itoa(n + 1)
			}
		}
		slices.SortFunc(leaving, func(a, b int) int { return older(b, a) })
		for n, i := range leaving {
			labels[i] = prefix + "leaving" + strconv.Itoa(n+1)
		}
	}
	return labels
}
