package spool

import (
	"strings"
	"testing"
)

func TestWorkerSocketNameRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		master     string
		mpid, pid  int
		leaving    bool
		want       string
		wantPlainS bool
	}{
		{"haproxy-master.sock", 812, 1311, false, "haproxy-master.sock:master-812:worker-1311", false},
		{"haproxy-master.sock", 812, 1250, true, "haproxy-master.sock:master-812:leaving-1250", false},
		{"127.0.0.1:9999", 1, 2, false, "127.0.0.1:9999:master-1:worker-2", false},
		{"::1:9999", 7, 2147483647, true, "::1:9999:master-7:leaving-2147483647", false},
		// A master name that itself looks like a worker's tail.
		{"x:master-1:worker-2", 3, 4, false, "x:master-1:worker-2:master-3:worker-4", false},
		{"m_info", 3, 4, true, "m_info:master-3:leaving-4", false},
	} {
		got := WorkerSocketName(tt.master, tt.mpid, tt.pid, tt.leaving)
		if got != tt.want {
			t.Errorf("WorkerSocketName(%q, %d, %d, %v) = %q, want %q", tt.master, tt.mpid, tt.pid, tt.leaving, got, tt.want)
		}
		want := SocketName{Name: got, Master: tt.master, MasterPID: tt.mpid, PID: tt.pid, Leaving: tt.leaving}
		if p := ParseSocketName(got); p != want || !p.IsWorker() {
			t.Errorf("ParseSocketName(%q) = %+v, want %+v", got, p, want)
		}
		for _, suffix := range []string{InfoSuffix, StatSuffix} {
			sock, s, ok := SplitFileName(got + suffix)
			if !ok || sock != got || s != suffix {
				t.Errorf("SplitFileName(%q) = %q, %q, %v", got+suffix, sock, s, ok)
			}
		}
	}
}

// Names that are not a worker's parse as plain socket names.
func TestParseSocketNamePlain(t *testing.T) {
	for _, name := range []string{
		"admin.sock", "127.0.0.1:5555", "::1:5555", "", "worker-1",
		"m:master-1:worker-", "m:master-1:worker-01", "m:master-01:worker-1",
		"m:master-1:worker-1x", "m:master-:worker-1", ":master-1:worker-2",
		"m:master-1:worker-2147483648", "m:master-1:worker-99999999999",
		"m:master-1:worker--1", "my master:master-1:worker-2", "m/x:master-1:worker-2",
		"m:master-1:leaving-2:", "m:worker-2", "m:master-1:stopping-2", "..:master-1:worker-2",
	} {
		got := ParseSocketName(name)
		if got.IsWorker() || got != (SocketName{Name: name}) {
			t.Errorf("ParseSocketName(%q) = %+v, want a plain name", name, got)
		}
	}
}

func TestSplitFileName(t *testing.T) {
	for _, tt := range []struct {
		file, socket, suffix string
		ok                   bool
	}{
		{"admin.sock_info", "admin.sock", InfoSuffix, true},
		{"127.0.0.1:5555_stat", "127.0.0.1:5555", StatSuffix, true},
		{"x_stat_info", "x_stat", InfoSuffix, true},
		{"_info", "", "", false},
		{"admin.sock", "", "", false},
		{"admin.sock_infos", "", "", false},
	} {
		socket, suffix, ok := SplitFileName(tt.file)
		if socket != tt.socket || suffix != tt.suffix || ok != tt.ok {
			t.Errorf("SplitFileName(%q) = %q, %q, %v, want %q, %q, %v", tt.file, socket, suffix, ok, tt.socket, tt.suffix, tt.ok)
		}
	}
}

func TestValidMasterName(t *testing.T) {
	for _, ok := range []string{"haproxy-master.sock", "127.0.0.1:9999", "::1:9999", "A_z-0.9:"} {
		if err := ValidMasterName(ok); err != nil {
			t.Errorf("ValidMasterName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "my master.sock", "a/b", "fe80::1%eth0:9999", "é", "a\x00", "a\nb"} {
		err := ValidMasterName(bad)
		if err == nil {
			t.Errorf("ValidMasterName(%q) = nil, want an error", bad)
		} else if bad != "" && !strings.Contains(err.Error(), "master name") {
			t.Errorf("ValidMasterName(%q) = %v, want it to name the master name", bad, err)
		}
	}
}

func FuzzParseSocketName(f *testing.F) {
	f.Add("haproxy-master.sock:master-812:worker-1311")
	f.Add("127.0.0.1:9999:master-1:leaving-2")
	f.Add("admin.sock")
	f.Fuzz(func(t *testing.T, name string) {
		p := ParseSocketName(name)
		if p.Name != name {
			t.Fatalf("ParseSocketName(%q).Name = %q", name, p.Name)
		}
		if !p.IsWorker() {
			return
		}
		if p.PID <= 0 || p.MasterPID <= 0 || ValidMasterName(p.Master) != nil {
			t.Fatalf("ParseSocketName(%q) = %+v: invalid fields", name, p)
		}
		if again := WorkerSocketName(p.Master, p.MasterPID, p.PID, p.Leaving); again != name {
			t.Fatalf("ParseSocketName(%q) = %+v, which formats as %q", name, p, again)
		}
	})
}

func TestValidPlainSocketName(t *testing.T) {
	for _, ok := range []string{"admin.sock", "127.0.0.1:5555", "my sock", "m:master-1:worker-01"} {
		if err := ValidPlainSocketName(ok); err != nil {
			t.Errorf("ValidPlainSocketName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a\x00", "m:master-1:worker-2", "m.sock:master-1:leaving-2"} {
		if err := ValidPlainSocketName(bad); err == nil {
			t.Errorf("ValidPlainSocketName(%q) = nil, want an error", bad)
		}
	}
}
