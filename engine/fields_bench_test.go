package engine

import (
	"bytes"
	"os"
	"runtime"
	"syscall"
	"testing"
)

// BenchmarkFields parses the records of one large `show stat` file with
// the built-in stages' plan (rows by class).

func BenchmarkFields(b *testing.B) {
	data, err := os.ReadFile("/tmp/hs-large/admin1.sock_stat")
	if err != nil {
		b.Skip(err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	sp := &statParser{names: newInterner()}
	kinds := [classes]map[string]bool{}
	for k := range kinds {
		kinds[k] = map[string]bool{}
	}
	for _, c := range []string{"bin", "bout", "chkdown", "chkfail", "cli_abrt", "dresp", "econ", "eresp", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other", "lbtot", "qcur", "qmax", "rate", "rate_max", "scur", "slim", "smax", "srv_abrt", "stot", "wredis", "wretr", "throttle", "weight", "ctime", "qtime", "rtime", "ttime"} {
		kinds[classOther][c] = true
		kinds[classBackend][c] = true
	}
	for _, c := range []string{"bin", "bout", "comp_byp", "comp_in", "comp_out", "comp_rsp", "conn_rate", "conn_rate_max", "conn_tot", "dcon", "dreq", "dresp", "dses", "ereq", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other", "intercepted", "rate", "rate_lim", "rate_max", "req_rate", "req_rate_max", "req_tot", "scur", "slim", "smax", "stot"} {
		kinds[classFrontend][c] = true
	}
	sp.want = map[string]bool{}
	for _, m := range kinds {
		for c := range m {
			sp.want[c] = true
		}
	}
	sp.kinds = &kinds
	sp.reset()
	if err := sp.header("a_stat", "a", lines[0]); err != nil {
		b.Fatal(err)
	}
	problem := func(error) {}
	buf := make([]byte, readSize+linePad)
	var lr lineReader
	b.SetBytes(int64(len(data)))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	b.ResetTimer()
	for range b.N {
		lr.reset(bytes.NewReader(data), buf)
		lr.next()
		for {
			l, ok := lr.next()
			if !ok {
				break
			}
			sp.row(l, 0, problem)
			if sp.full() {
				sp.batch.truncate()
			}
		}
		sp.batch.truncate()
	}
	b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// threadCPU returns the CPU time of the calling thread in nanoseconds.
func threadCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
