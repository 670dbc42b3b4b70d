package spool

import (
	"fmt"
	"strconv"
	"strings"
)

// File suffixes of the spool layout: a snapshot directory holds
// <socket>_info (the answer to "show info") and <socket>_stat (the answer
// to "show stat") for every socket or worker pulled. Only the suffix tells
// what a file holds; the socket part is a name (see [ParseSocketName]).
const (
	InfoSuffix = "_info"
	StatSuffix = "_stat"
)

// SplitFileName splits the name of a file of a snapshot directory into its
// socket name and its suffix ([InfoSuffix] or [StatSuffix]). ok is false
// for a name with neither suffix, or with nothing before it.
func SplitFileName(file string) (socket, suffix string, ok bool) {
	for _, s := range []string{InfoSuffix, StatSuffix} {
		if socket, found := strings.CutSuffix(file, s); found && socket != "" {
			return socket, s, true
		}
	}
	return "", "", false
}

// ValidPlainSocketName reports why name cannot be a plain stats socket's
// name in the spool (nil when it is fine): it must be a file name (not
// empty, not "." or "..", without "/" or NUL) and must not read as a
// worker's name ([ParseSocketName]), which only a master CLI's workers
// carry.
func ValidPlainSocketName(name string) error {
	if !validFileName(name) {
		return fmt.Errorf("socket name %q is not a file name", name)
	}
	if ParseSocketName(name).IsWorker() {
		return fmt.Errorf("socket name %q reads as a master CLI worker's (<master>:master-<PID>:worker-<PID>): rename the socket", name)
	}
	return nil
}

// CheckFileName returns nil when file may be a file of a snapshot
// directory that carries statistics: a file name ([Pending.Write]'s rule:
// not empty, not "." or "..", without "/" or NUL) of the form
// <socket>_info or <socket>_stat ([SplitFileName]). Otherwise the error
// names the file.
func CheckFileName(file string) error {
	if !validFileName(file) {
		return fmt.Errorf("snapshot file name %q is not a file name", file)
	}
	if _, _, ok := SplitFileName(file); !ok {
		return fmt.Errorf("snapshot file name %q is not <socket>%s or <socket>%s", file, InfoSuffix, StatSuffix)
	}
	return nil
}

// validFileName reports whether name can be a file of a snapshot directory:
// not empty, not "." or "..", without "/" or NUL.
func validFileName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// SocketName is what the name of a socket's files in a snapshot tells.
//
// A plain stats socket (haproxystats-pull's socket-dir and servers) is
// named after its socket file (haproxy.sock) or host:port (127.0.0.1:5555);
// its SocketName has only Name set.
//
// A worker reached through a master CLI ([pull] masters) is named
//
//	<master>:master-<master PID>:worker-<PID>    a current worker
//	<master>:master-<master PID>:leaving-<PID>   a worker that is leaving
//	                                             (an old worker after a reload)
//
// where <master> is the master CLI socket's file name
// (haproxy-master.sock) or host:port (127.0.0.1:9999, ::1:9999 for IPv6),
// made only of the characters A-Z a-z 0-9 _ : . - (see [ValidMasterName]),
// and the PIDs are decimal without leading zeros. For example:
//
//	haproxy-master.sock:master-812:worker-1311_info
//	haproxy-master.sock:master-812:leaving-1250_stat
//	127.0.0.1:9999:master-812:worker-1311_stat
//
// The same worker keeps its PID across rounds and changes from worker- to
// leaving- after a reload; a new master PID means HAProxy itself was
// restarted. PIDs are for telling workers apart, never for metric paths:
// they change at every reload.
type SocketName struct {
	// Name is the whole socket name, as in the file name before the suffix.
	Name string
	// Master is the master's name; empty for a plain stats socket, in which
	// case the fields below are zero.
	Master string
	// MasterPID is the PID of the master process.
	MasterPID int
	// PID is the worker's PID.
	PID int
	// Leaving is true for a worker that was leaving (listed under
	// "# old workers" by "show proc") when the snapshot was pulled.
	Leaving bool
}

// IsWorker reports whether the name is that of a worker reached through a
// master CLI.
func (s SocketName) IsWorker() bool { return s.Master != "" }

// Name components of a worker's socket name.
const (
	masterTag  = ":master-"
	workerTag  = ":worker-"
	leavingTag = ":leaving-"
)

// WorkerSocketName returns the socket name of a worker: see [SocketName].
// It does not check its arguments; [ValidMasterName] checks master.
func WorkerSocketName(master string, masterPID, pid int, leaving bool) string {
	state := workerTag
	if leaving {
		state = leavingTag
	}
	return master + masterTag + strconv.Itoa(masterPID) + state + strconv.Itoa(pid)
}

// ParseSocketName tells what a socket name (a file name without its
// suffix; see [SplitFileName]) says: a worker's name as written by
// [WorkerSocketName] gives Master, MasterPID, PID and Leaving; any other
// name is a plain stats socket's. It never fails: a name that only looks
// like a worker's (a PID with a leading zero, an empty master, a character
// outside the master's set) is a plain name. haproxystats-pull refuses a
// plain socket whose name would parse as a worker's, so in its spool the
// two never mix up.
func ParseSocketName(name string) SocketName {
	plain := SocketName{Name: name}
	var leaving bool
	i := strings.LastIndex(name, workerTag)
	j := strings.LastIndex(name, leavingTag)
	tag := workerTag
	if j > i {
		i, tag, leaving = j, leavingTag, true
	}
	if i < 0 {
		return plain
	}
	pid, ok := parsePID(name[i+len(tag):])
	if !ok {
		return plain
	}
	rest := name[:i]
	k := strings.LastIndex(rest, masterTag)
	if k < 0 {
		return plain
	}
	mpid, ok := parsePID(rest[k+len(masterTag):])
	if !ok {
		return plain
	}
	master := rest[:k]
	if ValidMasterName(master) != nil {
		return plain
	}
	return SocketName{Name: name, Master: master, MasterPID: mpid, PID: pid, Leaving: leaving}
}

// maxPID is the largest PID accepted in a name (pid_t is 32 bits).
const maxPID = 1<<31 - 1

// parsePID parses a positive decimal without sign or leading zero.
func parsePID(s string) (int, bool) {
	if s == "" || len(s) > 10 || s[0] == '0' {
		return 0, false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > maxPID {
		return 0, false
	}
	return n, true
}

// ValidMasterName reports why name cannot name a master CLI socket in the
// spool: it must not be empty and may hold only A-Z a-z 0-9 _ : . -
// (nil when it is fine).
func ValidMasterName(name string) error {
	if name == "" {
		return fmt.Errorf("empty master name")
	}
	if name == "." || name == ".." {
		return fmt.Errorf("master name %q is not a file name", name)
	}
	for i := range len(name) {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_' || c == ':' || c == '.' || c == '-':
		default:
			return fmt.Errorf("master name %q holds %q: only A-Z a-z 0-9 _ : . - are allowed", name, c)
		}
	}
	return nil
}
