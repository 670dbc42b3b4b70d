package haproxy

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ShowProc is the master CLI's command listing the master, its workers and
// (before 3.3) its programs.
const ShowProc = "show proc"

// Proc is one row of "show proc".
type Proc struct {
	PID int
	// Type is "master", "worker", or a program's name.
	Type string
	// Reloads is the row's <reloads> column: for the master, the reloads it
	// went through; for a worker, the reloads it survived (0 for the
	// current worker). 0 when the column is not a number.
	Reloads int
	// FailedReloads is the master's "[failed: N]" (0 for other rows).
	FailedReloads int
	// Uptime and Version are the columns as printed (e.g. "0d00h02m07s",
	// "2.6.12-1+deb12u4"); empty when missing.
	Uptime, Version string
	// Leaving is true for a row of "# old workers" or "# old programs": a
	// process of an earlier configuration still finishing its connections.
	Leaving bool
}

// ProcList is a parsed "show proc" answer.
type ProcList struct {
	Master Proc
	// Workers are the current workers, then the leaving ones, each in the
	// order listed.
	Workers []Proc
	// Programs are the external programs ("program" sections, gone in
	// HAProxy 3.3), current then leaving.
	Programs []Proc
}

// ParseShowProc parses the answer of a master CLI to "show proc", as
// HAProxy 2.6 up to 3.x prints it (src/mworker.c, cli_io_handler_show_proc):
//
//	#<PID>          <type>          <reloads>       <uptime>        <version>
//	1162            master          5 [failed: 0]   0d00h02m07s     2.6.12
//	# workers
//	1271            worker          0               0d00h00m00s     2.6.12
//	# old workers
//	1233            worker          3               0d00h00m43s     2.6.12
//	# programs
//	1244            foo             0               0d00h00m00s     -
//
// Columns are padded with spaces to 15 characters, a wider cell (the
// master's "8557 [failed: 0]") is followed by a single space, and "show
// proc debug" appends tab-separated columns: rows are split on white space,
// the master's <reloads> cell being the number and the bracketed part after
// it. The "# programs" section is absent when empty (3.2) or gone (3.3 and
// later), "# old workers" when there is none; an unknown "# ..." section is
// skipped. It fails when the answer is not a "show proc" answer (no
// "#<PID>" header first: a plain stats socket answers "Unknown command"),
// when the master row is missing, and on a row of a worker section whose
// PID is not a positive number or whose type is not "worker", or a PID
// listed twice. The other columns are informative and never fail.
func ParseShowProc(answer []byte) (*ProcList, error) {
	var (
		out        ProcList
		header     bool
		haveMaster bool
		section    string // "" before "# workers": the master's part
		seen       = map[int]bool{}
	)
	lines := bytes.Split(answer, []byte("\n"))
	for n, raw := range lines {
		line := strings.TrimRight(string(raw), " \t\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		lineErr := func(format string, args ...any) error {
			return fmt.Errorf("show proc line %d %q: %s", n+1, line, fmt.Sprintf(format, args...))
		}
		if !header {
			if !strings.HasPrefix(line, "#<PID>") {
				return nil, fmt.Errorf("not a master CLI's show proc answer: it starts %q, want \"#<PID>\"", firstLine(answer))
			}
			header = true
			continue
		}
		if name, ok := strings.CutPrefix(line, "#"); ok {
			section = strings.TrimSpace(name)
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			if section == "" || section == "workers" || section == "old workers" {
				return nil, lineErr("want at least <PID> <type>")
			}
			continue
		}
		pid, err := strconv.Atoi(fields[0])
		bad := err != nil || pid <= 0
		p := Proc{PID: pid, Type: fields[1]}
		switch section {
		case "":
			if bad || p.Type != "master" || haveMaster {
				return nil, lineErr("want the master's row (<PID> master ...) once, right after the header")
			}
			rest := fields[2:]
			if len(rest) > 0 {
				p.Reloads = atoiOr0(rest[0])
				rest = rest[1:]
			}
			if len(rest) > 0 && strings.HasPrefix(rest[0], "[") {
				// "[failed:" "N]", or "[failed:N]" should HAProxy ever drop the space.
				var cell []string
				for len(rest) > 0 {
					cell = append(cell, rest[0])
					rest = rest[1:]
					if strings.HasSuffix(cell[len(cell)-1], "]") {
						break
					}
				}
				v := strings.TrimSuffix(strings.Join(cell, " "), "]")
				p.FailedReloads = atoiOr0(strings.TrimSpace(v[strings.LastIndexAny(v, "[:")+1:]))
			}
			p.Uptime, p.Version = rowTail(rest)
			out.Master, haveMaster = p, true
		case "workers", "old workers":
			if bad {
				return nil, lineErr("<PID> %q is not a positive number", fields[0])
			}
			if p.Type != "worker" {
				return nil, lineErr("type %q in section %q, want \"worker\"", p.Type, section)
			}
			if seen[pid] {
				return nil, lineErr("PID %d listed twice", pid)
			}
			seen[pid] = true
			p.Leaving = section == "old workers"
			p.Reloads = atoiOr0(fieldAt(fields, 2))
			p.Uptime, p.Version = rowTail(fields[min(3, len(fields)):])
			out.Workers = append(out.Workers, p)
		case "programs", "old programs":
			if bad {
				continue
			}
			p.Leaving = section == "old programs"
			p.Reloads = atoiOr0(fieldAt(fields, 2))
			p.Uptime, p.Version = rowTail(fields[min(3, len(fields)):])
			out.Programs = append(out.Programs, p)
		}
	}
	if !header {
		return nil, errors.New("empty show proc answer")
	}
	if !haveMaster {
		return nil, errors.New("show proc answer without the master's row")
	}
	// Current workers first, whatever the order of the sections.
	cur, old := out.Workers[:0:0], []Proc(nil)
	for _, w := range out.Workers {
		if w.Leaving {
			old = append(old, w)
		} else {
			cur = append(cur, w)
		}
	}
	out.Workers = append(cur, old...)
	return &out, nil
}

// rowTail returns the uptime and version of a row's last columns, leaving
// out what "show proc debug" appends (its columns follow a tab, which
// Fields has removed: they are numbers after the version).
func rowTail(rest []string) (uptime, version string) {
	if len(rest) > 0 {
		uptime = rest[0]
	}
	if len(rest) > 1 {
		version = rest[1]
	}
	return uptime, version
}

func fieldAt(fields []string, i int) string {
	if i < len(fields) {
		return fields[i]
	}
	return ""
}

func atoiOr0(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

// firstLine returns the first line of b, at most 60 bytes of it.
func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 60 {
		b = b[:60]
	}
	return string(b)
}

// WorkerCommand returns the master CLI command that sends cmd to the worker
// (current or leaving) of PID pid: "@!<pid> <cmd>".
func WorkerCommand(pid int, cmd string) string {
	return "@!" + strconv.Itoa(pid) + " " + cmd
}

// ErrWorkerGone is returned (wrapped) by [CheckWorkerAnswer] when the
// master no longer knows the worker: it exited since "show proc" listed it.
var ErrWorkerGone = errors.New("worker gone")

// workerGone starts the master CLI's answer to a command for a PID it does
// not know: "Can't find the target PID matching the prefix '@!1234'".
const workerGone = "Can't find the target PID"

// CheckWorkerAnswer tells whether start, the beginning of a master CLI's
// answer to WorkerCommand(pid, cmd), is the worker's answer: "show info"
// answers start with "Name: ", "show stat" answers with "# pxname,"; other
// commands are not checked. An answer saying that the master does not know
// the PID wraps [ErrWorkerGone]; any other answer ("Permission denied",
// "Unknown command") is an error quoting it.
func CheckWorkerAnswer(pid int, cmd string, start []byte) error {
	var want string
	switch cmd {
	case ShowInfo:
		want = "Name: "
	case ShowStat:
		want = "# pxname,"
	default:
		return nil
	}
	if bytes.HasPrefix(start, []byte(want)) {
		return nil
	}
	if bytes.HasPrefix(start, []byte(workerGone)) {
		return fmt.Errorf("worker %d: %w (the master answered %q)", pid, ErrWorkerGone, firstLine(start))
	}
	return fmt.Errorf("worker %d: answer starts %q, want %q", pid, firstLine(start), want)
}
