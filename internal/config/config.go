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
)

// ErrNoSection and ErrNoOption are wrapped by the errors of Get and of
// interpolation for a section or option that is not there.
var (
	ErrNoSection = errors.New("no such section")
	ErrNoOption  = errors.New("no such option")
)

// maxDepth is configparser's MAX_INTERPOLATION_DEPTH.
const maxDepth = 10

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
func Load(file, dir string, logger *slog.Logger) (*Config, error) {
	logger = orDiscard(logger)
	var sources []Source
	if file != "" {
		data, err := os.ReadFile(file)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			logger.Info("configuration file does not exist, using the defaults", "file", file)
		case err != nil:
			return nil, fmt.Errorf("read configuration: %w", err)
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
			if e.IsDir() {
				logger.Debug("skipping directory in configuration directory", "path", path)
				continue
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("read configuration: %w", err)
			}
			sources = append(sources, Source{Name: path, Data: data})
		}
	}
	return LoadSources(logger, sources...)
}

// LoadFiles reads the built-in defaults and then every file of paths in
// order; later values win. Unlike Load, every file must exist.
func LoadFiles(logger *slog.Logger, paths ...string) (*Config, error) {
	sources := make([]Source, 0, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read configuration: %w", err)
		}
		sources = append(sources, Source{Name: p, Data: data})
	}
	return LoadSources(logger, sources...)
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
		return nil, errors.Join(errs...)
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
func (c *Config) Get(section, option string) (string, error) {
	option = strings.ToLower(option)
	raw, _, err := c.raw(section, option)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := c.interpolate(&b, section, option, raw, 1); err != nil {
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
// rest is the value of option in section, depth the nesting level.
func (c *Config) interpolate(b *strings.Builder, section, option, rest string, depth int) error {
	fail := func(err error) error {
		raw, _, rerr := c.raw(section, option)
		if rerr != nil {
			raw = rest
		}
		return &Error{Section: section, Option: option, Value: raw, Err: err}
	}
	if depth > maxDepth {
		return fail(fmt.Errorf("interpolation nested deeper than %d levels (a reference loop?)", maxDepth))
	}
	for rest != "" {
		p := strings.IndexByte(rest, '$')
		if p < 0 {
			b.WriteString(rest)
			return nil
		}
		b.WriteString(rest[:p])
		rest = rest[p:]
		switch {
		case strings.HasPrefix(rest, "$$"):
			b.WriteByte('$')
			rest = rest[2:]
		case strings.HasPrefix(rest, "${"):
			end := strings.IndexByte(rest, '}')
			if end < 3 {
				return fail(fmt.Errorf("bad interpolation reference %q", rest))
			}
			ref := rest[2:end]
			rest = rest[end+1:]
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
				b.WriteString(v)
				continue
			}
			if err := c.interpolate(b, sect, opt, v, depth+1); err != nil {
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
func (c *Config) items(section string) (map[string]string, error) {
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
		v, err := c.Get(section, k)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[k] = v
	}
	return out, errors.Join(sortErrors(errs)...)
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
	for _, s := range names {
		if include != nil && !include(s) {
			continue
		}
		items, err := c.items(s)
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
		return errors.Join(errs...)
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
