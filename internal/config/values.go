package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// Error is a problem with one option (or, with Option "", a whole section)
// of the configuration.
type Error struct {
	Section string
	Option  string // "" when the problem is the section as a whole
	Value   string // the value as used, after interpolation when it succeeded; Error quotes its first 256 bytes
	From    string // the section the value was inherited from, if not Section
	Err     error
}

func (e *Error) Error() string {
	if e.Option == "" {
		return fmt.Sprintf("[%s]: %v", e.Section, e.Err)
	}
	from := ""
	if e.From != "" && e.From != e.Section {
		from = fmt.Sprintf(" (from [%s])", e.From)
	}
	v := excerpt(e.Value)
	if e.Value != "" && isSecret(e.Section, e.Option) {
		v = hidden // a secret's value is never printed, in errors as in -P
	}
	return fmt.Sprintf("[%s] %s = %q%s: %v", e.Section, e.Option, v, from, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// LevelCritical is the slog level of the loglevel "critical".
const LevelCritical = slog.LevelError + 4

// levels are the names Python's logging module accepts for
// getattr(logging, loglevel.upper()): the five documented ones and the
// aliases WARN, FATAL and NOTSET, which the original also accepted.
var levels = map[string]slog.Level{
	"DEBUG":    slog.LevelDebug,
	"INFO":     slog.LevelInfo,
	"WARNING":  slog.LevelWarn,
	"ERROR":    slog.LevelError,
	"CRITICAL": LevelCritical,
	"WARN":     slog.LevelWarn,
	"FATAL":    LevelCritical,
	"NOTSET":   slog.LevelDebug,
}

var errLevel = errors.New("not a log level (want debug, info, warning, error or critical)")

// ParseLevel parses a loglevel value in any letter case.
func ParseLevel(s string) (slog.Level, error) {
	l, ok := levels[strings.ToUpper(s)]
	if !ok {
		return 0, errLevel
	}
	return l, nil
}

var booleans = map[string]bool{
	"1": true, "yes": true, "true": true, "on": true,
	"0": false, "no": false, "false": false, "off": false,
}

var errBool = errors.New("not a boolean (want 1, yes, true, on, 0, no, false or off)")

// ParseBool parses a boolean as configparser's getboolean: 1 yes true on, 0
// no false off, in any letter case.
func ParseBool(s string) (bool, error) {
	b, ok := booleans[strings.ToLower(s)]
	if !ok {
		return false, errBool
	}
	return b, nil
}

// ParseInt parses an integer as Python's int(): surrounding white space, an
// optional sign, decimal digits with single underscores between them.
func ParseInt(s string) (int, error) {
	t := strings.TrimSpace(s)
	if !underscoresOK(t) {
		return 0, errors.New("not an integer")
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(t, "_", ""), 10, 0)
	if errors.Is(err, strconv.ErrRange) {
		return 0, errors.New("integer out of range")
	}
	if err != nil {
		return 0, errors.New("not an integer")
	}
	return int(n), nil
}

// ParseFloat parses a number as Python's float(): surrounding white space,
// an optional sign, a decimal number with an optional exponent and single
// underscores between digits, or inf, infinity and nan in any letter case.
func ParseFloat(s string) (float64, error) {
	t := strings.TrimSpace(s)
	word, sign := t, 1.0
	if word != "" && (word[0] == '+' || word[0] == '-') {
		if word[0] == '-' {
			sign = -1
		}
		word = word[1:]
	}
	switch strings.ToLower(word) {
	case "inf", "infinity":
		return math.Inf(int(sign)), nil
	case "nan":
		return math.NaN(), nil
	}
	if t == "" || strings.Trim(t, "0123456789.eE+-_") != "" || !underscoresOK(t) {
		return 0, errors.New("not a number")
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(t, "_", ""), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, errors.New("not a number")
	}
	return f, nil // out of range is ±Inf or 0, as in Python
}

// underscoresOK reports whether every underscore of s is between two
// digits.
func underscoresOK(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '_' && (i == 0 || i == len(s)-1 || !isDigit(s[i-1]) || !isDigit(s[i+1])) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// ParseSeconds parses a duration written as float seconds ("0.1", "1",
// "1e-1"), rounded to the nanosecond.
func ParseSeconds(s string) (time.Duration, error) {
	f, err := ParseFloat(s)
	if err != nil {
		return 0, err
	}
	return seconds(f)
}

func seconds(f float64) (time.Duration, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("not a finite number of seconds")
	}
	ns := math.Round(f * float64(time.Second))
	if ns >= math.MaxInt64 || ns <= math.MinInt64 {
		return 0, errors.New("too many seconds")
	}
	return time.Duration(ns), nil
}
