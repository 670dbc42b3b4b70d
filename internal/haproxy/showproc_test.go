package haproxy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseShowProcVersions(t *testing.T) {
	const v26 = "2.6.12-1+deb12u4"
	w := func(pid, reloads int, uptime, version string, leaving bool) Proc {
		return Proc{PID: pid, Type: "worker", Reloads: reloads, Uptime: uptime, Version: version, Leaving: leaving}
	}
	prog := func(pid int, name string, reloads int, uptime string, leaving bool) Proc {
		return Proc{PID: pid, Type: name, Reloads: reloads, Uptime: uptime, Version: "-", Leaving: leaving}
	}
	master := func(pid, reloads, failed int, uptime, version string) Proc {
		return Proc{PID: pid, Type: "master", Reloads: reloads, FailedReloads: failed, Uptime: uptime, Version: version}
	}
	for _, tt := range []struct {
		file string
		want ProcList
	}{
		{"2.6-debian-old-worker.txt", ProcList{
			Master:  master(21715, 2, 0, "0d00h00m04s", v26),
			Workers: []Proc{w(21938, 0, "0d00h00m01s", v26, false), w(21743, 2, "0d00h00m04s", v26, true)},
		}},
		{"2.6-debian-program.txt", ProcList{
			Master:   master(22148, 1, 0, "0d00h00m03s", v26),
			Workers:  []Proc{w(22238, 0, "0d00h00m01s", v26, false), w(22181, 1, "0d00h00m03s", v26, true)},
			Programs: []Proc{prog(22237, "sleeper", 0, "0d00h00m01s", false)},
		}},
		{"2.6-debian-failed-reload.txt", ProcList{
			Master:   master(22148, 2, 1, "0d00h00m05s", v26),
			Workers:  []Proc{w(22238, 1, "0d00h00m03s", v26, false), w(22181, 2, "0d00h00m05s", v26, true)},
			Programs: []Proc{prog(22237, "sleeper", 1, "0d00h00m03s", false)},
		}},
		{"2.8-old-workers-wide-reloads.txt", ProcList{
			Master: master(812, 9120, 2, "150d01h02m03s", "2.8.5-1~bpo12+1"),
			Workers: []Proc{
				w(600001, 0, "0d00h09m59s", "2.8.5-1~bpo12+1", false),
				w(599000, 31, "0d02h00m10s", "2.8.5-1~bpo12+1", true),
				w(598123, 208, "0d18h00m00s", "2.8.5-1~bpo12+1", true),
			},
		}},
		{"3.0-programs.txt", ProcList{
			Master:   master(1162, 0, 0, "0d00h02m07s", "3.0.7"),
			Workers:  []Proc{w(1271, 0, "0d00h02m07s", "3.0.7", false)},
			Programs: []Proc{prog(1244, "foo", 0, "0d00h02m07s", false), prog(1255, "bar", 0, "0d00h02m07s", false)},
		}},
		{"3.2-old-workers.txt", ProcList{
			Master:  master(3001, 12, 3, "1d02h03m04s", "3.2.4"),
			Workers: []Proc{w(3999, 0, "0d00h00m09s", "3.2.4", false), w(3512, 4, "0d00h40m00s", "3.2.3", true)},
		}},
		{"3.2-debug.txt", ProcList{
			Master:  master(3001, 12, 3, "1d02h03m04s", "3.2.4"),
			Workers: []Proc{w(3999, 0, "0d00h00m09s", "3.2.4", false)},
		}},
		{"3.4-old-workers.txt", ProcList{
			Master: master(41, 3, 0, "0d01h00m00s", "3.4.0"),
			Workers: []Proc{
				w(4444, 0, "0d00h10m00s", "3.4.0", false),
				w(4300, 1, "0d00h30m00s", "3.4.0", true),
				w(4200, 2, "0d00h50m00s", "3.4.0", true),
			},
		}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "showproc", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseShowProc(data)
			if err != nil {
				t.Fatalf("ParseShowProc = %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("ParseShowProc =\n%+v\nwant\n%+v", *got, tt.want)
			}
		})
	}
}

func TestParseShowProcErrors(t *testing.T) {
	const header = "#<PID>          <type>          <reloads>       <uptime>        <version>      \n"
	const masterRow = "10              master          0 [failed: 0]   0d00h00m01s     2.6\n"
	for _, tt := range []struct{ name, answer, want string }{
		{"empty", "", "empty"},
		{"blank", "\n\n", "empty"},
		{"plain stats socket", "Unknown command, but maybe one of the following ones is a better match:\n  show info\n", `not a master CLI's show proc answer: it starts "Unknown command`},
		{"permission", "Permission denied\n\n", "not a master CLI"},
		{"no master", header + "# workers\n11 worker 0 0d 2.6\n", "without the master's row"},
		{"header only", header, "without the master's row"},
		{"two masters", header + masterRow + masterRow, "want the master's row"},
		{"bad pid", header + masterRow + "# workers\nx1 worker 0 0d00h00m01s 2.6\n", `<PID> "x1" is not a positive number`},
		{"zero pid", header + masterRow + "# workers\n0 worker 0 0d00h00m01s 2.6\n", "not a positive number"},
		{"type", header + masterRow + "# old workers\n12 program 0 0d00h00m01s 2.6\n", `type "program" in section "old workers"`},
		{"twice", header + masterRow + "# workers\n12 worker 0 a b\n# old workers\n12 worker 1 a b\n", "PID 12 listed twice"},
		{"short", header + masterRow + "# workers\n12\n", "want at least <PID> <type>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseShowProc([]byte(tt.answer))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseShowProc(%q) = %+v, %v, want an error containing %q", tt.answer, got, err, tt.want)
			}
		})
	}
}

// Sections in an unexpected order, an unknown section, odd cosmetic
// columns: the workers are still found, current ones first.
func TestParseShowProcTolerant(t *testing.T) {
	answer := "#<PID> <type> <reloads> <uptime> <version>\n" +
		"10 master 7 [failed:1] 1d 3.9\n" +
		"# old workers\n" +
		"20 worker x\n" +
		"# something new\n" +
		"99 whatever\n" +
		"not a row\n" +
		"# workers\n" +
		"30 worker 0 0d00h00m01s 3.9\t\t 5 6\n"
	got, err := ParseShowProc([]byte(answer))
	if err != nil {
		t.Fatalf("ParseShowProc = %v", err)
	}
	want := ProcList{
		Master: Proc{PID: 10, Type: "master", Reloads: 7, FailedReloads: 1, Uptime: "1d", Version: "3.9"},
		Workers: []Proc{
			{PID: 30, Type: "worker", Uptime: "0d00h00m01s", Version: "3.9"},
			{PID: 20, Type: "worker", Leaving: true},
		},
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("ParseShowProc =\n%+v\nwant\n%+v", *got, want)
	}
}

func FuzzParseShowProc(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "showproc", "*.txt"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseShowProc(data)
		if err != nil {
			return
		}
		if got.Master.PID <= 0 || got.Master.Type != "master" {
			t.Fatalf("master %+v", got.Master)
		}
		seen := map[int]bool{}
		leaving := false
		for _, w := range got.Workers {
			if w.PID <= 0 || w.Type != "worker" || seen[w.PID] || (leaving && !w.Leaving) {
				t.Fatalf("workers %+v", got.Workers)
			}
			seen[w.PID] = true
			leaving = w.Leaving
		}
	})
}
