package snaprecord

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const testHost = "lb1.example.com"

// corpusSnapshots returns every snapshot directory of the conformance
// corpus.
func corpusSnapshots(t testing.TB) []string {
	t.Helper()
	dirs, err := filepath.Glob("../../testdata/conformance/*/incoming/*")
	if err != nil || len(dirs) < 20 {
		t.Fatalf("conformance corpus: %d snapshot directories (%v)", len(dirs), err)
	}
	return dirs
}

// snapshotFiles reads the files of dir that a record carries.
func snapshotFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if checkName(e.Name()) != nil || !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = data
	}
	return out
}

// sameFiles fails unless dir holds exactly want.
func sameFiles(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	got := snapshotFiles(t, dir)
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(want) || len(got) != len(want) {
		t.Errorf("%s holds %d entries, want the %d files", dir, len(entries), len(want))
	}
	for name, data := range want {
		if !bytes.Equal(got[name], data) {
			t.Errorf("%s/%s: %d bytes differ from the %d bytes encoded", dir, name, len(got[name]), len(data))
		}
	}
}

// TestRoundTripCorpus encodes every snapshot of the conformance corpus,
// parses it and writes it out again: the same files, byte for byte, with
// the host and the epoch.
func TestRoundTripCorpus(t *testing.T) {
	for _, dir := range corpusSnapshots(t) {
		want := snapshotFiles(t, dir)
		value, err := EncodeDir(dir, Origin{Host: testHost}, DefaultMaxBytes)
		if err != nil {
			t.Fatalf("EncodeDir(%s): %v", dir, err)
		}
		r, err := Parse(value, Limits{})
		if err != nil {
			t.Fatalf("Parse(EncodeDir(%s)): %v", dir, err)
		}
		var total int64
		for _, data := range want {
			total += int64(len(data))
		}
		if r.Host != testHost || r.Epoch != filepath.Base(dir) || r.Files != len(want) || r.DataBytes != total || r.Size() != len(value) {
			t.Errorf("Parse(EncodeDir(%s)) = host %q epoch %q, %d files of %d bytes; want %q %q, %d files of %d bytes",
				dir, r.Host, r.Epoch, r.Files, r.DataBytes, testHost, filepath.Base(dir), len(want), total)
		}
		out := t.TempDir()
		path, err := r.WriteDir(out)
		if err != nil || path != filepath.Join(out, r.Epoch) {
			t.Fatalf("WriteDir = %q, %v", path, err)
		}
		sameFiles(t, path, want)
	}
}

// TestLayout builds the record of a two-file snapshot byte by byte as the
// package documentation describes it and compares it with EncodeDir's.
func TestLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "1795507862")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := []struct{ name, data string }{
		{"a.sock_info", "Name: HAProxy\n"},
		{"a.sock_stat", "# pxname,svname\nfe,FRONTEND\n"},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Ignored: not a snapshot file, a directory, a FIFO.
	os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(dir, "b.sock_stat"), 0o755)
	if err := syscall.Mkfifo(filepath.Join(dir, "c.sock_info"), 0o644); err != nil {
		t.Fatal(err)
	}

	var want []byte
	want = append(want, 'H', 'S', 'S', 'N', 1)
	want = append(want, byte(len("lb1")))
	want = append(want, "lb1"...)
	want = append(want, 10)
	want = append(want, "1795507862"...)
	want = append(want, 0, 0, 0, 2)
	for _, f := range files {
		want = append(want, byte(len(f.name)))
		want = append(want, f.name...)
		want = binary.BigEndian.AppendUint32(want, uint32(len(f.data)))
		want = append(want, f.data...)
	}
	want = binary.BigEndian.AppendUint32(want, crc32.Checksum(want, crc32.MakeTable(crc32.Castagnoli)))

	got, err := EncodeDir(dir, Origin{Host: "lb1"}, DefaultMaxBytes)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("EncodeDir =\n%q\nwant\n%q", got, want)
	}
	if _, err := EncodeDir(dir, Origin{Host: "lb1"}, int64(len(want)-1)); !isTooLarge(err, int64(len(want))) {
		t.Errorf("EncodeDir with a limit of %d = %v, want a *TooLargeError of %d bytes", len(want)-1, err, len(want))
	}
	if _, err := EncodeDir(dir, Origin{Host: "lb1"}, int64(len(want))); err != nil {
		t.Errorf("EncodeDir with a limit of exactly %d bytes = %v", len(want), err)
	}
}

func isTooLarge(err error, size int64) bool {
	var tl *TooLargeError
	return errors.As(err, &tl) && tl.Size == size && strings.Contains(err.Error(), "max-snapshot-bytes")
}

// validRecord is the record of a small snapshot with three files.
func validRecord(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	enc, err := NewEncoder(&b, Origin{Host: "lb-2_x.example"}, "1700000000", 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ name, data string }{
		{"haproxy-master.sock:master-1:worker-2_info", "Name: HAProxy\nPid: 2\n"},
		{"haproxy-master.sock:master-1:worker-2_stat", "# pxname,svname\n"},
		{"x_stat", ""},
	} {
		if err := enc.Add(f.name, int64(len(f.data)), strings.NewReader(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// resum recomputes the checksum of a modified record, so that the check
// under test is the layout's, not the checksum's.
func resum(v []byte) []byte {
	v = bytes.Clone(v)
	if len(v) >= 4 {
		binary.BigEndian.PutUint32(v[len(v)-4:], crc32.Checksum(v[:len(v)-4], castagnoli))
	}
	return v
}

// TestParseRefuses: each broken record is refused with an error saying
// what is wrong, never a panic.
func TestParseRefuses(t *testing.T) {
	good := validRecord(t)
	if _, err := Parse(good, Limits{}); err != nil {
		t.Fatalf("Parse(valid) = %v", err)
	}
	hostAt := 6 // first byte of the host name
	nameAt := func(name string) int { return bytes.Index(good, []byte(name)) }
	set := func(at int, b ...byte) []byte {
		v := bytes.Clone(good)
		copy(v[at:], b)
		return resum(v)
	}
	countAt := hostAt + len("lb-2_x.example") + 1 + len("1700000000")
	flipped := bytes.Clone(good)
	flipped[nameAt("Pid: 2")] ^= 0x20 // content changed, checksum kept
	for _, tt := range []struct {
		name  string
		value []byte
		lim   Limits
		want  string // in the error
		is    error
	}{
		{"empty", nil, Limits{}, `first bytes ""`, ErrNotSnapshot},
		{"other magic", append([]byte("HSSX"), good[4:]...), Limits{}, `first bytes "HSSX"`, ErrNotSnapshot},
		{"graphite lines", []byte("a.b 1 1700000000\n"), Limits{}, `first bytes "a.b "`, ErrNotSnapshot},
		{"magic only", []byte("HSSN"), Limits{}, "truncated before the version", ErrCorrupt},
		{"version 3", set(4, 3), Limits{}, "version 3 is not supported", nil},
		{"version 2 without its cluster", set(4, 2), Limits{}, "cluster name", ErrCorrupt},
		{"version 0", set(4, 0), Limits{}, "version 0 is not supported", nil},
		{"header cut", good[:10], Limits{}, "truncated header", ErrCorrupt},
		{"checksum", flipped, Limits{}, "checksum", ErrCorrupt},
		{"host too long", set(5, 200), Limits{}, "host name", ErrCorrupt},
		{"empty host", set(5, 0), Limits{}, "host name", ErrCorrupt},
		{"host with slash", set(hostAt+2, '/'), Limits{}, `byte "/"`, ErrCorrupt},
		{"host starting with a dot", set(hostAt, '.'), Limits{}, "starting with a letter or digit", ErrCorrupt},
		{"epoch not digits", set(hostAt+len("lb-2_x.example")+1, 'x'), Limits{}, `epoch "x700000000"`, ErrCorrupt},
		{"too many files for the limit", good, Limits{MaxFiles: 2}, "3 files, more than the limit of 2", ErrCorrupt},
		{"file count beyond the bytes", set(countAt, 0, 0, 0x03, 0xe8), Limits{}, "1000 files cannot fit", ErrCorrupt},
		{"one file less than the bytes", set(countAt+3, 2), Limits{}, "bytes after the last file", ErrCorrupt},
		{"one file more than the bytes", set(countAt+3, 4), Limits{}, "file 4 of 4", ErrCorrupt},
		{"record too large", good, Limits{MaxBytes: int64(len(good) - 1)}, "larger than max-snapshot-bytes", nil},
		{"name with slash", set(nameAt("haproxy-master.sock:master-1:worker-2_info")+3, '/'), Limits{}, "not a file name", ErrCorrupt},
		{"name without suffix", set(nameAt("x_stat")+1, 'X'), Limits{}, `"xXstat" is not <socket>_info`, ErrCorrupt},
		{"names out of order", set(nameAt("x_stat"), 'a'), Limits{}, "does not come after", ErrCorrupt},
		{"duplicate name", set(nameAt("haproxy-master.sock:master-1:worker-2_stat")+len("haproxy-master.sock:master-1:worker-2_"), 'i', 'n', 'f', 'o'), Limits{}, "does not come after", ErrCorrupt},
		{"content past the end", set(nameAt("x_stat")+len("x_stat"), 0, 0, 0, 9), Limits{}, `content of "x_stat" (9 bytes) runs past the end`, ErrCorrupt},
		{"trailing byte", resum(append(bytes.Clone(good[:len(good)-4]), 0, 0, 0, 0, 0)), Limits{}, "bytes after the last file", ErrCorrupt},
	} {
		r, err := Parse(tt.value, tt.lim)
		if err == nil {
			t.Errorf("%s: Parse = %+v, want an error", tt.name, r)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("%s: Parse error %q, want one containing %q (is %v)", tt.name, err, tt.want, tt.is)
		}
	}
	var ve *VersionError
	if _, err := Parse(set(4, 7), Limits{}); !errors.As(err, &ve) || ve.Version != 7 {
		t.Errorf("Parse(version 7) = %v, want a *VersionError naming 7", err)
	}
	// Every truncation is refused.
	for n := range len(good) {
		if _, err := Parse(good[:n], Limits{}); err == nil {
			t.Errorf("Parse of the first %d of %d bytes succeeded", n, len(good))
		}
	}
}

// TestEncoderRefuses: the encoder refuses what the decoder would.
func TestEncoderRefuses(t *testing.T) {
	if _, err := NewEncoder(&bytes.Buffer{}, Origin{Host: "bad/host"}, "1", 0); err == nil || !strings.Contains(err.Error(), `byte "/"`) {
		t.Errorf("NewEncoder(bad/host) = %v", err)
	}
	if _, err := NewEncoder(&bytes.Buffer{}, Origin{Host: "h"}, "12a", 0); err == nil || !strings.Contains(err.Error(), `epoch "12a"`) {
		t.Errorf("NewEncoder(epoch 12a) = %v", err)
	}
	if _, err := NewEncoder(&bytes.Buffer{}, Origin{Host: "h"}, strings.Repeat("9", 21), 0); err == nil {
		t.Error("NewEncoder accepts a 21-digit epoch")
	}
	if _, err := NewEncoder(&bytes.Buffer{}, Origin{Host: "h", Cluster: "web.fra"}, "1", 0); err == nil || !strings.Contains(err.Error(), `byte "."`) {
		t.Errorf("NewEncoder(cluster web.fra) = %v, want an error naming the dot", err)
	}
	for _, tt := range []struct {
		name  string
		add   func(e *Encoder) error
		files int
		want  string
	}{
		{"short", func(e *Encoder) error { return e.Add("a_info", 5, strings.NewReader("abc")) }, 1, "ended after 3 of 5 bytes"},
		{"long", func(e *Encoder) error { return e.Add("a_info", 2, strings.NewReader("abc")) }, 1, "longer than its size 2"},
		{"bad name", func(e *Encoder) error { return e.Add("a.txt", 0, strings.NewReader("")) }, 1, "is not <socket>_info"},
		{"order", func(e *Encoder) error {
			e.Add("b_info", 0, strings.NewReader(""))
			return e.Add("a_info", 0, strings.NewReader(""))
		}, 2, `does not come after "b_info"`},
		{"one more", func(e *Encoder) error { return e.Add("a_info", 0, strings.NewReader("")) }, 0, "one file more than announced"},
		{"one less", func(e *Encoder) error { return e.Close() }, 1, "1 announced files not added"},
	} {
		e, err := NewEncoder(&bytes.Buffer{}, Origin{Host: "h"}, "1", tt.files)
		if err != nil {
			t.Fatal(err)
		}
		err = tt.add(e)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error containing %q", tt.name, err, tt.want)
		}
		if err := e.Close(); err == nil {
			t.Errorf("%s: Close after an error succeeded", tt.name)
		}
	}
}

// TestEncodeDirChangedFile: a file that grows between the listing and its
// read fails the encoding rather than producing a record that lies about
// it.
func TestEncodeDirChangedFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "5")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "a_stat"), []byte("abc"), 0o644)
	enc, _ := NewEncoder(&bytes.Buffer{}, Origin{Host: "h"}, "5", 1)
	if err := addFile(enc, filepath.Join(dir, "a_stat"), dirFile{name: "a_stat", size: 2}); err == nil || !strings.Contains(err.Error(), "changed size") {
		t.Errorf("addFile of a grown file = %v, want an error about its size", err)
	}
	if _, err := EncodeDir(filepath.Join(t.TempDir(), "not-digits"), Origin{Host: "h"}, DefaultMaxBytes); err == nil {
		t.Error("EncodeDir of a directory not named by digits succeeded")
	}
}

// TestWriteDirExisting: a snapshot directory that exists is not replaced,
// and nothing is left behind.
func TestWriteDirExisting(t *testing.T) {
	r, err := Parse(validRecord(t), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	if _, err := r.WriteDir(parent); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WriteDir(parent); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second WriteDir = %v, want fs.ErrExist", err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 || entries[0].Name() != "1700000000" {
		t.Errorf("parent holds %v, want only 1700000000", entries)
	}
	files, _ := os.ReadDir(filepath.Join(parent, "1700000000"))
	if len(files) != 3 {
		t.Errorf("snapshot holds %d files, want 3", len(files))
	}
}

func TestCheckHost(t *testing.T) {
	for _, ok := range []string{"lb1", "LB1.example.com", "a-b_c.d", "1host", strings.Repeat("a", 255)} {
		if err := CheckHost(ok); err != nil {
			t.Errorf("CheckHost(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", ".lb", "-lb", "lb/1", "lb 1", "lb:1", "lé", strings.Repeat("a", 256)} {
		if err := CheckHost(bad); err == nil {
			t.Errorf("CheckHost(%q) = nil, want an error", bad)
		}
	}
}

// validClusterRecord is validRecord with a cluster: version 2.
func validClusterRecord(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	enc, err := NewEncoder(&b, Origin{Host: "lb-2_x.example", Cluster: "web:fra-1"}, "1700000000", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.Add("a_stat", 3, strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestLayoutVersion2 builds the record of a snapshot with a cluster byte by
// byte as the package documentation describes version 2, compares it with
// EncodeDir's, and checks that a snapshot without a cluster is still
// written, and read, in version 1.
func TestLayoutVersion2(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "1795507862")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.sock_stat"), []byte("# pxname,svname\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var want []byte
	want = append(want, 'H', 'S', 'S', 'N', 2)
	want = append(want, 3)
	want = append(want, "lb1"...)
	want = append(want, 10)
	want = append(want, "1795507862"...)
	want = append(want, 3)
	want = append(want, "web"...)
	want = append(want, 0, 0, 0, 1)
	want = append(want, byte(len("a.sock_stat")))
	want = append(want, "a.sock_stat"...)
	want = append(want, 0, 0, 0, 16)
	want = append(want, "# pxname,svname\n"...)
	want = binary.BigEndian.AppendUint32(want, crc32.Checksum(want, crc32.MakeTable(crc32.Castagnoli)))

	got, err := EncodeDir(dir, Origin{Host: "lb1", Cluster: "web"}, DefaultMaxBytes)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("EncodeDir with a cluster =\n%q\nwant\n%q", got, want)
	}
	if n := HeaderSize(Origin{Host: "lb1", Cluster: "web"}, "1795507862"); n != int64(len(want)-4-1-len("a.sock_stat")-4-16) {
		t.Errorf("HeaderSize = %d, the header above is %d bytes", n, len(want)-4-1-len("a.sock_stat")-4-16)
	}
	r, err := Parse(got, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != 2 || r.Host != "lb1" || r.Cluster != "web" || r.Epoch != "1795507862" || r.Files != 1 {
		t.Errorf("Parse = version %d host %q cluster %q epoch %q %d files, want 2 lb1 web 1795507862 1", r.Version, r.Host, r.Cluster, r.Epoch, r.Files)
	}

	v1, err := EncodeDir(dir, Origin{Host: "lb1"}, DefaultMaxBytes)
	if err != nil {
		t.Fatal(err)
	}
	if v1[4] != 1 || len(v1) != len(got)-4 {
		t.Errorf("without a cluster: version %d, %d bytes; want version 1, %d bytes", v1[4], len(v1), len(got)-4)
	}
	r, err = Parse(v1, Limits{})
	if err != nil || r.Version != 1 || r.Cluster != "" || r.Host != "lb1" {
		t.Errorf("Parse(version 1) = %+v, %v; want version 1, host lb1, no cluster", r, err)
	}
}

// TestParseRefusesVersion2: the cluster field is checked like the others.
func TestParseRefusesVersion2(t *testing.T) {
	good := validClusterRecord(t)
	if _, err := Parse(good, Limits{}); err != nil {
		t.Fatalf("Parse(valid version 2) = %v", err)
	}
	clusterAt := bytes.Index(good, []byte("web:fra-1"))
	set := func(at int, b ...byte) []byte {
		v := bytes.Clone(good)
		copy(v[at:], b)
		return resum(v)
	}
	for _, tt := range []struct {
		name  string
		value []byte
		want  string
	}{
		{"empty cluster", resum(append(append(bytes.Clone(good[:clusterAt-1]), 0), good[clusterAt+len("web:fra-1"):]...)), "empty cluster name"},
		{"cluster with a dot", set(clusterAt+3, '.'), `cluster name "web.fra-1": byte "."`},
		{"cluster with a space", set(clusterAt, ' '), `byte " "`},
		{"cluster past the end", set(clusterAt-1, 0xff), "cluster name runs past the end"},
	} {
		r, err := Parse(tt.value, Limits{})
		if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Parse = %+v, %v; want an ErrCorrupt containing %q", tt.name, r, err, tt.want)
		}
	}
	for n := range len(good) {
		if _, err := Parse(good[:n], Limits{}); err == nil {
			t.Errorf("Parse of the first %d of %d bytes succeeded", n, len(good))
		}
	}
}

func TestCheckCluster(t *testing.T) {
	for _, ok := range []string{"web", "WEB-fra1", "a_b:c", "1", strings.Repeat("c", 255)} {
		if err := CheckCluster(ok); err != nil {
			t.Errorf("CheckCluster(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "web.fra", "a b", "a/b", "é", "a\nb", strings.Repeat("c", 256)} {
		if err := CheckCluster(bad); err == nil {
			t.Errorf("CheckCluster(%q) = nil, want an error", bad)
		}
	}
}
