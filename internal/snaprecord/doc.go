// Package snaprecord is the encoding of one snapshot as one Kafka record:
// the value that haproxystats-pull publishes to [kafka] snapshot-topic and
// the processing tier consumes (internal/publish, internal/snapsource).
// A record carries every `<socket>_info` and `<socket>_stat` file of one
// spool snapshot directory, with their names, the host name of the load
// balancer that pulled them and the snapshot's epoch (its directory name).
//
// # Layout, versions 1 and 2
//
// Integers are unsigned, big-endian. Offsets are from the start of the
// record's value.
//
//	offset  size  field
//	0       4     magic: the bytes "HSSN" (0x48 0x53 0x53 0x4e)
//	4       1     version: 1 or 2
//	5       1     H, length of the host name, 1..255
//	6       H     host name: ASCII letters, digits, '.', '-', '_', starting
//	              with a letter or digit ([CheckHost])
//	6+H     1     E, length of the epoch, 1..20
//	7+H     E     epoch: ASCII digits, the snapshot directory's name (the
//	              timestamp of every metric computed from it)
//	              version 2 only (the offsets below move by 1+C):
//	7+H+E   1     C, length of the cluster name, 1..255
//	8+H+E   C     cluster name: ASCII letters, digits, '-', '_', ':'
//	              ([CheckCluster]: one part of a metric path)
//	7+H+E   4     N, number of files
//	        then N file entries, names in strictly increasing byte order
//	        (so no name twice):
//	          1   L, length of the file name, 1..255
//	          L   file name: <socket>_info or <socket>_stat, a file name
//	              (no '/', no NUL, not "." or "..": spool.CheckFileName)
//	          4   D, length of the file's content
//	          D   the file's content, as pulled
//	end-4   4     CRC-32C (Castagnoli) of every byte before it
//
// Nothing follows the checksum. An empty snapshot (N = 0) is valid. A
// snapshot without a cluster is written in version 1, one with a cluster
// in version 2 (a version 2 record with an empty cluster is refused, so
// that every snapshot has exactly one encoding). The key of the record
// is the cluster name when there is one (so that every host of a cluster
// goes to one partition, in order), the host name otherwise (one host's
// snapshots in one partition, in order); the decoder reads the host and
// the cluster from the value only.
//
// # Versions
//
// The version byte changes with any change of the layout; a decoder
// refuses a version it does not know with a [*VersionError] naming it,
// and a record without the magic with [ErrNotSnapshot]. Upgrade the
// consumers (the processing tier) before the producers (the pullers):
// version 2 is read by this build and later ones; a puller of this build
// without a cluster still writes version 1.
//
// # Bounds
//
// [Parse] works on the record's value in place: it checks the whole
// layout, every length against the bytes that are left, the file count
// against [Limits] MaxFiles, the value's size against Limits.MaxBytes, and
// the checksum, before anything is handed out, and allocates nothing in
// proportion to what the lengths announce (the host and epoch strings, and
// one file name at a time while iterating, are all it allocates). Hostile
// input gets an error, never a panic (FuzzParse). [Record.WriteDir]
// writes every file straight from the value into a directory, so the
// files are never held twice in memory.
//
// Encoding streams too: [Encoder] writes the files one by one from an
// io.Reader each, and [EncodeDir] sizes the value exactly from the file
// sizes, refuses a snapshot above its limit ([*TooLargeError]) before
// reading anything, and reads every file once into the value.
//
// Compression is not part of the layout: the Kafka producer compresses
// record batches ([kafka] compression), and the consumer's client
// decompresses them.
//
// # Concurrency
//
// An Encoder is used by one goroutine. A Record is immutable and safe for
// concurrent use; it aliases the value given to Parse, which must not be
// modified while the Record is in use.
package snaprecord
