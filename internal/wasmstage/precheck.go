package wasmstage

import (
	"errors"
	"fmt"

	"github.com/haproxystats-go/haproxystats/internal/config"
)

// The checks of this file run in the daemon before a module is handed to
// wazero's decoder, which sizes its tables from the counts a section
// declares before it reads a single entry: a 17-byte file declaring four
// billion imports would otherwise take all the machine's memory, or kill
// the process, while it is decoded. They read the file once, allocate
// nothing in proportion to a declared count, and end with the file.

// readModule reads the module file with config.ReadRegular, the one reader
// of files an operator names (a FIFO in the module's place is refused, not
// waited on), refusing one larger than limit bytes before reading it (and
// while reading it, should it grow).
func readModule(path string, limit int64) ([]byte, error) {
	bin, err := config.ReadRegular(path, limit)
	if errors.Is(err, config.ErrTooLarge) {
		return nil, fmt.Errorf("module larger than module-size-limit %d bytes: %w (%w)", limit, ErrModuleTooLarge, err)
	}
	return bin, err
}

// Section ids of the WebAssembly binary format.
const (
	sectionCustom   = 0
	sectionType     = 1
	sectionImport   = 2
	sectionFunction = 3
	sectionTable    = 4
	sectionMemory   = 5
	sectionGlobal   = 6
	sectionExport   = 7
	sectionElement  = 9
	sectionCode     = 10
	sectionData     = 11
	sectionTag      = 13
)

// vectorSections are the sections that start with a count of entries, with
// the name used in errors and the fewest bytes one entry can be encoded in.
var vectorSections = map[byte]struct {
	name     string
	minEntry int
}{
	sectionType:     {"type", 3},     // 0x60, no parameters, no results
	sectionImport:   {"import", 4},   // two empty names, kind, index
	sectionFunction: {"function", 1}, // type index
	sectionTable:    {"table", 3},    // reference type, limits flag, minimum
	sectionMemory:   {"memory", 2},   // limits flag, minimum
	sectionGlobal:   {"global", 5},   // type, mutability, i32.const 0 end
	sectionExport:   {"export", 3},   // empty name, kind, index
	sectionElement:  {"element", 3},  // passive: flags, kind, empty vector
	sectionCode:     {"code", 3},     // body size, no locals, end
	sectionData:     {"data", 2},     // passive: flags, empty bytes
	sectionTag:      {"tag", 2},      // attribute, type index
}

// errPrecheck marks a module refused by checkSections.
var errPrecheck = errors.New("malformed module")

// checkSections walks the sections of a module and refuses one whose
// section runs past the end of the file or whose declared count of entries
// cannot fit in its section's bytes; in the "name" custom section, the same
// for the function-name and local-name maps. It does not validate the
// module (wazero does, in the child process); it only makes sure no count
// is larger than the bytes that would have to hold it.
func checkSections(bin []byte) error {
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return errors.New("not a WebAssembly module")
	}
	if v := uint32(bin[4]) | uint32(bin[5])<<8 | uint32(bin[6])<<16 | uint32(bin[7])<<24; v != 1 {
		return fmt.Errorf("binary format version %d, want 1: %w", v, errPrecheck)
	}
	r := wasmReader{b: bin, off: 8}
	for r.off < len(r.b) {
		start := r.off
		id := r.b[r.off]
		r.off++
		size, err := r.u32()
		if err != nil {
			return fmt.Errorf("section %d at byte %d: size: %w", id, start, err)
		}
		if uint64(size) > uint64(len(r.b)-r.off) {
			return fmt.Errorf("section %d at byte %d: %d bytes, only %d left in the file: %w", id, start, size, len(r.b)-r.off, errPrecheck)
		}
		body := wasmReader{b: r.b[:r.off+int(size)], off: r.off}
		r.off += int(size)
		if id == sectionCustom {
			if err := checkCustom(body); err != nil {
				return fmt.Errorf("custom section at byte %d: %w", start, err)
			}
			continue
		}
		sec, ok := vectorSections[id]
		if !ok {
			continue
		}
		if err := body.count(sec.name+" section", sec.minEntry); err != nil {
			return fmt.Errorf("%s section at byte %d: %w", sec.name, start, err)
		}
	}
	return nil
}

// checkCustom checks the counts of the "name" section's function-name
// (1) and local-name (2) subsections, which wazero decodes.
func checkCustom(r wasmReader) error {
	n, err := r.u32()
	if err != nil || uint64(n) > uint64(r.left()) {
		return fmt.Errorf("truncated name: %w", errPrecheck)
	}
	name := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	if name != "name" {
		return nil
	}
	for r.left() > 0 {
		id := r.b[r.off]
		r.off++
		size, err := r.u32()
		if err != nil || uint64(size) > uint64(r.left()) {
			return fmt.Errorf("name subsection %d: truncated: %w", id, errPrecheck)
		}
		sub := wasmReader{b: r.b[:r.off+int(size)], off: r.off}
		r.off += int(size)
		switch id {
		case 1: // function names: index, name
			if err := sub.count("function name map", 2); err != nil {
				return err
			}
		case 2: // local names: function index, then a name map
			n, err := sub.u32()
			if err != nil {
				return fmt.Errorf("local name map: %w", err)
			}
			if uint64(n)*2 > uint64(sub.left()) {
				return fmt.Errorf("local name map declares %d functions in %d bytes: %w", n, sub.left(), errPrecheck)
			}
			for i := uint32(0); i < n; i++ {
				if _, err := sub.u32(); err != nil { // function index
					return fmt.Errorf("local name map: %w", err)
				}
				locals, err := sub.u32()
				if err != nil {
					return fmt.Errorf("local name map: %w", err)
				}
				if uint64(locals)*2 > uint64(sub.left()) {
					return fmt.Errorf("local name map declares %d locals in %d bytes: %w", locals, sub.left(), errPrecheck)
				}
				for j := uint32(0); j < locals; j++ {
					if _, err := sub.u32(); err != nil { // local index
						return fmt.Errorf("local name map: %w", err)
					}
					l, err := sub.u32()
					if err != nil || uint64(l) > uint64(sub.left()) {
						return fmt.Errorf("local name map: truncated name: %w", errPrecheck)
					}
					sub.off += int(l)
				}
			}
		}
	}
	return nil
}

// wasmReader reads LEB128 numbers from b, starting at off.
type wasmReader struct {
	b   []byte
	off int
}

func (r *wasmReader) left() int { return len(r.b) - r.off }

// u32 reads an unsigned LEB128 number of at most 32 bits.
func (r *wasmReader) u32() (uint32, error) {
	var v uint64
	for i := 0; i < 5; i++ {
		if r.off >= len(r.b) {
			return 0, fmt.Errorf("truncated number: %w", errPrecheck)
		}
		c := r.b[r.off]
		r.off++
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if v > 0xffffffff {
				return 0, fmt.Errorf("number overflows 32 bits: %w", errPrecheck)
			}
			return uint32(v), nil
		}
	}
	return 0, fmt.Errorf("number longer than 5 bytes: %w", errPrecheck)
}

// count reads a vector count and checks that count entries of at least
// minEntry bytes fit in what is left.
func (r *wasmReader) count(what string, minEntry int) error {
	n, err := r.u32()
	if err != nil {
		return fmt.Errorf("%s: count: %w", what, err)
	}
	if uint64(n)*uint64(minEntry) > uint64(r.left()) {
		return fmt.Errorf("%s declares %d entries in %d bytes (at least %d bytes each): %w", what, n, r.left(), minEntry, errPrecheck)
	}
	return nil
}
