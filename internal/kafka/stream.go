package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
)

// errStreamDone is returned by Write after Finish or Abort.
var errStreamDone = errors.New("kafka: write to a finished or aborted stream")

// Stream carries the lines of one snapshot into records. Its methods are
// called by one goroutine at a time (the worker of that snapshot); any
// number of streams may be open at once.
//
// Lines are packed in the order written into records of at most
// Config.MaxRecordBytes; a record ends only after a newline, so a line is
// never split across records.
type Stream struct {
	p        *Producer
	ctx      context.Context // Open's: bounds the waits for buffer room
	snapshot string
	buf      []byte // the record being filled
	err      error  // the first error of Write or of a record; sticky
	done     bool   // Finish or Abort was called
	d        *Delivery
}

// LineTooLongError describes a line that does not fit in one record: it
// is not produced (never split), and the stream goes on without it; the
// producer logs it and counts it in Stats.Errors.
type LineTooLongError struct {
	Snapshot string
	Line     string // the line, cut after 120 bytes
	Len      int    // its length, newline included
	Limit    int    // Config.MaxRecordBytes
}

func (e *LineTooLongError) Error() string {
	return fmt.Sprintf("kafka: snapshot %s: line of %d bytes is longer than max-record-bytes (%d), refused: %q",
		e.Snapshot, e.Len, e.Limit, e.Line)
}

// Write takes whole lines ("path value timestamp\n"): p must be empty or end
// with a newline. It copies what it keeps. It produces a record each time
// the next line would not fit in the current one, and may then wait for
// buffer room (Config.MaxBufferedBytes) until Open's context ends. A line
// longer than Config.MaxRecordBytes is left out (see [LineTooLongError]):
// that is permanent, sending the snapshot again would not change it, so it
// does not fail the stream. Write fails with the error of a record of this
// stream that failed, or with ErrClosed once the producer stopped; after an
// error the stream only fails, and its Delivery reports the error. n is the
// number of bytes taken (left-out lines included) before an error.
func (s *Stream) Write(p []byte) (n int, err error) {
	switch {
	case s.err != nil:
		return 0, s.err
	case s.done:
		return 0, errStreamDone
	case len(p) == 0:
		return 0, nil
	case p[len(p)-1] != '\n':
		return 0, fmt.Errorf("kafka: snapshot %s: write of %d bytes does not end with a newline (lines must be whole)", s.snapshot, len(p))
	}
	if err := s.d.Err(); err != nil {
		s.err = err
		return 0, err
	}
	limit := s.p.cfg.MaxRecordBytes
	for len(p) > 0 {
		room := limit - len(s.buf)
		if len(p) <= room {
			s.buf = append(s.buf, p...)
			return n + len(p), nil
		}
		if i := bytes.LastIndexByte(p[:room], '\n'); i >= 0 {
			s.buf = append(s.buf, p[:i+1]...)
			n += i + 1
			p = p[i+1:]
		}
		if len(s.buf) == 0 {
			// The next line alone does not fit in a record.
			end := bytes.IndexByte(p, '\n') + 1
			s.p.refuse(s.snapshot, p[:end])
			n += end
			p = p[end:]
			continue
		}
		if err := s.produce(); err != nil {
			s.err = err
			return n, err
		}
	}
	return n, nil
}

// produce sends the filled record, after taking its room in the buffer
// budget, and empties buf.
func (s *Stream) produce() error {
	value := bytes.Clone(s.buf)
	s.buf = s.buf[:0]
	lines := bytes.Count(value, []byte{'\n'})
	return s.p.produce(s.ctx, s.snapshot, value, lines, s.d)
}

// Finish says every line was written: it produces the last record and
// returns the Delivery of the stream's records. It may wait for buffer room
// like Write. After an error of Write, the Delivery reports that error.
// Calling it again returns the same Delivery.
func (s *Stream) Finish() *Delivery {
	if s.done {
		return s.d
	}
	s.done = true
	if s.err == nil && len(s.buf) > 0 {
		s.err = s.produce()
	}
	s.buf = nil
	s.d.seal(s.err)
	return s.d
}

// Abort abandons the stream: nothing more is produced for it. Records
// already produced are still delivered when they can be (the snapshot is
// processed again from the spool: its lines may arrive twice).
func (s *Stream) Abort() {
	s.done = true
	s.buf = nil
}

// Delivery reports when every record of a stream was acknowledged, or the
// first that failed. Its methods are safe for concurrent use.
type Delivery struct {
	mu          sync.Mutex
	outstanding int  // records produced and not finished
	sealed      bool // Finish was called
	err         error
	closed      bool
	done        chan struct{} // closed once the outcome is known
}

func newDelivery() *Delivery { return &Delivery{done: make(chan struct{})} }

func (d *Delivery) add() {
	d.mu.Lock()
	d.outstanding++
	d.mu.Unlock()
}

// finish records the outcome of one record.
func (d *Delivery) finish(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.outstanding--
	d.settle(err)
}

// seal marks the end of the records, with the stream's own error if any.
func (d *Delivery) seal(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sealed = true
	d.settle(err)
}

// settle keeps the first error and closes done once the outcome is known:
// an error, or every record acknowledged after Finish. d.mu is held.
func (d *Delivery) settle(err error) {
	if err != nil && d.err == nil {
		d.err = err
	}
	if !d.closed && (d.err != nil || d.sealed && d.outstanding == 0) {
		d.closed = true
		close(d.done)
	}
}

// Err returns the first error of a record so far.
func (d *Delivery) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Wait returns nil once every record of the stream was acknowledged by the
// broker (acks=all), the first error as soon as a record failed, or ctx's
// error if ctx ends first. Records still in flight after an error may be
// delivered later (duplicates when the snapshot is processed again).
func (d *Delivery) Wait(ctx context.Context) error {
	select {
	case <-d.done:
		return d.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed once Wait would return without waiting.
func (d *Delivery) Done() <-chan struct{} { return d.done }
