// Package config reads the haproxystats configuration: the INI dialect of
// Python's configparser with extended interpolation (SPEC §2), the built-in
// defaults, and the validated settings of haproxystats-pull and
// haproxystats-process.
//
// The dialect: option names in any letter case (stored lower-case), section
// names as written; "=" or ":" between name and value; "#" and ";" start
// comment lines only, never inline comments; indented lines continue the
// value above (joined with "\n"); [DEFAULT] options are inherited by every
// section that does not set them; ${option}, ${section:option} and $$ are
// interpolated when a value is read. gopkg.in/ini.v1 reads the file
// structure; a line scanner written after configparser checks it first, with
// line numbers, and handles what ini.v1 does differently (see parseFile).
//
// Lifecycle: Load (or LoadFiles, LoadSources, Default) builds a *Config from
// the built-in defaults (one table, in defaults.go, also printed by
// PrintDefaults) and the user's files, later files winning. A file that does
// not parse is a *ParseError naming the file and line; a file that is not a
// regular file (a named pipe, a device, a socket) or is larger than
// MaxFileSize is refused without blocking, and a file of junk reports
// twenty errors and a count of the rest. Nothing is
// interpolated or validated at load: Get and Print interpolate,
// PullSettings and ProcessSettings validate and return every problem at
// once, each an *Error naming section, option and value. Interpolation is
// bounded (MaxValueLen, MaxReferences per value, and a total per
// operation), so a small file cannot expand to gigabytes. CheckReadWrite
// checks src-dir on the file system, separately. Relative paths are
// returned as written.
//
// Two rules live here for the whole program: ReadRegular reads a file an
// operator names (configuration, exclusion list) without ever blocking on
// a named pipe or device and with a size cap, and CheckPathName is the
// character rule for a configuration value that becomes a metric path part
// (namespace, group-namespace, group names, the host name).
//
// Concurrency: a loaded *Config is never modified, so any number of
// goroutines may read it at once. The settings structs are plain values
// owned by the caller.
package config
