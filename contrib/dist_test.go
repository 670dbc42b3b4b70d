package contrib_test

import (
	"debug/buildinfo"
	"debug/elf"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestContribMakeDist runs `make dist` into a temporary directory and
// checks the binaries: static (no ELF interpreter, CGO_ENABLED=0), paths
// trimmed, and -v printing the version from git, as the Makefile stamps it.
func TestContribMakeDist(t *testing.T) {
	t.Parallel()
	mk := need(t, "make", "make")
	git := need(t, "git", "git")
	describe := func() string {
		out, _, code := runCmd(t, nil, git, "-C", root, "describe", "--tags", "--always", "--dirty")
		if code != 0 {
			t.Skip("SKIPPING: not a git checkout; make dist stamps the version from git describe")
		}
		return strings.TrimSpace(out)
	}
	// The tree may be committed to (or edited) while make runs: either
	// version is right.
	before := describe()
	dist := t.TempDir()
	if o, e, code := runCmd(t, nil, mk, "-C", root, "dist", "DIST="+dist); code != 0 {
		t.Fatalf("make dist: exit %d\n%s%s", code, o, e)
	}
	after := describe()
	for _, p := range programs {
		path := filepath.Join(dist, p)
		out, e, code := runCmd(t, nil, path, "-v")
		got := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), p))
		if code != 0 || got != before && got != after {
			t.Errorf("%s -v = %d, %q (%s); want the git version %q", p, code, out, e, after)
		}
		f, err := elf.Open(path)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked (has an ELF interpreter)", p)
			}
		}
		f.Close()
		info, err := buildinfo.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
			t.Errorf("%s built with CGO_ENABLED=%q -trimpath=%q, want 0 and true", p, settings["CGO_ENABLED"], settings["-trimpath"])
		}
	}
}

// TestContribDebVersion checks the mapping from git describe to a Debian
// version (contrib/debian/version.sh) and that dpkg accepts the results.
func TestContribDebVersion(t *testing.T) {
	sh := need(t, "sh", "dash")
	script := filepath.Join(root, "contrib/debian/version.sh")
	tests := map[string]string{
		"v1.2.0":                  "1.2.0",
		"1.2.0":                   "1.2.0",
		"v1.2.0-3-gabc1234":       "1.2.0+3.gabc1234",
		"v1.2.0-3-gabc1234-dirty": "1.2.0+3.gabc1234.dirty",
		"abc1234":                 "0.0.0+gabc1234",
		"abc1234-dirty":           "0.0.0+gabc1234.dirty",
		"90504d5":                 "0.0.0+g90504d5", // a bare commit may start with a digit
		"90504d5-dirty":           "0.0.0+g90504d5.dirty",
		"devel":                   "0.0.0+gdevel",
	}
	for in, want := range tests {
		out, e, code := runCmd(t, nil, sh, script, in)
		if got := strings.TrimSpace(out); code != 0 || got != want {
			t.Errorf("version.sh %s = %d, %q (%s); want %q", in, code, got, e, want)
		}
	}
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		t.Log("dpkg not installed: the versions are not validated by dpkg")
		return
	}
	for _, v := range tests {
		if _, e, code := runCmd(t, nil, dpkg, "--validate-version", v); code != 0 {
			t.Errorf("dpkg --validate-version %s: %s", v, e)
		}
	}
	if _, _, code := runCmd(t, nil, dpkg, "--compare-versions", "0.0.0+gabc1234", "lt", "1.0.0"); code != 0 {
		t.Error("an untagged build does not sort before the first release")
	}
}
