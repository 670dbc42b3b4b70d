package engine

import (
	"bytes"
	"context"
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
		"be,s1,\"Layer7, \"\"wrong\"\" status\",5,2\n"+
		"be,s2,plain,6,2\n"))
	tb := &s.Stats
	if tb.Rows() != 2 || len(s.Problems) != 0 {
		t.Fatalf("Rows() = %d, problems %v; want 2 rows, no problem", tb.Rows(), s.Problems)
	}
	if c := tb.Column("scur"); c.Values[0] != 5 || c.Values[1] != 6 {
		t.Errorf("scur = %v, want [5 6]", c.Values)
	}
	if tb.Sv[1] != "s2" || tb.Kind[0] != KindServer {
		t.Errorf("rows after a quoted field: Sv = %v Kind = %v", tb.Sv, tb.Kind)
	}
}

func TestParseStatUnterminatedQuote(t *testing.T) {
	// HAProxy never puts a newline inside a field: a quote still open at
	// the end of the line ends the row there, with a problem naming the
	// file and the line, and the next line is a row of its own; it must not
	// swallow the rest of the file.
	s := parseOne(t, nil, stat("# pxname,svname,last_chk,scur,type\n"+
		"be,s1,\"open,5,2\n"+
		"be,s2,plain,6,2\n"+
		"be,s3,plain,7,2\n"))
	tb := &s.Stats
	if tb.Rows() != 3 {
		t.Fatalf("Rows() = %d, want 3", tb.Rows())
	}
	if c := tb.Column("scur"); !c.Null(0) || c.Values[1] != 6 || c.Values[2] != 7 {
		t.Errorf("scur = %v, want [0 (null) 6 7]", c.Values)
	}
	if len(s.Problems) != 1 || !strings.Contains(s.Problems[0].Error(), "admin1.sock_stat") || !strings.Contains(s.Problems[0].Error(), "line 2") {
		t.Errorf("problems = %v, want one naming admin1.sock_stat and line 2", s.Problems)
	}
}

func TestParseUnsafeNames(t *testing.T) {
	// A name with bytes outside [A-Za-z0-9_.:-] is written with them
	// replaced, and reported once per snapshot, naming file and name.
	s := parseOne(t, nil, stat("# pxname,svname,scur,type\n"+
		"\"x\nforged 666 1600000000\ny\",s1,1,2\n"+
		"a b;c=d,s\u00a0\xff,2,2\n"))
	tb := &s.Stats
	if tb.Rows() < 2 {
		t.Fatalf("Rows() = %d", tb.Rows())
	}
	for i := range tb.Rows() {
		for _, n := range []string{tb.PxName[i], tb.SvName[i]} {
			for _, c := range []byte(n) {
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == ':') {
					t.Errorf("row %d: path name %q holds %q", i, n, c)
				}
			}
		}
	}
	if got := tb.PxName[tb.Rows()-1]; got != "a_b_c_d" {
		t.Errorf("PxName = %q, want a_b_c_d", got)
	}
	found := false
	for _, p := range s.Problems {
		found = found || strings.Contains(p.Error(), "admin1.sock_stat") && strings.Contains(p.Error(), "a b;c=d")
	}
	if !found {
		t.Errorf("problems %v do not name the file and the name", s.Problems)
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

func TestParseInfoDroppedCell(t *testing.T) {
	// One unparsable value drops only that cell, with a problem naming
	// file, key and value; the rows still carry the same keys.
	s := parseOne(t, nil,
		File{Name: "a_info", Data: []byte("CurrConns: 5\nIdle_pct: 90\n")},
		File{Name: "b_info", Data: []byte("CurrConns: lots\nIdle_pct: 80\n")},
	)
	in := &s.Info
	k := in.Key("CurrConns")
	if k < 0 || !in.Has[k][0] || in.Has[k][1] || !in.Dropped[k][1] {
		t.Fatalf("CurrConns has %v dropped %v", in.Has[k], in.Dropped[k])
	}
	if !in.Uniform() {
		t.Error("Uniform() = false: a dropped cell is not a missing key")
	}
	if len(s.Problems) != 1 || !strings.Contains(s.Problems[0].Error(), "b_info") ||
		!strings.Contains(s.Problems[0].Error(), "CurrConns") || !strings.Contains(s.Problems[0].Error(), "lots") {
		t.Errorf("problems = %v, want one naming b_info, CurrConns and lots", s.Problems)
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
			if len(in.Values[k]) != in.Rows() || len(in.Has[k]) != in.Rows() || len(in.Dropped[k]) != in.Rows() {
				t.Fatalf("key %s: %d values for %d rows", in.Keys[k], len(in.Values[k]), in.Rows())
			}
		}
	})
}

// checkTable checks the invariants of a materialised table.
func checkTable(t *testing.T, tb *StatTable) {
	t.Helper()
	if err := tableError(tb); err != nil {
		t.Fatal(err)
	}
}

// tableError reports the first broken invariant of a table or a batch.
func tableError(tb *StatTable) error {
	n := tb.Rows()
	if len(tb.Kind) != n || len(tb.Proc) != n || len(tb.Px) != n || len(tb.Sv) != n || len(tb.PxName) != n ||
		len(tb.SvName) != n || len(tb.PxID) != n || len(tb.SvID) != n {
		return fmt.Errorf("row slices disagree with Rows() = %d", n)
	}
	for _, c := range tb.Columns() {
		if len(c.Values) != n || len(c.NullBitmap()) != (n+63)/64 {
			return fmt.Errorf("column %s has %d values, %d null words for %d rows", c.Name, len(c.Values), len(c.NullBitmap()), n)
		}
		for i, v := range c.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) || (c.Null(i) && v != 0) {
				return fmt.Errorf("column %s row %d = %v null %v", c.Name, i, v, c.Null(i))
			}
		}
		if c.NullCount() > n {
			return fmt.Errorf("column %s: %d nulls for %d rows", c.Name, c.NullCount(), n)
		}
	}
	ids := map[string]uint32{}
	for i, px := range tb.Px {
		if PathName(px) != tb.PxName[i] {
			return fmt.Errorf("row %d: PxName %q for Px %q", i, tb.PxName[i], px)
		}
		for _, p := range []struct {
			name string
			id   uint32
		}{{"p" + tb.PxName[i], tb.PxID[i]}, {"s" + tb.SvName[i], tb.SvID[i]}} {
			if id, ok := ids[p.name]; ok && id != p.id {
				return fmt.Errorf("row %d: name %q numbered %d and %d", i, p.name[1:], id, p.id)
			}
			ids[p.name] = p.id
		}
	}
	return nil
}

func TestParseBigRows(t *testing.T) {
	// More rows than a batch, in several files, with cells left empty in
	// the second file that the first filled: the table is the rows in
	// order, and no cell keeps a value from an earlier batch.
	var files []File
	for f := range 3 {
		var b strings.Builder
		b.WriteString("# pxname,svname,scur,stot,type,\n")
		for i := range 3*batchRows + 17 {
			if f == 1 {
				fmt.Fprintf(&b, "be%d.x,s%d,,,2,\n", i/10, i%7)
			} else {
				fmt.Fprintf(&b, "be%d.x,s%d,%d,%d,2,\n", i/10, i%7, f*100000+i, i)
			}
		}
		files = append(files, File{Name: fmt.Sprintf("p%d_stat", f), Data: []byte(b.String())})
	}
	p := NewParser(nil)
	for round := range 2 {
		s := p.Parse("1", files)
		tb := &s.Stats
		per := 3*batchRows + 17
		if tb.Rows() != 3*per {
			t.Fatalf("Rows() = %d, want %d", tb.Rows(), 3*per)
		}
		for r := range tb.Rows() {
			f, i := r/per, r%per
			scur, stot := tb.Column("scur"), tb.Column("stot")
			if f == 1 {
				if !scur.Null(r) || !stot.Null(r) || scur.Values[r] != 0 {
					t.Fatalf("round %d row %d: empty cells scur %v stot %v", round, r, scur.Values[r], stot.Values[r])
				}
				continue
			}
			if scur.Values[r] != float64(f*100000+i) || scur.Null(r) || tb.Procs[tb.Proc[r]] != fmt.Sprintf("p%d", f) || tb.PxName[r] != fmt.Sprintf("be%d_x", i/10) {
				t.Fatalf("round %d row %d: scur %v px %q proc %q", round, r, scur.Values[r], tb.PxName[r], tb.Procs[tb.Proc[r]])
			}
		}
		checkTable(t, tb)
	}
}

func TestParseLongLine(t *testing.T) {
	// A line longer than the read buffer is skipped with a problem, and
	// the rows around it are read.
	long := strings.Repeat("x", readSize+10)
	s := parseOne(t, nil, stat("# pxname,svname,scur,type\nbe,s1,1,2\nbe,"+long+",2,2\nbe,s3,3,2\n"))
	if s.Stats.Rows() != 2 || s.Stats.Sv[1] != "s3" {
		t.Fatalf("Rows() = %d Sv = %v, want s1 and s3", s.Stats.Rows(), s.Stats.Sv)
	}
	if len(s.Problems) != 1 || !strings.Contains(s.Problems[0].Error(), "longer than") {
		t.Errorf("problems = %v", s.Problems)
	}
}

// kindFold is a Folder reading scur in frontend rows and stot in server
// rows, emitting their sums per proxy: it drives the parser's per-kind
// reading in the fuzz test.
type kindFold struct {
	sums map[string]float64
}

type kindFolder struct{}

func (kindFolder) Columns() []string { return []string{"scur", "stot"} }
func (kindFolder) KindColumns(kind uint8) []string {
	switch kind {
	case KindFrontend:
		return []string{"scur"}
	case KindServer:
		return []string{"stot"}
	}
	return nil
}
func (kindFolder) NewFold() Fold { return &kindFold{} }
func (f *kindFold) Reset(string) { f.sums = map[string]float64{} }
func (f *kindFold) Rows(b *StatTable) {
	if err := tableError(b); err != nil {
		panic(err) // the pipeline returns it as a PanicError
	}
	for r := range b.Rows() {
		for _, c := range b.Columns() {
			f.sums[b.PxName[r]] += c.Values[r]
		}
	}
}
func (f *kindFold) Finish(_ context.Context, _ *Snapshot, emit Emitter) error {
	for name, v := range f.sums {
		emit.Emit(Metric{Scope: ScopeBackend, Object: name, Name: "sum", Value: v})
	}
	return nil
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
	f.Add([]byte("# pxname,svname,scur,stot,type\nfe,FRONTEND,1,2,0\n\"open,s,1,2,2\nbe,s\xff\n1,BACKEND,,,1\n"))
	p, err := NewPipeline(Config{Paths: &Paths{Prefix: "p"}}, StageSpec{Name: "k", Folder: kindFolder{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		files := []File{{Name: "x_stat", Data: data}, {Name: "y_stat", Data: data}}
		for _, cols := range [][]string{nil, {"scur", "a"}} {
			s := NewParser(cols).Parse("1", files)
			checkTable(t, &s.Stats)
		}
		var out bytes.Buffer
		if _, err := p.ProcessFiles(context.Background(), "1", files, &out); err != nil {
			t.Fatal(err)
		}
		for l := range strings.Lines(out.String()) {
			if f := strings.Split(strings.TrimSuffix(l, "\n"), " "); len(f) != 3 || f[2] != "1" || f[0] == "" {
				t.Fatalf("malformed line %q", l)
			}
		}
	})
}

func TestParseStatHeaderKept(t *testing.T) {
	// The parser keeps the last header it split for the files after it:
	// a repeated field name's first occurrence still wins, in a file that
	// reuses the header as in the first; a header past maxHeaderKept (only
	// broken or hostile input has one) is not kept by the work value.
	header := "# pxname,svname,scur,scur,type,\n"
	s := parseOne(t, nil, File{Name: "a_stat", Data: []byte(header + "b,s1,5,7,2,\n")}, File{Name: "b_stat", Data: []byte(header + "b,s2,6,8,2,\n")})
	if c := s.Stats.Column("scur"); c == nil || c.Values[0] != 5 || c.Values[1] != 6 {
		t.Errorf("scur = %+v, want 5 and 6 (the first of the two fields)", c)
	}
	p := NewParser(nil).p
	w := p.newWork() // one work value, as a worker's from snapshot to snapshot
	for _, c := range []struct {
		header string
		kept   bool
	}{
		{header, true},
		{"# pxname,svname,type" + strings.Repeat(",", maxHeaderKept) + "\n", false},
		{header, true},
	} {
		if _, _, err := p.readAll(context.Background(), w, "100", memFiles([]File{stat(c.header + "b,s1,5,7,2,\n")})); err != nil {
			t.Fatal(err)
		}
		if kept := w.stat.hdr != nil; kept != c.kept || cap(w.stat.hdr) > maxHeaderKept {
			t.Errorf("a header of %d bytes kept: %v (%d bytes of room), want %v", len(c.header), kept, cap(w.stat.hdr), c.kept)
		}
	}
}
