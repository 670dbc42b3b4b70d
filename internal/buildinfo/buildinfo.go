// Package buildinfo reports the version the programs print for -v: the
// value stamped at link time (-ldflags "-X .../buildinfo.Version=..."), or
// else the module version and VCS revision recorded by the Go toolchain.
package buildinfo

import "runtime/debug"

// Version is set by `make dist`; empty otherwise.
var Version string

// String returns the version, e.g. "v0.1.0" or "devel (a1b2c3d, modified)".
func String() string {
	if Version != "" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += " (" + rev + dirty + ")"
	}
	return v
}
