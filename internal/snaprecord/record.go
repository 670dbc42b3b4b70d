package snaprecord

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/internal/spool"
)

// Magic starts every record's value.
const Magic = "HSSN"

// Versions of the layout. The encoder writes Version1 for a snapshot
// without a cluster and Version2 for one with a cluster (so that a
// consumer that reads only version 1 still reads what a puller without
// [process] cluster-name publishes); the decoder reads both.
const (
	Version1 = 1
	Version2 = 2
	// Version is the newest layout this package reads and writes.
	Version = Version2
)

// Limits of the layout.
const (
	// MaxHostLen is the longest host name.
	MaxHostLen = 255
	// MaxClusterLen is the longest cluster name.
	MaxClusterLen = 255
	// MaxEpochLen is the longest epoch (the digits of the largest int64:
	// spool.IsSnapshotName).
	MaxEpochLen = 19
	// MaxNameLen is the longest file name.
	MaxNameLen = 255
	// MaxFileLen is the largest content of one file.
	MaxFileLen = 1<<32 - 1
	// DefaultMaxFiles is Limits.MaxFiles when 0: far above the files of
	// any HAProxy fleet member (two per process or worker).
	DefaultMaxFiles = 1 << 16
	// DefaultMaxBytes is Limits.MaxBytes when 0, and the default of
	// [kafka] max-snapshot-bytes: 64 MiB.
	DefaultMaxBytes = 64 << 20
)

// Sizes of the fixed parts of the layout.
const (
	fixedHeader = len(Magic) + 1 + 1 + 1 + 4 // magic, version, H, E, N
	entryHeader = 1 + 4                      // L, D
	trailer     = 4                          // CRC-32C
	// minName is the shortest file name: one byte of socket and a suffix.
	minName = 1 + len(spool.InfoSuffix)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrNotSnapshot is returned (wrapped) by Parse for a value that does not
// start with Magic.
var ErrNotSnapshot = errors.New("not a snapshot record")

// ErrCorrupt is returned (wrapped, with what and where) by Parse for a
// value that starts like a record but breaks the layout or its checksum.
var ErrCorrupt = errors.New("corrupt snapshot record")

// VersionError is a record of a version this build does not read.
type VersionError struct {
	Version int
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("snapshot record version %d is not supported (this build reads versions %d to %d; upgrade the consumers before the producers)", e.Version, Version1, Version)
}

// TooLargeError is a snapshot whose record would be, or is, larger than
// the limit (the producer's [kafka] max-snapshot-bytes).
type TooLargeError struct {
	Snapshot string // the directory, or the epoch
	Size     int64  // bytes of the record's value
	Limit    int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("snapshot %s: record of %d bytes is larger than max-snapshot-bytes (%d)", e.Snapshot, e.Size, e.Limit)
}

// CheckHost returns nil when host may be a record's host name (and key): 1
// to MaxHostLen bytes of ASCII letters, digits, '.', '-' and '_', the
// first a letter or digit. The rule keeps the name usable as a directory
// name and as a metric path part once its dots are replaced.
func CheckHost(host string) error {
	if host == "" {
		return errors.New("empty host name")
	}
	if len(host) > MaxHostLen {
		return fmt.Errorf("host name of %d bytes is longer than %d", len(host), MaxHostLen)
	}
	for i := range len(host) {
		c := host[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '-' && c != '_') {
			return fmt.Errorf("host name %q: byte %q at offset %d is not allowed (letters, digits, '.', '-' and '_', starting with a letter or digit)", host, host[i:i+1], i)
		}
	}
	return nil
}

// CheckCluster returns nil when name may be a record's cluster name: 1 to
// MaxClusterLen bytes that the metric path rule keeps as they are
// (engine.PathName: ASCII letters, digits, '-', '_' and ':'), so that the
// name is one part of the cluster's metric paths and a directory name.
func CheckCluster(name string) error {
	switch {
	case name == "":
		return errors.New("empty cluster name")
	case len(name) > MaxClusterLen:
		return fmt.Errorf("cluster name of %d bytes is longer than %d", len(name), MaxClusterLen)
	}
	if p := engine.PathName(name); p != name {
		i := 0
		for p[i] == name[i] {
			i++
		}
		return fmt.Errorf("cluster name %q: byte %q at offset %d is not allowed (letters, digits, '-', '_' and ':': one part of a metric path)", name, name[i:i+1], i)
	}
	return nil
}

// Origin is where a snapshot comes from: the load balancer that pulled it
// and, when it belongs to one, its cluster ([process] cluster-name of the
// puller).
type Origin struct {
	Host    string // CheckHost
	Cluster string // CheckCluster; "" = none
}

func (o Origin) check() error {
	if err := CheckHost(o.Host); err != nil {
		return err
	}
	if o.Cluster != "" {
		return CheckCluster(o.Cluster)
	}
	return nil
}

// version is the layout a record of o is written in.
func (o Origin) version() byte {
	if o.Cluster == "" {
		return Version1
	}
	return Version2
}

// checkEpoch returns nil when epoch may be a record's epoch.
func checkEpoch(epoch string) error {
	if len(epoch) > MaxEpochLen || !spool.IsSnapshotName(epoch) {
		return fmt.Errorf("epoch %q is not 1 to %d ASCII digits", epoch, MaxEpochLen)
	}
	return nil
}

// checkName returns nil when name may be a record's file name.
func checkName(name string) error {
	if len(name) > MaxNameLen {
		return fmt.Errorf("file name of %d bytes is longer than %d", len(name), MaxNameLen)
	}
	return spool.CheckFileName(name)
}

// HeaderSize is the size of a record's bytes before its first file entry.
func HeaderSize(o Origin, epoch string) int64 {
	n := int64(fixedHeader + len(o.Host) + len(epoch))
	if o.Cluster != "" {
		n += 1 + int64(len(o.Cluster))
	}
	return n
}

// EntrySize is what one file of name and size adds to a record.
func EntrySize(name string, size int64) int64 {
	return int64(entryHeader+len(name)) + size
}

// TrailerSize is the size of the checksum that ends a record.
const TrailerSize = trailer

// Encoder writes one record: NewEncoder writes the header, Add each file
// in strictly increasing name order, Close the checksum. It is used by one
// goroutine. After an error every call fails; what was written is not a
// valid record.
type Encoder struct {
	w     io.Writer // the destination and the checksum
	crc   uint32
	left  int    // files still to add
	last  string // the previous file name
	epoch string
	err   error
}

// NewEncoder checks the origin and the epoch and writes the header of a
// record of files files to w: version 1 without a cluster, 2 with one.
func NewEncoder(w io.Writer, o Origin, epoch string, files int) (*Encoder, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("encode snapshot record: %w", err)
	}
	if err := checkEpoch(epoch); err != nil {
		return nil, fmt.Errorf("encode snapshot record: %w", err)
	}
	if files < 0 || int64(files) > 1<<32-1 {
		return nil, fmt.Errorf("encode snapshot record %s: %d files", epoch, files)
	}
	e := &Encoder{left: files, epoch: epoch}
	e.w = writerFunc(func(p []byte) (int, error) {
		e.crc = crc32.Update(e.crc, castagnoli, p)
		return w.Write(p)
	})
	h := make([]byte, 0, HeaderSize(o, epoch))
	h = append(h, Magic...)
	h = append(h, o.version(), byte(len(o.Host)))
	h = append(h, o.Host...)
	h = append(h, byte(len(epoch)))
	h = append(h, epoch...)
	if o.Cluster != "" {
		h = append(h, byte(len(o.Cluster)))
		h = append(h, o.Cluster...)
	}
	h = binary.BigEndian.AppendUint32(h, uint32(files))
	if _, err := e.w.Write(h); err != nil {
		return nil, fmt.Errorf("encode snapshot record %s: %w", epoch, err)
	}
	return e, nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Add writes one file: its name, its size, and exactly size bytes read
// from r. It fails if r ends before size bytes or has more, if the name is
// not a snapshot file name or does not come after the previous one, or if
// more files are added than NewEncoder announced.
func (e *Encoder) Add(name string, size int64, r io.Reader) error {
	if e.err != nil {
		return e.err
	}
	fail := func(format string, args ...any) error {
		e.err = fmt.Errorf("encode snapshot record %s: file %q: %s", e.epoch, name, fmt.Sprintf(format, args...))
		return e.err
	}
	switch err := checkName(name); {
	case err != nil:
		return fail("%v", err)
	case e.left == 0:
		return fail("one file more than announced")
	case e.last != "" && name <= e.last:
		return fail("does not come after %q (names must be in increasing order, each once)", e.last)
	case size < 0 || size > MaxFileLen:
		return fail("size %d out of range (0..%d)", size, int64(MaxFileLen))
	}
	h := make([]byte, 0, entryHeader+len(name))
	h = append(h, byte(len(name)))
	h = append(h, name...)
	h = binary.BigEndian.AppendUint32(h, uint32(size))
	if _, err := e.w.Write(h); err != nil {
		return fail("%v", err)
	}
	n, err := io.CopyN(e.w, r, size)
	if err == io.EOF {
		return fail("ended after %d of %d bytes", n, size)
	}
	if err != nil {
		return fail("%v", err)
	}
	var one [1]byte
	if m, _ := io.ReadFull(r, one[:]); m > 0 {
		return fail("longer than its size %d (changed while being read?)", size)
	}
	e.left--
	e.last = name
	return nil
}

// Close writes the checksum; it fails if fewer files were added than
// NewEncoder announced.
func (e *Encoder) Close() error {
	if e.err != nil {
		return e.err
	}
	if e.left > 0 {
		e.err = fmt.Errorf("encode snapshot record %s: %d announced files not added", e.epoch, e.left)
		return e.err
	}
	sum := binary.BigEndian.AppendUint32(nil, e.crc)
	if _, err := e.w.Write(sum); err != nil {
		e.err = fmt.Errorf("encode snapshot record %s: %w", e.epoch, err)
		return e.err
	}
	e.err = errors.New("encode snapshot record: encoder closed")
	return nil
}

// Limits bound what Parse accepts.
type Limits struct {
	// MaxBytes is the largest value accepted (the consumer's [kafka]
	// max-snapshot-bytes); 0 = DefaultMaxBytes.
	MaxBytes int64
	// MaxFiles is the largest file count accepted; 0 = DefaultMaxFiles.
	MaxFiles int
}

// Record is a checked record: see Parse. Its fields are read-only.
type Record struct {
	Version int // Version1 or Version2
	Host    string
	// Cluster is the cluster name of a version 2 record, "" for version 1.
	Cluster string
	Epoch   string
	// Files is the number of files, DataBytes the sum of their sizes.
	Files     int
	DataBytes int64
	value     []byte
	body      int // offset of the first file entry
}

// Parse checks value, one record's value, against the layout, lim and the
// checksum, and returns the record. It never panics and allocates nothing
// in proportion to what the lengths announce; the Record aliases value.
// Errors wrap ErrNotSnapshot, ErrCorrupt, or are a *VersionError or a
// *TooLargeError.
func Parse(value []byte, lim Limits) (*Record, error) {
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultMaxBytes
	}
	if lim.MaxFiles <= 0 {
		lim.MaxFiles = DefaultMaxFiles
	}
	if len(value) < len(Magic) || string(value[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("parse snapshot record: first bytes %q: %w", value[:min(len(value), len(Magic))], ErrNotSnapshot)
	}
	if len(value) < len(Magic)+1 {
		return nil, corrupt(len(value), "truncated before the version")
	}
	version := value[len(Magic)]
	if version != Version1 && version != Version2 {
		return nil, &VersionError{Version: int(version)}
	}
	if int64(len(value)) > lim.MaxBytes {
		return nil, &TooLargeError{Snapshot: "record", Size: int64(len(value)), Limit: lim.MaxBytes}
	}
	d := decoder{b: value[:max(len(value)-trailer, 0)], off: len(Magic) + 1}
	if len(value) < fixedHeader+trailer {
		return nil, corrupt(len(value), "truncated header")
	}
	r := &Record{Version: int(version), value: value}
	host, ok := d.bytes(int(d.byte()))
	if !ok {
		return nil, corrupt(d.off, "host name runs past the end")
	}
	if err := CheckHost(string(host)); err != nil {
		return nil, corrupt(d.off-len(host), err.Error())
	}
	epoch, ok := d.bytes(int(d.byte()))
	if !ok {
		return nil, corrupt(d.off, "epoch runs past the end")
	}
	if err := checkEpoch(string(epoch)); err != nil {
		return nil, corrupt(d.off-len(epoch), err.Error())
	}
	if version == Version2 {
		cluster, ok := d.bytes(int(d.byte()))
		if !ok {
			return nil, corrupt(d.off, "cluster name runs past the end")
		}
		// An empty cluster is refused: a record without one is written
		// in version 1, so that every record has one encoding.
		if err := CheckCluster(string(cluster)); err != nil {
			return nil, corrupt(d.off-len(cluster), err.Error())
		}
		r.Cluster = string(cluster)
	}
	n, ok := d.uint32()
	if !ok {
		return nil, corrupt(d.off, "file count runs past the end")
	}
	if int64(n) > int64(lim.MaxFiles) {
		return nil, corrupt(d.off-4, fmt.Sprintf("%d files, more than the limit of %d", n, lim.MaxFiles))
	}
	if int64(n)*int64(entryHeader+minName) > int64(len(d.b)-d.off) {
		return nil, corrupt(d.off-4, fmt.Sprintf("%d files cannot fit in the %d bytes left", n, len(d.b)-d.off))
	}
	r.Host, r.Epoch, r.Files, r.body = string(host), string(epoch), int(n), d.off
	var last []byte
	for i := range r.Files {
		at := d.off
		name, data, err := d.entry()
		if err != nil {
			return nil, corrupt(at, fmt.Sprintf("file %d of %d: %v", i+1, r.Files, err))
		}
		if last != nil && string(name) <= string(last) {
			return nil, corrupt(at, fmt.Sprintf("file %q does not come after %q (names must be in increasing order, each once)", name, last))
		}
		last = name
		r.DataBytes += int64(len(data))
	}
	if d.off != len(d.b) {
		return nil, corrupt(d.off, fmt.Sprintf("%d bytes after the last file", len(d.b)-d.off))
	}
	want := binary.BigEndian.Uint32(value[len(value)-trailer:])
	if got := crc32.Checksum(d.b, castagnoli); got != want {
		return nil, corrupt(len(d.b), fmt.Sprintf("checksum %08x, want %08x", got, want))
	}
	return r, nil
}

func corrupt(off int, msg string) error {
	return fmt.Errorf("parse snapshot record: %s at byte %d: %w", msg, off, ErrCorrupt)
}

// decoder reads the layout from b, checking every length against what is
// left; a read past the end reports false and reads nothing.
type decoder struct {
	b   []byte
	off int
}

func (d *decoder) byte() byte {
	if d.off >= len(d.b) {
		d.off = len(d.b) + 1 // every later read fails
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) bytes(n int) ([]byte, bool) {
	if d.off > len(d.b) || n > len(d.b)-d.off {
		return nil, false
	}
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p, true
}

func (d *decoder) uint32() (uint32, bool) {
	p, ok := d.bytes(4)
	if !ok {
		return 0, false
	}
	return binary.BigEndian.Uint32(p), true
}

// entry reads and checks one file entry.
func (d *decoder) entry() (name, data []byte, err error) {
	name, ok := d.bytes(int(d.byte()))
	if !ok {
		return nil, nil, errors.New("name runs past the end")
	}
	if err := checkName(string(name)); err != nil {
		return nil, nil, err
	}
	size, ok := d.uint32()
	if !ok {
		return nil, nil, fmt.Errorf("size of %q runs past the end", name)
	}
	data, ok = d.bytes(int(size))
	if !ok {
		return nil, nil, fmt.Errorf("content of %q (%d bytes) runs past the end", name, size)
	}
	return name, data, nil
}

// All yields every file of the record, name and content, in the record's
// (increasing name) order. The content aliases the record's value.
func (r *Record) All() iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		d := decoder{b: r.value[:len(r.value)-trailer], off: r.body}
		for range r.Files {
			name, data, err := d.entry()
			if err != nil {
				return // Parse checked every entry
			}
			if !yield(string(name), data) {
				return
			}
		}
	}
}

// Size is the size of the record's value.
func (r *Record) Size() int { return len(r.value) }

// WriteDir writes the record's files into a new directory parent/<epoch>
// and returns its path: into a temporary directory of parent first, renamed
// once every file is written, so that parent/<epoch> appears complete or
// not at all. It fails, wrapping fs.ErrExist, when parent/<epoch> exists.
// The files are not fsynced: the directory is a working copy of what the
// record holds (a crash loses nothing that Kafka does not still have).
// parent must exist and be written by one goroutine at a time.
func (r *Record) WriteDir(parent string) (string, error) {
	final := filepath.Join(parent, r.Epoch)
	if _, err := os.Lstat(final); err == nil {
		return "", fmt.Errorf("write snapshot %s: %w", final, fs.ErrExist)
	}
	tmp, err := os.MkdirTemp(parent, TempPrefix+r.Epoch+"-")
	if err != nil {
		return "", fmt.Errorf("write snapshot %s: %w", final, err)
	}
	for name, data := range r.All() {
		if err := writeFile(filepath.Join(tmp, name), data); err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("write snapshot %s: %w", final, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("write snapshot %s: %w", final, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("write snapshot %s: %w", final, err)
	}
	return final, nil
}

// TempPrefix starts the name of WriteDir's temporary directories (which a
// crash may leave behind); it is not a snapshot name.
const TempPrefix = ".tmp-"

// IsTemp reports whether name is that of a temporary directory of WriteDir.
func IsTemp(name string) bool { return strings.HasPrefix(name, TempPrefix) }

func writeFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
