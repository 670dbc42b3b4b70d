package config

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/ini.v1"
)

// ParseError reports a configuration file that Python's configparser would
// refuse to read.
type ParseError struct {
	File string
	Line int
	Err  error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("parse %s line %d: %v", e.File, e.Line, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// errMismatch marks a value that gopkg.in/ini.v1 read differently from the
// line scanner; it means a bug here, never a bad file, and the fuzz test
// looks for it.
var errMismatch = errors.New("ini reader and configparser rules disagree")

// sectionHeader is configparser's SECTCRE, matched against a stripped line.
var sectionHeader = regexp.MustCompile(`^\[(.+)\]`)

// item is one section header or one option of a file, as configparser's
// RawConfigParser._read sees it.
type item struct {
	line    int
	section string   // the section this item opens or belongs to
	key     string   // lower-cased option name; "" for a section header
	name    string   // option name as written
	lines   []string // stripped value lines; lines[0] is on the option line
}

func (it *item) value() string {
	return strings.TrimRightFunc(strings.Join(it.lines, "\n"), unicode.IsSpace)
}

// fileData is one parsed file: the user's sections with their options in
// file order. The DEFAULT section is kept under its name but is not listed in
// order.
type fileData struct {
	name     string
	order    []string // sections in order of first appearance, without DEFAULT
	sections map[string]*section
}

type section struct {
	order  []string // option names in order of first appearance
	values map[string]string
}

func newSection() *section { return &section{values: map[string]string{}} }

func (s *section) set(key, value string) {
	if _, ok := s.values[key]; !ok {
		s.order = append(s.order, key)
	}
	s.values[key] = value
}

// parseFile reads one INI file the way Python's configparser (strict mode,
// no inline comments, empty lines allowed in values) reads it.
//
// gopkg.in/ini.v1 is the reader of sections, keys and Python-style
// multi-line values. Where it differs from configparser, a line scanner
// written after configparser's _read works first: it finds the errors
// configparser reports, with their line numbers (ini.v1 gives none), drops
// comment lines, keeps empty lines inside a multi-line value, applies
// configparser's indentation rule for continuation lines, and stands in for
// ini.v1 on the rare name or value that ini.v1 would rename or unquote (see
// fixups). The scanner's own reading of every value is then compared with
// ini.v1's, so that a difference is an error rather than a silently
// different configuration.
func parseFile(name string, data []byte) (*fileData, error) {
	items, err := scan(name, data)
	if err != nil {
		return nil, err
	}
	text, fix := render(items)
	f, err := ini.LoadSources(ini.LoadOptions{
		InsensitiveKeys:            true,
		IgnoreContinuation:         true,
		IgnoreInlineComment:        true,
		AllowPythonMultilineValues: true,
		PreserveSurroundedQuote:    true,
		KeyValueDelimiters:         "=:",
		// The multi-line reader looks ahead at most one buffer; make the
		// buffer hold the whole file.
		ReaderBufferSize: len(text) + 4096,
	}, text)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}

	fd := &fileData{name: name, sections: map[string]*section{}}
	for _, sec := range f.Sections() {
		s := newSection()
		for _, k := range sec.Keys() {
			key, value := k.Name(), unindent(k.Value())
			if orig, ok := fix.names[[2]string{sec.Name(), key}]; ok {
				key = orig
			}
			if v, ok := fix.values[[2]string{sec.Name(), key}]; ok {
				value = v
			}
			s.set(key, value)
		}
		fd.sections[sec.Name()] = s
	}
	if err := check(fd, items); err != nil {
		return nil, err
	}
	// Keep only the sections the file has, in file order.
	kept := map[string]*section{}
	for _, it := range items {
		if _, ok := kept[it.section]; !ok {
			kept[it.section] = fd.sections[it.section]
			if it.section != SectionDefault {
				fd.order = append(fd.order, it.section)
			}
		}
	}
	fd.sections = kept
	return fd, nil
}

// unindent strips every line of a multi-line value read by ini.v1, which
// keeps the indentation of continuation lines, and drops trailing empty
// lines, as configparser does.
func unindent(v string) string {
	if !strings.Contains(v, "\n") {
		return v
	}
	lines := strings.Split(v, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.TrimRightFunc(strings.Join(lines, "\n"), unicode.IsSpace)
}

// check compares what ini.v1 read with what the scanner saw.
func check(fd *fileData, items []*item) error {
	mismatch := func(line int, format string, args ...any) error {
		return &ParseError{File: fd.name, Line: line, Err: fmt.Errorf(format+": %w", append(args, errMismatch)...)}
	}
	want := map[string]*section{}
	for _, it := range items {
		s := want[it.section]
		if s == nil {
			s = newSection()
			want[it.section] = s
		}
		if it.key == "" {
			continue
		}
		s.set(it.key, it.value())
		got := fd.sections[it.section]
		if got == nil {
			return mismatch(it.line, "section [%s] not read", it.section)
		}
		if v, ok := got.values[it.key]; !ok || v != it.value() {
			return mismatch(it.line, "option %q read as %q, want %q", it.key, v, it.value())
		}
	}
	for name, got := range fd.sections {
		if w := want[name]; strings.Join(got.order, "\n") != strings.Join(w.orderOrNil(), "\n") {
			return mismatch(1, "section [%s] has options %q, want %q", name, got.order, w.orderOrNil())
		}
	}
	return nil
}

func (s *section) orderOrNil() []string {
	if s == nil {
		return nil
	}
	return s.order
}

// scan classifies the lines of data as RawConfigParser._read does and
// returns the section headers and options, or configparser's errors.
func scan(name string, data []byte) ([]*item, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n") // universal newlines
	text = strings.TrimSuffix(text, "\n")

	var (
		items      []*item
		errs       []error
		cur        string // current section
		inSection  bool
		opt        *item // option that continuation lines extend
		indent     int
		sectLines  = map[string]int{}
		optLines   = map[[2]string]int{}
		parseError = func(n int, format string, args ...any) {
			errs = append(errs, &ParseError{File: name, Line: n, Err: fmt.Errorf(format, args...)})
		}
	)
	if text == "" {
		return nil, nil
	}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		value := strings.TrimSpace(line)
		comment := strings.HasPrefix(value, "#") || strings.HasPrefix(value, ";")
		if comment || value == "" {
			// An empty line belongs to the open value (trailing ones are
			// stripped at the end); a comment line is skipped entirely.
			if !comment && opt != nil {
				opt.lines = append(opt.lines, "")
			}
			continue
		}
		level := leadingSpace(line)
		if opt != nil && level > indent {
			opt.lines = append(opt.lines, value)
			continue
		}
		indent = level
		if m := sectionHeader.FindStringSubmatch(value); m != nil {
			cur, inSection, opt = m[1], true, nil
			if cur != SectionDefault {
				if prev, ok := sectLines[cur]; ok {
					parseError(n, "section [%s] repeated (first at line %d)", excerpt(cur), prev)
					return nil, errors.Join(errs...)
				}
				sectLines[cur] = n
			}
			items = append(items, &item{line: n, section: cur})
			continue
		}
		if !inSection {
			parseError(n, "%q before the first [section] header", excerpt(value))
			return nil, errors.Join(errs...)
		}
		d := strings.IndexAny(value, "=:")
		if d < 0 {
			parseError(n, "%q is neither \"option = value\" nor a [section] header", excerpt(value))
			continue
		}
		written := strings.TrimRightFunc(value[:d], unicode.IsSpace)
		if written == "" {
			parseError(n, "empty option name in %q", excerpt(value))
			opt = nil
			continue
		}
		key := strings.ToLower(written)
		if prev, ok := optLines[[2]string{cur, key}]; ok {
			parseError(n, "option %q repeated in section [%s] (first at line %d)", excerpt(key), excerpt(cur), prev)
			return nil, errors.Join(errs...)
		}
		optLines[[2]string{cur, key}] = n
		opt = &item{line: n, section: cur, key: key, name: written, lines: []string{strings.TrimSpace(value[d+1:])}}
		items = append(items, opt)
	}
	if len(errs) > 0 {
		return nil, errors.Join(capErrors(errs, name)...)
	}
	return items, nil
}

// maxErrors bounds the errors reported for one file, one load or one
// validation; the rest are counted, so that a file of junk gives a screen
// of errors, not one per line.
const maxErrors = 20

// capErrors returns the first maxErrors of errs and, when there are more,
// an error counting the rest, which are in where.
func capErrors(errs []error, where string) []error {
	if len(errs) <= maxErrors {
		return errs
	}
	return append(errs[:maxErrors:maxErrors], fmt.Errorf("%s: %d more errors not shown", where, len(errs)-maxErrors))
}

// maxExcerpt is how much of a line, name or value an error quotes.
const maxExcerpt = 256

// excerpt returns s cut to maxExcerpt bytes, for quoting in an error.
func excerpt(s string) string {
	if len(s) <= maxExcerpt {
		return s
	}
	return strings.ToValidUTF8(s[:maxExcerpt], "") + "..."
}

// leadingSpace counts the white-space characters that start line.
func leadingSpace(line string) int {
	n := 0
	for _, r := range line {
		if !unicode.IsSpace(r) {
			break
		}
		n++
	}
	return n
}

// fixups are the options ini.v1 cannot read as configparser does, which
// are done by hand. ini.v1 renames an option called "-" (its auto-increment
// key) and unquotes a name starting with a quote or backtick (and one
// starting with "[" is a section to it): such an option is written under an
// unused name of dashes, kept in names. It also unquotes a value starting
// with a backtick or three double quotes: such a value is written empty and
// the scanner's reading, kept in values, is used instead.
type fixups struct {
	names  map[[2]string]string // section and name written -> option name
	values map[[2]string]string // section and option name -> value
}

// render writes items as text that ini.v1, with the options parseFile sets,
// reads exactly as configparser read the original: no comments, one
// "key = value" line per option, continuation lines indented by one space.
func render(items []*item) ([]byte, fixups) {
	fix := fixups{names: map[[2]string]string{}, values: map[[2]string]string{}}
	used := map[[2]string]bool{}
	for _, it := range items {
		used[[2]string{it.section, it.key}] = true
	}
	var b bytes.Buffer
	for _, it := range items {
		if it.key == "" {
			b.WriteString("[" + it.section + "]\n")
			continue
		}
		key := it.name
		if r, _ := utf8.DecodeRuneInString(key); key == "-" || r == '"' || r == '`' || r == '[' {
			key = "--"
			for used[[2]string{it.section, key}] {
				key += "-"
			}
			used[[2]string{it.section, key}] = true
			fix.names[[2]string{it.section, key}] = it.key
		}
		b.WriteString(key + " =")
		if first := it.lines[0]; strings.HasPrefix(first, "`") || strings.HasPrefix(first, `"""`) {
			fix.values[[2]string{it.section, it.key}] = it.value()
			b.WriteByte('\n')
			continue
		}
		if it.lines[0] != "" {
			b.WriteString(" " + it.lines[0])
		}
		b.WriteByte('\n')
		for _, l := range it.lines[1:] {
			b.WriteString(" " + l + "\n")
		}
	}
	return b.Bytes(), fix
}
