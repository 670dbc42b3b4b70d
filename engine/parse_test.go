package engine

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parseOne(t testing.TB, columns []string, files ...File) *Snapshot {
	t.Helper()
	return NewParser(columns).Parse("1795507783", files)
}

func stat(data string) File { return File{Name: "admin1.sock_stat", Data: []byte(data)} }

func TestParseStatColumnsByName(t *testing.T) {
	// Two files with the columns in different orders and one column (rtime)
	// present in only one of them: columns are matched by header name and
	// rows of the file without it are null.
	s := parseOne(t, nil,
		File{Name: "a_stat", Data: []byte("# pxname,svname,scur,type,rtime,\nfe,FRONTEND,3,0,,\nbe,s1,1,2,7,\n")},
		File{Name: "b_stat", Data: []byte("# svname,type,pxname,scur\nBACKEND,1,be,4\n")},
	)
	tb := &s.Stats
	if tb.Rows() != 3 {
		t.Fatalf("Rows() = %d, want 3", tb.Rows())
	}
	wantKind := []uint8{KindFrontend, KindServer, KindBackend}
	for i, k := range wantKind {
		if tb.Kind[i] != k {
			t.Errorf("Kind[%d] = %d, want %d", i, tb.Kind[i], k)
		}
	}
	if got := tb.Px; strings.Join(got, ",") != "fe,be,be" {
		t.Errorf("Px = %v", got)
	}
	scur := tb.Column("scur")
	if scur == nil || scur.Values[0] != 3 || scur.Values[1] != 1 || scur.Values[2] != 4 {
		t.Fatalf("scur = %+v", scur)
	}
	rtime := tb.Column("rtime")
	if !rtime.Null(0) || rtime.Null(1) || !rtime.Null(2) || rtime.Values[1] != 7 || rtime.Values[2] != 0 {
		t.Errorf("rtime values %v nulls %v %v %v", rtime.Values, rtime.Null(0), rtime.Null(1), rtime.Null(2))
	}
	if n := rtime.NullCount(); n != 2 {
		t.Errorf("rtime.NullCount() = %d, want 2", n)
	}
	if tb.Column("") != nil {
		t.Error("the empty column of the trailing comma was materialised")
	}
	if tb.Procs[tb.Proc[2]] != "b" {
		t.Errorf("row 2 comes from %q, want b", tb.Procs[tb.Proc[2]])
	}
}

func TestParseStatOnlyWantedColumns(t *testing.T) {
	s := parseOne(t, []string{"scur"}, stat("# pxname,svname,scur,stot,status,type\nbe,s1,1,2,UP,2\n"))
	if s.Stats.Column("scur") == nil || s.Stats.Column("stot") != nil || s.Stats.Column("status") != nil {
		t.Errorf("columns = %v, want only scur", names(s.Stats.Columns()))
	}
	if s.Stats.Kind[0] != KindServer {
		t.Errorf("type is read even when not asked for: Kind = %d", s.Stats.Kind[0])
	}
}

func names(cols []*Column) []string {
	var out []string
	for _, c := range cols {
		out = append(out, c.Name)
	}
	return out
}

func TestParseStatCells(t *testing.T) {
	s := parseOne(t, nil, stat("# pxname,svname,a,b,c,d,e,type\r\n"+
		"be,s1,-1,1.5,UP,,1e3,2\r\n"))
	tb := &s.Stats
	for _, tc := range []struct {
		col  string
		want float64
		null bool
	}{
		{"a", -1, false}, {"b", 1.5, false}, {"c", 0, true}, {"d", 0, true}, {"e", 1000, false},
	} {
		c := tb.Column(tc.col)
		if c.Values[0] != tc.want || c.Null(0) != tc.null {
			t.Errorf("column %s = %v null %v, want %v null %v", tc.col, c.Values[0], c.Null(0), tc.want, tc.null)
		}
	}
	if tb.Kind[0] != KindServer {
		t.Errorf("CRLF line: Kind = %d, want server", tb.Kind[0])
	}
}

func TestParseStatQuoted(t *testing.T) {
	s := parseOne(t, nil, stat("# pxname,svname,last_chk,scur,type\n"+
		"be,s1,\"Layer7, \"\"wrong\"\"\nstatus\",5,2\n"+
		"be,s2,plain,6,2\n"))
	tb := &s.Stats
	if tb.Rows() != 2 {
		t.Fatalf("Rows() = %d, want 2 (a quoted field spans a newline)", tb.Rows())
	}
	if c := tb.Column("scur"); c.Values[0] != 5 || c.Values[1] != 6 {
		t.Errorf("scur = %v, want [5 6]", c.Values)
	}
	if tb.Sv[1] != "s2" || tb.Kind[0] != KindServer {
		t.Errorf("rows after a quoted field: Sv = %v Kind = %v", tb.Sv, tb.Kind)
	}
}

func TestParseStatTruncated(t *testing.T) {
	s := parseOne(t, nil, stat("# pxname,svname,scur,stot,type\nfe,FRONTEND,1,2,0\nbe,s1,4"))
	tb := &s.Stats
	if tb.Rows() != 2 {
		t.Fatalf("Rows() = %d, want 2", tb.Rows())
	}
	if c := tb.Column("scur"); c.Values[1] != 4 || c.Null(1) {
		t.Errorf("partial row keeps its present cells: scur = %v", c.Values)
	}
	if c := tb.Column("stot"); !c.Null(1) {
		t.Error("missing cell of the partial row is not null")
	}
	if tb.Kind[1] != KindOther {
		t.Errorf("partial row without type: Kind = %d, want other", tb.Kind[1])
	}
}

func TestParseStatRejectsAndSkips(t *testing.T) {
	s := parseOne(t, nil,
		File{Name: "a_stat", Data: []byte("Unknown command. Please enter one of the following commands only :\n  help : this message\n")},
		File{Name: "b_stat", Data: []byte("\n")},
		File{Name: "c_stat", Data: []byte("# pxname,svname,scur\n")},
		File{Name: "d_stat", Data: []byte("# foo,bar\n1,2\n")},
		File{Name: "e_stat", Data: []byte("# pxname,svname,scur,type\nfe,FRONTEND,1,0\n")},
	)
	if s.Stats.Rows() != 1 || s.StatFiles != 5 {
		t.Errorf("Rows() = %d StatFiles = %d, want 1 and 5", s.Stats.Rows(), s.StatFiles)
	}
	if s.Rejected != 2 {
		t.Errorf("Rejected = %d, want 2 (a_stat, d_stat)", s.Rejected)
	}
	var rejected []string
	for _, err := range s.Problems {
		var fe *FileError
		if !errors.As(err, &fe) {
			t.Fatalf("problem %v is not a *FileError", err)
		}
		if errors.Is(err, ErrNotCSV) {
			rejected = append(rejected, fe.File)
		}
		if !strings.HasPrefix(err.Error(), fe.File+": ") {
			t.Errorf("error %q does not start with the file name", err)
		}
	}
	if strings.Join(rejected, ",") != "a_stat,d_stat" {
		t.Errorf("rejected files = %v, want a_stat,d_stat", rejected)
	}
	if len(s.Problems) != 3 {
		t.Errorf("problems = %v, want 3 (two rejected, one empty)", s.Problems)
	}
}

func TestParseInfo(t *testing.T) {
	s := parseOne(t, nil,
		File{Name: "admin1.sock_info", Data: []byte("Name: HAProxy\nVersion: 2.6.12\nProcess_num: 1\nIdle_pct: 97\nUptime_sec: 1_000\nTasks: +5\nBad: 1__0\nMaxconn:  42 \r\nNo value\n")},
		File{Name: "admin2.sock_info", Data: []byte("Unknown command. Please enter one of the following commands only :\n  help : this message\n")},
		File{Name: "admin3.sock_info", Data: []byte("Process_num: 3\nIdle_pct: 50\nTasks: -1\nMaxconn: 1\nUptime_sec: 2")},
	)
	in := &s.Info
	if s.InfoFiles != 3 || in.Rows() != 2 {
		t.Fatalf("InfoFiles = %d Rows() = %d, want 3 and 2 (a file without integers adds no row)", s.InfoFiles, in.Rows())
	}
	if strings.Join(in.Procs, ",") != "admin1.sock,admin3.sock" {
		t.Errorf("Procs = %v", in.Procs)
	}
	want := map[string][]int64{"Process_num": {1, 3}, "Idle_pct": {97, 50}, "Uptime_sec": {1000, 2}, "Tasks": {5, -1}, "Maxconn": {42, 1}}
	if len(in.Keys) != len(want) {
		t.Errorf("Keys = %v, want %d keys", in.Keys, len(want))
	}
	for key, vals := range want {
		k := in.Key(key)
		if k < 0 {
			t.Errorf("key %s missing", key)
			continue
		}
		for row, v := range vals {
			if in.Values[k][row] != v || !in.Has[k][row] {
				t.Errorf("%s[%d] = %d (has %v), want %d", key, row, in.Values[k][row], in.Has[k][row], v)
			}
		}
	}
	if !in.Uniform() {
		t.Error("Uniform() = false for two rows with the same keys")
	}
	s = parseOne(t, nil, File{Name: "a_info", Data: []byte("A: 1\n")}, File{Name: "b_info", Data: []byte("B: 1\n")})
	if s.Info.Uniform() {
		t.Error("Uniform() = true for rows with different keys")
	}
}

func TestParseNumber(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0", 0, true}, {"123", 123, true}, {"-1", -1, true}, {"0.5", 0.5, true}, {"1e3", 1000, true},
		{"", 0, false}, {"UP", 0, false}, {"-", 0, false}, {"nan", 0, false}, {"inf", 0, false}, {"NaN", 0, false},
		{"12345678901234567890", 12345678901234567890, true}, {" 7 ", 7, true},
	} {
		got, ok := parseNumber([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseNumber(%q) = %v, %v, want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParsePyInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1", 1, true}, {" 42\n", 42, true}, {"+5", 5, true}, {"-3", -3, true}, {"1_000", 1000, true},
		{"1__0", 0, false}, {"_1", 0, false}, {"1_", 0, false}, {"1.0", 0, false}, {"", 0, false},
		{"0d 0h01m", 0, false}, {"99999999999999999999", 0, false},
	} {
		got, ok := parsePyInt([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parsePyInt(%q) = %v, %v, want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// corpusFiles returns the files of a conformance snapshot.
func corpusFiles(t testing.TB, c string) []File {
	t.Helper()
	dir := filepath.Join("..", "testdata", "conformance", c, "incoming")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files, err := ReadDir(filepath.Join(dir, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestParseLayouts(t *testing.T) {
	// HAProxy 1.6 (62 fields and a trailing comma) and 2.6.12 (128).
	for _, tc := range []struct {
		c      string
		fields int
	}{{"csv62-custom-metrics", 62}, {"medium-defaults", 128}} {
		s := parseOne(t, nil, corpusFiles(t, tc.c)...)
		// pxname, svname and type are key columns, not numeric ones.
		if n := len(s.Stats.Columns()) + 3; n != tc.fields {
			t.Errorf("%s: %d columns, want %d", tc.c, n+0, tc.fields)
		}
		if len(s.Problems) != 0 {
			t.Errorf("%s: problems %v", tc.c, s.Problems)
		}
	}
	// A later version appends fields: they are columns like any other.
	s := parseOne(t, nil, stat("# pxname,svname,scur,type,new_field_3_2,\nbe,s,1,2,9,\n"))
	if c := s.Stats.Column("new_field_3_2"); c == nil || c.Values[0] != 9 {
		t.Errorf("new field not read: %+v", c)
	}
}

func TestParseSteadyStateAllocations(t *testing.T) {
	// Allocations per snapshot must not grow with the number of rows: the
	// same snapshot with every stat file repeated four times allocates as
	// much as the original (the info table allocates per key, not per row).
	files := corpusFiles(t, "medium-defaults")
	var big []File
	for _, f := range files {
		if strings.HasSuffix(f.Name, StatSuffix) {
			data := append([]byte(nil), f.Data...)
			body := f.Data[strings.IndexByte(string(f.Data), '\n')+1:]
			for range 4 {
				data = append(data, body...)
			}
			f.Data = data
		}
		big = append(big, f)
	}
	measure := func(files []File) (float64, int) {
		p := NewParser([]string{"scur", "stot", "bin", "bout", "lbtot", "rtime"})
		rows := p.Parse("1", files).Stats.Rows()
		p.Release(p.Parse("1", files))
		return testing.AllocsPerRun(20, func() { p.Release(p.Parse("1", files)) }), rows
	}
	small, rows := measure(files)
	large, bigRows := measure(big)
	t.Logf("%v allocations for %d rows, %v for %d rows", small, rows, large, bigRows)
	if bigRows < 4*rows {
		t.Fatalf("the large snapshot has %d rows, want more than %d", bigRows, 4*rows)
	}
	if large > small+2 {
		t.Errorf("Parse allocates %v times for %d rows and %v for %d rows: allocations grow with rows", small, rows, large, bigRows)
	}
}

func FuzzParseStat(f *testing.F) {
	for _, c := range []string{"dev4-defaults", "csv62-custom-metrics", "truncated-stat", "garbage-stat", "blank-stat"} {
		for _, file := range corpusFiles(f, c) {
			if strings.HasSuffix(file.Name, StatSuffix) && len(file.Data) < 64<<10 {
				f.Add(file.Data)
			}
		}
	}
	f.Add([]byte("# pxname,svname,a,type\n\"x,\"\"y\",s,1,2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, cols := range [][]string{nil, {"scur", "a"}} {
			s := NewParser(cols).Parse("1", []File{{Name: "x_stat", Data: data}, {Name: "y_stat", Data: data}})
			checkTable(t, &s.Stats)
		}
	})
}

func checkTable(t *testing.T, tb *StatTable) {
	n := tb.Rows()
	if len(tb.Kind) != n || len(tb.Proc) != n || len(tb.Px) != n || len(tb.Sv) != n || len(tb.PxName) != n || len(tb.SvName) != n {
		t.Fatalf("row slices disagree with Rows() = %d", n)
	}
	for _, c := range tb.Columns() {
		if len(c.Values) != n || len(c.NullBitmap()) != (n+63)/64 {
			t.Fatalf("column %s has %d values, %d null words for %d rows", c.Name, len(c.Values), len(c.NullBitmap()), n)
		}
		for i, v := range c.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) || (c.Null(i) && v != 0) {
				t.Fatalf("column %s row %d = %v null %v", c.Name, i, v, c.Null(i))
			}
		}
		if c.NullCount() > n {
			t.Fatalf("column %s: %d nulls for %d rows", c.Name, c.NullCount(), n)
		}
	}
	for i, px := range tb.Px {
		if strings.Contains(tb.PxName[i], ".") || GraphiteName(px) != tb.PxName[i] {
			t.Fatalf("row %d: PxName %q for Px %q", i, tb.PxName[i], px)
		}
	}
}

func FuzzParseInfo(f *testing.F) {
	for _, c := range []string{"dev4-defaults", "garbage-info", "no-zlib-info"} {
		for _, file := range corpusFiles(f, c) {
			if strings.HasSuffix(file.Name, InfoSuffix) {
				f.Add(file.Data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewParser(nil).Parse("1", []File{{Name: "a_info", Data: data}, {Name: "b_info", Data: []byte("Idle_pct: 5\n")}})
		in := &s.Info
		for k := range in.Keys {
			if len(in.Values[k]) != in.Rows() || len(in.Has[k]) != in.Rows() {
				t.Fatalf("key %s: %d values for %d rows", in.Keys[k], len(in.Values[k]), in.Rows())
			}
		}
	})
}

func TestParseParallelMatchesSequential(t *testing.T) {
	// Large enough for the concurrent path; the middle file has a quoted
	// field spanning two lines, so its range must be compacted.
	var files []File
	for f := 0; f < 4; f++ {
		var b strings.Builder
		b.WriteString("# pxname,svname,last_chk,scur,stot,type,\n")
		for i := 0; i < parallelRows/2; i++ {
			chk := "ok"
			if f == 1 && i == 10 {
				chk = "\"two\nlines, \"\"quoted\"\"\""
			}
			fmt.Fprintf(&b, "be%d.x,s%d,%s,%d,,2,\n", f, i%7, chk, f*100000+i)
		}
		b.WriteString("\n")
		files = append(files, File{Name: fmt.Sprintf("p%d_stat", f), Data: []byte(b.String())})
	}
	p := NewParser(nil)
	for round := 0; round < 2; round++ { // the second round reuses recycled memory
		s := p.Parse("1", files)
		tb := &s.Stats
		if tb.Rows() != 4*(parallelRows/2) {
			t.Fatalf("Rows() = %d, want %d", tb.Rows(), 4*(parallelRows/2))
		}
		row := 0
		for f, file := range files {
			one := NewParser(nil).Parse("1", []File{file}).Stats
			for i := 0; i < one.Rows(); i++ {
				if tb.PxName[row] != one.PxName[i] || tb.Sv[row] != one.Sv[i] || tb.Kind[row] != one.Kind[i] ||
					tb.Column("scur").Values[row] != one.Column("scur").Values[i] || !tb.Column("stot").Null(row) ||
					tb.Column("scur").Null(row) || tb.Procs[tb.Proc[row]] != fmt.Sprintf("p%d", f) {
					t.Fatalf("round %d: row %d (file %d row %d) differs from parsing the file alone", round, row, f, i)
				}
				row++
			}
		}
		if n := tb.Column("stot").NullCount(); n != tb.Rows() {
			t.Errorf("stot NullCount() = %d, want %d", n, tb.Rows())
		}
		checkTable(t, tb)
		p.Release(s)
	}
}

func TestParseReuseClearsPreviousSnapshot(t *testing.T) {
	// A recycled parser must not leak the previous snapshot's cells into
	// empty cells of the next one, on the sequential and the concurrent
	// path alike.
	gen := func(rows int, full bool) []File {
		var files []File
		for f := 0; f < 2; f++ {
			var b strings.Builder
			b.WriteString("# pxname,svname,scur,stot,type,\n")
			for i := 0; i < rows; i++ {
				if full {
					fmt.Fprintf(&b, "be%d,s%d,%d,%d,2,\n", i/10, i, i+1, i+2)
				} else {
					fmt.Fprintf(&b, ",s%d,,,,\n", i)
				}
			}
			files = append(files, File{Name: fmt.Sprintf("p%d_stat", f), Data: []byte(b.String())})
		}
		return files
	}
	for _, rows := range []int{5, parallelRows} {
		p := NewParser(nil)
		p.Release(p.Parse("1", gen(rows, true)))
		s := p.Parse("2", gen(rows, false))
		tb := &s.Stats
		if tb.Rows() != 2*rows {
			t.Fatalf("%d rows per file: Rows() = %d, want %d", rows, tb.Rows(), 2*rows)
		}
		for i := range tb.Rows() {
			if tb.Px[i] != "" || tb.PxName[i] != "" || tb.Kind[i] != 0 {
				t.Fatalf("%d rows per file: row %d keeps Px %q PxName %q Kind %d from the previous snapshot", rows, i, tb.Px[i], tb.PxName[i], tb.Kind[i])
			}
			for _, name := range []string{"scur", "stot"} {
				if c := tb.Column(name); !c.Null(i) || c.Values[i] != 0 {
					t.Fatalf("%d rows per file: %s row %d = %v (null %v), want empty", rows, name, i, c.Values[i], c.Null(i))
				}
			}
		}
		checkTable(t, tb)
	}
}
