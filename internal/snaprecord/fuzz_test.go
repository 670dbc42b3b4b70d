package snaprecord

import (
	"bytes"
	"testing"
)

// FuzzParse: Parse never panics on any value, and a value it accepts is
// the canonical encoding of what it yields (re-encoding the files gives
// the same bytes), within the limits it was given.
func FuzzParse(f *testing.F) {
	f.Add(validRecord(f))
	f.Add(resum(append([]byte("HSSN\x01\x01h\x011\x00\x00\x00\x00"), 0, 0, 0, 0)))
	for _, dir := range corpusSnapshots(f) {
		if v, err := EncodeDir(dir, Origin{Host: testHost}, DefaultMaxBytes); err == nil && len(v) < 8<<10 {
			f.Add(v)
		}
	}
	f.Add(validClusterRecord(f))
	for _, dir := range corpusSnapshots(f)[:3] {
		if v, err := EncodeDir(dir, Origin{Host: testHost, Cluster: "web-fra1"}, DefaultMaxBytes); err == nil && len(v) < 8<<10 {
			f.Add(v)
		}
	}
	f.Add([]byte("HSSN\x02"))
	f.Add(resum(append([]byte("HSSN\x02\x01h\x011\x01c\x00\x00\x00\x00"), 0, 0, 0, 0)))
	f.Add([]byte("HSSN\x01\xff"))
	lim := Limits{MaxBytes: 1 << 20, MaxFiles: 64}
	f.Fuzz(func(t *testing.T, value []byte) {
		r, err := Parse(value, lim)
		if err != nil {
			return
		}
		if r.Files > lim.MaxFiles || int64(r.Size()) > lim.MaxBytes || r.Size() != len(value) {
			t.Fatalf("Parse accepted %d files, %d bytes beyond %+v", r.Files, r.Size(), lim)
		}
		var b bytes.Buffer
		enc, err := NewEncoder(&b, Origin{Host: r.Host, Cluster: r.Cluster}, r.Epoch, r.Files)
		if err != nil {
			t.Fatalf("NewEncoder(%q, %q, %q) of a parsed record: %v", r.Host, r.Cluster, r.Epoch, err)
		}
		var total int64
		for name, data := range r.All() {
			total += int64(len(data))
			if err := enc.Add(name, int64(len(data)), bytes.NewReader(data)); err != nil {
				t.Fatalf("Add of a parsed file: %v", err)
			}
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		if total != r.DataBytes || !bytes.Equal(b.Bytes(), value) {
			t.Fatalf("re-encoding differs: %d data bytes (Parse said %d), %d record bytes (value %d)", total, r.DataBytes, b.Len(), len(value))
		}
	})
}
