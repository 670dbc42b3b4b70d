package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// ErrNoSection and ErrNoOption are wrapped by the errors of Get and of
// interpolation for a section or option that is not there.
var (
	ErrNoSection = errors.New("no such section")
	ErrNoOption  = errors.New("no such option")
)

// maxDepth is configparser's MAX_INTERPOLATION_DEPTH.
const maxDepth = 10

// Bounds of interpolation. Ten levels of references, each repeating the
// one below a few times, expand a kilobyte of text to gigabytes; these
// stop such a value with an error naming its section and option.
const (
	// MaxValueLen bounds the length of one value after interpolation.
	MaxValueLen = 64 << 10
	// MaxReferences bounds the ${...} references followed, at every
	// depth, to interpolate one value.
	MaxReferences = 1000
	// maxExpansion bounds the bytes written and references followed to
	// read many values at once (Print, StageOptions, the settings), so
	// that many options each just under MaxValueLen cannot add up.
	maxExpansion = 16 << 20
)

// errLimit marks an interpolation stopped by one of the bounds above.
var errLimit = errors.New("interpolation limit")

// expansion counts the work of interpolating: refs for the value being
// read, left for the whole operation.
type expansion struct {
	refs int
	left int
}

func newExpansion() *expansion { return &expansion{left: maxExpansion} }

// Config is a loaded configuration: the built-in defaults overlaid with the
// user's files. It is immutable and safe for concurrent use.
type Config struct {
	user  map[string]*section // the user's sections, DEFAULT included
	order []string            // the user's sections in order of first appearance, without DEFAULT
}

// Source is configuration text and the name used in its error messages.
type Source struct {
	Name string
	Data []byte
}

// Default returns the built-in configuration, as if no file were given.
func Default() *Config {
	return &Config{user: map[string]*section{}}
}

// Load reads the built-in defaults, then file, then every dir/*.conf in
// name order; later values win. A file that does not exist is logged at
// info and skipped (file "" is none); a file that does not parse is an
// error naming it and the line. dir "" is none; a dir that does not exist is
// an error. Hidden files and directories in dir are skipped, like Python's
// glob does.
//
// Every file read must be a regular file (a link to one is fine) of at most
// MaxFileSize bytes, or /dev/null: anything else (a named pipe, a device, a
// socket, a link to nothing) is an error naming it, found without blocking.
// A directory named *.conf in dir is skipped.
func Load(file, dir string, logger *slog.Logger) (*Config, error) {
	logger = orDiscard(logger)
	var sources []Source
	if file != "" {
		data, err := readFile(file)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			logger.Info("configuration file does not exist, using the defaults", "file", file)
		case err != nil:
			return nil, err
		default:
			sources = append(sources, Source{Name: file, Data: data})
		}
	}
	if dir != "" {
		entries, err := os.ReadDir(dir) // sorted by name
		if err != nil {
			return nil, fmt.Errorf("read configuration directory: %w", err)
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".conf") || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			path := filepath.Join(dir, e.Name())
			if st, err := os.Stat(path); e.IsDir() || (err == nil && st.IsDir()) {
				logger.Debug("skipping directory in configuration directory", "path", path)
				continue
			}
			data, err := readFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				// Listed but not there: a link to nothing, or removed
				// since; either way a part of the configuration is
				// missing.
				return nil, fmt.Errorf("%w (a symbolic link to nothing?)", err)
			}
			if err != nil {
				return nil, err
			}
			sources = append(sources, Source{Name: path, Data: data})
		}
	}
	return LoadSources(logger, sources...)
}

// LoadFiles reads the built-in defaults and then every file of paths in
// order; later values win. Unlike Load, every file must exist. Each must be
// a regular file of at most MaxFileSize bytes, as for Load.
func LoadFiles(logger *slog.Logger, paths ...string) (*Config, error) {
	sources := make([]Source, 0, len(paths))
	for _, p := range paths {
		data, err := readFile(p)
		if err != nil {
			return nil, err
		}
		sources = append(sources, Source{Name: p, Data: data})
	}
	return LoadSources(logger, sources...)
}

// MaxFileSize bounds the size of one configuration file. The original's
// sample is 3 KB; a file a thousand times larger is not a configuration.
const MaxFileSize = 4 << 20

// readFile reads one configuration file with ReadRegular.
func readFile(path string) ([]byte, error) {
	data, err := ReadRegular(path, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return data, nil
}

// ErrTooLarge is wrapped by the error of ReadRegular for a file over its
// limit.
var ErrTooLarge = errors.New("file too large")

// ReadRegular reads path, which must be a regular file (or a link to one)
// of at most limit bytes, for files an operator names in the configuration.
// It never blocks on a named pipe or a device: the type is checked before
// opening, the file is opened with O_NONBLOCK, and the type checked again
// on the open file in case it was replaced in between. /dev/null (or a link
// to it, the usual way to mask a file) reads as empty. Errors name the path;
// a file that does not exist is an error wrapping fs.ErrNotExist.
func ReadRegular(path string, limit int64) ([]byte, error) {
	fail := func(err error) ([]byte, error) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fail(unwrapPath(err))
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(st, null) {
		return nil, nil
	}
	if !st.Mode().IsRegular() {
		return fail(notRegular(st.Mode()))
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fail(unwrapPath(err))
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return fail(unwrapPath(err))
	}
	if !st.Mode().IsRegular() {
		return fail(notRegular(st.Mode()))
	}
	if st.Size() > limit {
		return fail(fmt.Errorf("%d bytes, larger than the limit of %d: %w", st.Size(), limit, ErrTooLarge))
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return fail(unwrapPath(err))
	}
	if int64(len(data)) > limit {
		return fail(fmt.Errorf("larger than the limit of %d bytes: %w", limit, ErrTooLarge))
	}
	return data, nil
}

// unwrapPath drops the *fs.PathError around err, whose path the caller
// names already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// notRegular describes a file that is not a regular file.
func notRegular(m fs.FileMode) error {
	kind := m.Type().String()
	switch t := m.Type(); {
	case t&fs.ModeDir != 0:
		kind = "directory"
	case t&fs.ModeNamedPipe != 0:
		kind = "named pipe"
	case t&fs.ModeSocket != 0:
		kind = "socket"
	case t&fs.ModeCharDevice != 0:
		kind = "character device"
	case t&fs.ModeDevice != 0:
		kind = "device"
	}
	return fmt.Errorf("not a regular file (%s)", kind)
}

// LoadSources reads the built-in defaults and then every source in order;
// later values win. Options and sections the programs do not read are
// logged at debug and kept.
func LoadSources(logger *slog.Logger, sources ...Source) (*Config, error) {
	logger = orDiscard(logger)
	c := Default()
	var errs []error
	for _, src := range sources {
		fd, err := parseFile(src.Name, src.Data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.merge(fd, logger)
	}
	if len(errs) > 0 {
		return nil, errors.Join(capErrors(errs, "configuration")...)
	}
	return c, nil
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

func (c *Config) merge(fd *fileData, logger *slog.Logger) {
	names := append([]string{SectionDefault}, fd.order...)
	for _, name := range names {
		src := fd.sections[name]
		if src == nil {
			continue
		}
		if !isKnownSection(name) {
			logger.Debug("unknown configuration section", "file", fd.name, "section", name)
		}
		dst := c.user[name]
		if dst == nil {
			dst = newSection()
			c.user[name] = dst
			if name != SectionDefault {
				c.order = append(c.order, name)
			}
		}
		for _, k := range src.order {
			if isKnownSection(name) && !isKnownOption(name, k) {
				logger.Debug("unknown configuration option", "file", fd.name, "section", name, "option", k)
			}
			dst.set(k, src.values[k])
		}
	}
}

// HasSection reports whether section appears in the user's files. The
// built-in defaults do not make a section present, which is what enables
// [local-store] and [kafka]. DEFAULT is never a section here, as in configparser.
func (c *Config) HasSection(section string) bool {
	if section == SectionDefault {
		return false
	}
	_, ok := c.user[section]
	return ok
}

// Sections returns, sorted by name in byte order, the sections of the
// configuration without DEFAULT: paths, pull, process and graphite, which
// always exist, and every section of the user's files. local-store and
// kafka are listed only when the user's files have them.
func (c *Config) Sections() []string {
	names := slices.Clone(c.order)
	for s := range defaults {
		if s != SectionDefault && !slices.Contains(presenceSections, s) && !slices.Contains(names, s) {
			names = append(names, s)
		}
	}
	slices.Sort(names)
	return names
}

// OwnOptions returns the options written in section in the user's files, in
// order of first appearance, without those inherited from DEFAULT or the
// built-in defaults.
func (c *Config) OwnOptions(section string) []string {
	if s := c.user[section]; s != nil {
		return slices.Clone(s.order)
	}
	return nil
}

// exists reports whether section can be looked up: DEFAULT, a section of the
// table (local-store included, for its default dir) or a user section.
func (c *Config) exists(section string) bool {
	_, b := defaults[section]
	_, u := c.user[section]
	return b || u
}

// raw returns the value of option in section before interpolation, and
// the section it was found in: section itself, or DEFAULT when inherited.
func (c *Config) raw(section, option string) (value, from string, err error) {
	if !c.exists(section) {
		return "", "", fmt.Errorf("section [%s]: %w", section, ErrNoSection)
	}
	if section != SectionDefault {
		if v, ok := c.value(section, option); ok {
			return v, section, nil
		}
	}
	if v, ok := c.value(SectionDefault, option); ok {
		return v, SectionDefault, nil
	}
	return "", "", fmt.Errorf("[%s] %s: %w", section, option, ErrNoOption)
}

// value looks option up in section only, the user's files first.
func (c *Config) value(section, option string) (string, bool) {
	if s := c.user[section]; s != nil {
		if v, ok := s.values[option]; ok {
			return v, true
		}
	}
	v, ok := defaults[section][option]
	return v, ok
}

// isDefaultOption reports whether option is an option of [DEFAULT]: one of
// the built-in defaults or one the user's files set there.
func (c *Config) isDefaultOption(option string) bool {
	_, ok := c.value(SectionDefault, option)
	return ok
}

// Has reports whether option has a value in section, its own or inherited
// from DEFAULT, from the user's files or the built-in defaults.
func (c *Config) Has(section, option string) bool {
	_, _, err := c.raw(section, strings.ToLower(option))
	return err == nil
}

// Get returns the value of option (any letter case) in section, its own or
// inherited from DEFAULT, with ${option}, ${section:option} and $$
// interpolated as configparser's ExtendedInterpolation does. A missing
// option wraps ErrNoOption, a missing section ErrNoSection; an
// interpolation error is an *Error naming the section and option whose
// value is wrong.
//
// A value longer than MaxValueLen after interpolation, or one that follows
// more than MaxReferences references, is an *Error naming the option read.
func (c *Config) Get(section, option string) (string, error) {
	return c.get(section, option, newExpansion())
}

// get is Get spending from x, shared by the values of one operation.
func (c *Config) get(section, option string, x *expansion) (string, error) {
	option = strings.ToLower(option)
	raw, _, err := c.raw(section, option)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	x.refs = 0
	if err := c.interpolate(&b, section, option, raw, 1, x); err != nil {
		if errors.Is(err, errLimit) {
			return "", &Error{Section: section, Option: option, Value: raw, Err: err}
		}
		return "", err
	}
	return b.String(), nil
}

// Path returns the value of a path option. A relative path is returned as
// written: it is relative to the working directory of the program.
func (c *Config) Path(section, option string) (string, error) {
	return c.Get(section, option)
}

// interpolate follows configparser's ExtendedInterpolation._interpolate_some:
// rest is the value of option in section, depth the nesting level. It
// spends from x every byte it writes and every reference it follows, and
// stops with an error wrapping errLimit, which the caller attributes to the
// option read, when a bound is passed.
func (c *Config) interpolate(b *strings.Builder, section, option, rest string, depth int, x *expansion) error {
	fail := func(err error) error {
		if isSecret(section, option) {
			// The messages quote the value; a secret's is not shown.
			return &Error{Section: section, Option: option, Value: hidden,
				Err: errors.New(`bad "$" interpolation (the value is secret, not shown; write $$ for a literal "$")`)}
		}
		raw, _, rerr := c.raw(section, option)
		if rerr != nil {
			raw = rest
		}
		return &Error{Section: section, Option: option, Value: raw, Err: err}
	}
	if depth > maxDepth {
		return fail(fmt.Errorf("interpolation nested deeper than %d levels (a reference loop?)", maxDepth))
	}
	write := func(s string) error {
		if b.Len()+len(s) > MaxValueLen {
			return fmt.Errorf("%w: the value would be longer than %d bytes", errLimit, MaxValueLen)
		}
		if x.left -= len(s); x.left < 0 {
			return fmt.Errorf("%w: the configuration expands to more than %d bytes in all", errLimit, maxExpansion)
		}
		b.WriteString(s)
		return nil
	}
	for rest != "" {
		p := strings.IndexByte(rest, '$')
		if p < 0 {
			return write(rest)
		}
		if err := write(rest[:p]); err != nil {
			return err
		}
		rest = rest[p:]
		switch {
		case strings.HasPrefix(rest, "$$"):
			if err := write("$"); err != nil {
				return err
			}
			rest = rest[2:]
		case strings.HasPrefix(rest, "${"):
			end := strings.IndexByte(rest, '}')
			if end < 3 {
				return fail(fmt.Errorf("bad interpolation reference %q", rest))
			}
			ref := rest[2:end]
			rest = rest[end+1:]
			if x.refs++; x.refs > MaxReferences {
				return fmt.Errorf("%w: the value follows more than %d references", errLimit, MaxReferences)
			}
			if x.left--; x.left < 0 {
				return fmt.Errorf("%w: the configuration expands to more than %d bytes in all", errLimit, maxExpansion)
			}
			path := strings.Split(ref, ":")
			sect, opt := section, ""
			switch len(path) {
			case 1:
				opt = strings.ToLower(path[0])
			case 2:
				sect, opt = path[0], strings.ToLower(path[1])
			default:
				return fail(fmt.Errorf("bad interpolation reference ${%s}: more than one ':'", ref))
			}
			v, _, err := c.raw(sect, opt)
			if err != nil {
				return fail(fmt.Errorf("reference ${%s}: %w", ref, err))
			}
			if !strings.Contains(v, "$") {
				if err := write(v); err != nil {
					return err
				}
				continue
			}
			if err := c.interpolate(b, sect, opt, v, depth+1, x); err != nil {
				return err
			}
		default:
			return fail(fmt.Errorf(`"$" must be followed by "$" or "{", found %q (write $$ for a literal "$")`, rest))
		}
	}
	return nil
}

// items returns the interpolated options of section with those it inherits
// from DEFAULT, as configparser's config[section].items().
func (c *Config) items(section string, x *expansion) (map[string]string, error) {
	names := map[string]bool{}
	for _, s := range []string{SectionDefault, section} {
		for k := range defaults[s] {
			names[k] = true
		}
		if u := c.user[s]; u != nil {
			for _, k := range u.order {
				names[k] = true
			}
		}
	}
	out := map[string]string{}
	var errs []error
	for k := range names {
		v, err := c.get(section, k, x)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[k] = v
	}
	return out, errors.Join(capErrors(sortErrors(errs), "["+section+"]")...)
}

// Print writes the effective configuration of the sections include selects
// (nil selects all), for -P: DEFAULT and Sections(), sorted by name in byte
// order (DEFAULT first unless a section name sorts before it); each as a
// [section] header, its options and those it inherits from DEFAULT as
// sorted "key = value" lines with interpolated values, and a blank line.
// Secrets (the [kafka] sasl-password) are printed as "(hidden)". If a value
// cannot be interpolated nothing is written and the errors are returned.
func (c *Config) Print(w io.Writer, include func(section string) bool) error {
	names := append([]string{SectionDefault}, c.Sections()...)
	slices.Sort(names)
	var sb strings.Builder
	bw := bufio.NewWriter(&sb)
	var errs []error
	x := newExpansion()
	for _, s := range names {
		if include != nil && !include(s) {
			continue
		}
		items, err := c.items(s, x)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for k, v := range items {
			if v != "" && isSecret(s, k) {
				items[k] = hidden
			}
		}
		writeSection(bw, s, items)
	}
	if len(errs) > 0 {
		return errors.Join(capErrors(errs, "configuration")...)
	}
	bw.Flush()
	_, err := io.WriteString(w, sb.String())
	return err
}

// hidden replaces the value of a secret option in Print's output.
const hidden = "(hidden)"

func sortErrors(errs []error) []error {
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}
