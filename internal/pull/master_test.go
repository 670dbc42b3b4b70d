package pull

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxystats-go/haproxystats/internal/haproxy"
	"github.com/haproxystats-go/haproxystats/internal/spool"
	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// fakeSocket serves a UNIX socket at path: answer writes what the
// connection gets for the command line it sent. With keepOpen it waits for
// the client to half-close before closing, as HAProxy 2.6's master CLI
// does.
func fakeSocket(t testing.TB, path string, keepOpen bool, answer func(cmd string, w io.Writer)) {
	t.Helper()
	testenv.ServeUnix(t, path, func(c net.Conn) {
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		answer(strings.TrimSuffix(line, "\n"), c)
		if keepOpen {
			io.Copy(io.Discard, r)
		}
	})
}

// fakeMaster serves a master CLI at path listing master PID 10 and the
// given workers (PID -> leaving); each worker answers with its PID in the
// text, except those of gone, which the master no longer knows.
func fakeMaster(t testing.TB, path string, workers map[int]bool, gone ...int) {
	fakeSocket(t, path, true, func(cmd string, w io.Writer) {
		if cmd == "show proc" {
			var cur, old strings.Builder
			for pid, leaving := range workers {
				row := fmt.Sprintf("%-15d %-15s %-15d %-15s %-15s\n", pid, "worker", 0, "0d00h00m01s", "2.6.12")
				if leaving {
					old.WriteString(row)
				} else {
					cur.WriteString(row)
				}
			}
			fmt.Fprintf(w, "#%-14s %-15s %-15s %-15s %-15s\n", "<PID>", "<type>", "<reloads>", "<uptime>", "<version>")
			fmt.Fprintf(w, "%-15d %-15s %-15s %-15s %-15s\n", 10, "master", "1 [failed: 0]", "0d00h00m01s", "2.6.12")
			fmt.Fprintf(w, "# workers\n%s", cur.String())
			if old.Len() > 0 {
				fmt.Fprintf(w, "# old workers\n%s", old.String())
			}
			io.WriteString(w, "# programs\n\n")
			return
		}
		target, rest, _ := strings.Cut(cmd, " ")
		pid, _ := strconv.Atoi(strings.TrimPrefix(target, "@!"))
		if _, ok := workers[pid]; !ok || slices.Contains(gone, pid) {
			fmt.Fprintf(w, "Can't find the target PID matching the prefix '%s'\n", target)
			return
		}
		switch rest {
		case "show info":
			fmt.Fprintf(w, "Name: HAProxy\nPid: %d\n\n", pid)
		case "show stat":
			fmt.Fprintf(w, "# pxname,svname,pid\nfe,FRONTEND,%d\n\n", pid)
		default:
			io.WriteString(w, "Unknown command\n")
		}
	})
}

// A master's workers, current and leaving, land as one pair each, named
// after the master, its PID, their PID and their state; the keep-open
// master does not hold the round.
func TestRoundFakeMaster(t *testing.T) {
	dir := testenv.ShortDir(t)
	fakeMaster(t, filepath.Join(dir, "m.sock"), map[int]bool{11: false, 12: true, 13: true})
	cfg := testConfig(t, testenv.ShortDir(t))
	cfg.SocketDir = ""
	cfg.Masters = []Server{{Network: "unix", Address: filepath.Join(dir, "m.sock"), Name: "m.sock"}}
	cfg.PullTimeout = 10 * time.Second
	p := newPuller(t, cfg, nil)
	if err := p.Round(context.Background(), time.Unix(epoch, 0)); err != nil {
		t.Fatalf("Round: %v", err)
	}
	snap := filepath.Join(cfg.DstDir, strconv.Itoa(epoch))
	want := []string{
		"m.sock:master-10:leaving-12_info", "m.sock:master-10:leaving-12_stat",
		"m.sock:master-10:leaving-13_info", "m.sock:master-10:leaving-13_stat",
		"m.sock:master-10:worker-11_info", "m.sock:master-10:worker-11_stat",
	}
	if got := files(t, snap); !slices.Equal(got, want) {
		t.Fatalf("snapshot files = %v, want %v", got, want)
	}
	for _, f := range want {
		socket, suffix, _ := spool.SplitFileName(f)
		n := spool.ParseSocketName(socket)
		data, err := os.ReadFile(filepath.Join(snap, f))
		if err != nil {
			t.Fatal(err)
		}
		wantData := fmt.Sprintf("Name: HAProxy\nPid: %d\n\n", n.PID)
		if suffix == spool.StatSuffix {
			wantData = fmt.Sprintf("# pxname,svname,pid\nfe,FRONTEND,%d\n\n", n.PID)
		}
		if string(data) != wantData {
			t.Errorf("%s = %q, want %q", f, data, wantData)
		}
	}
}

// A worker that exits between show proc and its commands, a master without
// a current worker, and a plain stats socket given as a master fail the
// round, each named.
func TestRoundFakeMasterFailures(t *testing.T) {
	dir := testenv.ShortDir(t)
	fakeMaster(t, filepath.Join(dir, "gone.sock"), map[int]bool{11: false, 12: true}, 12)
	fakeMaster(t, filepath.Join(dir, "none.sock"), map[int]bool{12: true})
	fakeSocket(t, filepath.Join(dir, "plain.sock"), false, func(cmd string, w io.Writer) {
		io.WriteString(w, "Unknown command, but maybe one of the following ones is a better match:\n")
	})
	fakeMaster(t, filepath.Join(dir, "ok.sock"), map[int]bool{11: false})
	cfg := testConfig(t, testenv.ShortDir(t))
	cfg.SocketDir = ""
	for _, name := range []string{"gone.sock", "none.sock", "plain.sock", "ok.sock"} {
		cfg.Masters = append(cfg.Masters, Server{Network: "unix", Address: filepath.Join(dir, name), Name: name})
	}
	logger, log := newLogger()
	p := newPuller(t, cfg, logger)
	err := p.Round(context.Background(), time.Unix(epoch, 0))
	var re *RoundError
	if !errors.As(err, &re) {
		t.Fatalf("Round = %v, want a *RoundError", err)
	}
	if got, want := re.FailedSockets(), []string{"gone.sock:master-10:leaving-12", "none.sock", "plain.sock"}; !slices.Equal(got, want) {
		t.Errorf("failed = %v, want %v", got, want)
	}
	if !errors.Is(err, haproxy.ErrWorkerGone) {
		t.Errorf("error %v does not wrap ErrWorkerGone", err)
	}
	for _, s := range []string{"lists no current worker", "not a master CLI", "Can't find the target PID"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	nothingLeft(t, cfg)
	p.report(err)
	if len(log.lines("level=ERROR", "failed=gone.sock:master-10:leaving-12,none.sock,plain.sock")) != 1 {
		t.Errorf("no log line naming the failures; log:\n%s", log)
	}
}

// Regression (issue 10 item 3): an answer longer than max-answer-size fails
// that socket for the round, named, instead of landing in the spool; a
// shorter one of several MiB streams through complete.
func TestRoundMaxAnswerSize(t *testing.T) {
	dir := testenv.ShortDir(t)
	chunk := strings.Repeat("x", 64<<10)
	fakeSocket(t, filepath.Join(dir, "big.sock"), false, func(cmd string, w io.Writer) {
		for range 512 { // 32 MiB
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	})
	const medium = 6 << 20
	fakeSocket(t, filepath.Join(dir, "medium.sock"), false, func(cmd string, w io.Writer) {
		io.WriteString(w, strings.Repeat("y", medium))
	})
	cfg := testConfig(t, dir)
	cfg.MaxAnswerSize = 8 << 20
	cfg.PullTimeout = 20 * time.Second
	logger, log := newLogger()
	p := newPuller(t, cfg, logger)
	err := p.Round(context.Background(), time.Unix(epoch, 0))
	var re *RoundError
	if !errors.As(err, &re) || !slices.Equal(re.FailedSockets(), []string{"big.sock"}) {
		t.Fatalf("Round = %v, want a *RoundError naming only big.sock", err)
	}
	if !errors.Is(err, haproxy.ErrAnswerTooLarge) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Round error %v, want ErrAnswerTooLarge (not the pull-timeout)", err)
	}
	p.report(err)
	if len(log.lines("level=ERROR", "failed=big.sock", "more than 8388608 bytes")) != 1 {
		t.Errorf("no log line naming big.sock and the limit; log:\n%s", log)
	}
	nothingLeft(t, cfg)

	if err := os.Remove(filepath.Join(dir, "big.sock")); err != nil {
		t.Fatal(err)
	}
	if err := p.Round(context.Background(), time.Unix(epoch+1, 0)); err != nil {
		t.Fatalf("Round without big.sock = %v", err)
	}
	fi, err := os.Stat(filepath.Join(cfg.DstDir, strconv.Itoa(epoch+1), "medium.sock_stat"))
	if err != nil || fi.Size() != medium {
		t.Errorf("medium.sock_stat = %v, %v, want %d bytes", fi, err, medium)
	}
}

// startMasterWorker starts haproxy -W with a master socket m.sock in a
// short directory (1000 backends x 2 servers: answers of several hundred
// KiB, more than one read).
func startMasterWorker(t *testing.T) (*testenv.MasterWorker, Server) {
	t.Helper()
	dir := testenv.ShortDir(t)
	m := testenv.StartMasterWorker(t, testenv.MasterWorkerConfig{
		MasterSockets: []string{filepath.Join(dir, "m.sock")},
		Body:          testenv.Proxies(testenv.FreePort(t), 1000, 2, testenv.FreePort(t)),
	})
	return m, Server{Network: "unix", Address: m.MasterSockets()[0], Name: "m.sock"}
}

// roundFiles runs one round and returns the snapshot's socket names.
func roundFiles(t *testing.T, p *Puller, cfg Config, at int64) (snap string, names []spool.SocketName) {
	t.Helper()
	if err := p.Round(context.Background(), time.Unix(at, 0)); err != nil {
		t.Fatalf("Round: %v", err)
	}
	snap = filepath.Join(cfg.DstDir, strconv.FormatInt(at, 10))
	seen := map[string]int{}
	for _, f := range files(t, snap) {
		socket, _, ok := spool.SplitFileName(f)
		if !ok {
			t.Fatalf("snapshot file %q has no _info/_stat suffix", f)
		}
		if seen[socket]++; seen[socket] == 2 {
			names = append(names, spool.ParseSocketName(socket))
		}
	}
	if len(seen) != len(names) {
		t.Fatalf("snapshot files %v: not one _info/_stat pair per socket", files(t, snap))
	}
	return snap, names
}

// Against Debian's haproxy 2.6 -W with nbthread 2, beside a plain stats
// socket: the round holds one pair per worker, its answers are the
// worker's, and the master's keep-open connection does not hold the round
// (with a pull-timeout a reader waiting for the close would fail it).
func TestRoundRealMasterWorker(t *testing.T) {
	m, master := startMasterWorker(t)
	plainDir := testenv.ShortDir(t)
	startInstances(t, plainDir, 1, 2, 2)
	cfg := testConfig(t, plainDir)
	cfg.Masters = []Server{master}
	cfg.PullTimeout = 5 * time.Second
	p := newPuller(t, cfg, nil)
	cur, old, err := m.Workers()
	if err != nil || len(cur) != 1 || len(old) != 0 {
		t.Fatalf("Workers = %v, %v, %v", cur, old, err)
	}
	snap, names := roundFiles(t, p, cfg, epoch)
	want := []spool.SocketName{
		{Name: "admin1.sock"},
		spool.ParseSocketName(spool.WorkerSocketName("m.sock", m.MasterPID(), cur[0], false)),
	}
	if !slices.Equal(names, want) {
		t.Fatalf("round holds %+v, want %+v", names, want)
	}
	w := names[1]
	info, err := os.ReadFile(filepath.Join(snap, w.Name+spool.InfoSuffix))
	if err != nil {
		t.Fatal(err)
	}
	if got := infoLine(info, "Pid"); got != strconv.Itoa(cur[0]) {
		t.Errorf("worker info Pid = %q, want %d", got, cur[0])
	}
	if got := infoLine(info, "Nbthread"); got != "2" {
		t.Errorf("worker info Nbthread = %q, want 2", got)
	}
	stat, err := os.ReadFile(filepath.Join(snap, w.Name+spool.StatSuffix))
	if err != nil {
		t.Fatal(err)
	}
	live, err := testenv.MasterCommand(master.Address, fmt.Sprintf("@!%d show stat", cur[0]), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	gotHeader, gotRows := statKeys(t, stat)
	wantHeader, wantRows := statKeys(t, live)
	if gotHeader != wantHeader || !slices.Equal(gotRows, wantRows) || len(gotRows) != 1+1+3+1000*3 { // fe, traffic, hold (3 rows), the backends
		t.Errorf("worker stat: %d rows, header %.40q; the worker answers %d rows, %.40q", len(gotRows), gotHeader, len(wantRows), wantHeader)
	}
	if len(stat) <= 64<<10 {
		t.Errorf("worker stat is %d bytes: want more than one read buffer", len(stat))
	}
}

// A reload while a connection keeps the old worker alive: rounds hold the
// new worker and the leaving one while it lives, then only the new one.
func TestRoundRealMasterReload(t *testing.T) {
	m, master := startMasterWorker(t)
	cfg := testConfig(t, testenv.ShortDir(t))
	cfg.SocketDir = ""
	cfg.Masters = []Server{master}
	cfg.PullTimeout = 5 * time.Second
	p := newPuller(t, cfg, nil)
	cur, _, err := m.Workers()
	if err != nil {
		t.Fatal(err)
	}
	first := cur[0]
	mpid := m.MasterPID()
	worker := func(pid int, leaving bool) spool.SocketName {
		return spool.ParseSocketName(spool.WorkerSocketName("m.sock", mpid, pid, leaving))
	}

	held := m.Hold()
	second := m.Reload()
	for i := range 2 { // while it lives, every round holds both
		_, names := roundFiles(t, p, cfg, epoch+int64(i))
		if want := []spool.SocketName{worker(first, true), worker(second, false)}; !slices.Equal(names, want) {
			t.Fatalf("round %d after the reload holds %+v, want %+v", i, names, want)
		}
	}
	held.Close()
	if !m.WaitWorkerGone(first, 20*time.Second) {
		t.Fatalf("old worker %d did not exit within 20s of its connection closing", first)
	}
	_, names := roundFiles(t, p, cfg, epoch+2)
	if want := []spool.SocketName{worker(second, false)}; !slices.Equal(names, want) {
		t.Fatalf("round after the old worker exited holds %+v, want %+v", names, want)
	}
}

// A master that accepts and never answers: the round fails within
// pull-timeout, naming it, and leaves nothing behind.
func TestRoundMasterNeverAnswers(t *testing.T) {
	dir := testenv.ShortDir(t)
	hangingSocket(t, filepath.Join(dir, "hang.sock"))
	_, master := startMasterWorker(t)
	cfg := testConfig(t, testenv.ShortDir(t))
	cfg.SocketDir = ""
	cfg.Masters = []Server{master, {Network: "unix", Address: filepath.Join(dir, "hang.sock"), Name: "hang.sock"}}
	cfg.PullTimeout = 500 * time.Millisecond
	p := newPuller(t, cfg, nil)
	done := make(chan error, 1)
	go func() { done <- p.Round(context.Background(), time.Unix(epoch, 0)) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Round still running 10s after a pull-timeout of 500ms")
	}
	var re *RoundError
	if !errors.As(err, &re) || !slices.Equal(re.FailedSockets(), []string{"hang.sock"}) {
		t.Fatalf("Round = %v, want a *RoundError naming only hang.sock", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `"show proc"`) {
		t.Errorf("Round error %v: want the pull-timeout on show proc", err)
	}
	nothingLeft(t, cfg)
}
