package contrib_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// flagPattern finds the flags in -h output and man pages: -x or
// --long-name after a blank, a comma, '[', '|' or '(' (so "one-daemon" is
// not a flag).
var flagPattern = regexp.MustCompile(`(?:^|[\s,\[|(])(--?[A-Za-z][A-Za-z-]*)`)

// foreignFlags are flags of other commands that the pages' prose quotes
// (journalctl -u).
var foreignFlags = []string{"-u"}

// findFlags returns the sorted distinct flags of text.
func findFlags(text string) []string {
	var flags []string
	for _, m := range flagPattern.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(flags, m[1]) {
			flags = append(flags, m[1])
		}
	}
	slices.Sort(flags)
	return flags
}

// helpFlags returns the sorted flags of every -h screen of program: the
// program's own, and for haproxystats-engine each command's (`CMD -h`).
func helpFlags(t *testing.T, bin, program string) []string {
	t.Helper()
	path := filepath.Join(bin, program)
	out, errOut, code := runCmd(t, nil, path, "-h")
	if code != 0 {
		t.Fatalf("%s -h: exit %d\n%s", program, code, errOut)
	}
	screens := out
	if program == "haproxystats-engine" {
		var cmds []string
		for _, m := range regexp.MustCompile(`(?m)^\s+haproxystats-engine ([a-z][a-z-]*)`).FindAllStringSubmatch(out, -1) {
			if !slices.Contains(cmds, m[1]) {
				cmds = append(cmds, m[1])
			}
		}
		if len(cmds) < 4 {
			t.Fatalf("haproxystats-engine -h lists commands %q", cmds)
		}
		for _, c := range cmds {
			if !regexp.MustCompile(`(?m)^    ` + regexp.QuoteMeta(c) + `(\s|$)`).MatchString(out) {
				t.Errorf("haproxystats-engine -h: command %s is in the usage but not described under Commands", c)
			}
			// pflag prints "Usage of CMD:" and the flags, exit 2; a
			// command with its own usage text exits 0.
			o, e, _ := runCmd(t, nil, path, c, "-h")
			if !strings.Contains(o+e, "-") {
				t.Fatalf("haproxystats-engine %s -h printed no flags: %s%s", c, o, e)
			}
			screens += o + e
		}
	}
	return findFlags(strings.ReplaceAll(screens, "[=true|false]", ""))
}

// manText is a man page's source with troff escapes for '-' and fonts
// removed, so that flags read as typed.
func manText(src string) string {
	src = strings.ReplaceAll(src, `\-`, "-")
	return regexp.MustCompile(`\\f[BIRP]|\\f\[[A-Z]*\]`).ReplaceAllString(src, "")
}

// renderMan runs contrib/man/render.sh as `make man` does, with the
// programs of bin, and returns the output directory.
func renderMan(t *testing.T, bin string) string {
	t.Helper()
	sh := need(t, "sh", "dash")
	out := t.TempDir()
	if o, e, code := runCmd(t, nil, sh, filepath.Join(root, "contrib/man/render.sh"), out, "1.2.3", "2026-01-02", bin); code != 0 {
		t.Fatalf("render.sh: exit %d\n%s%s", code, o, e)
	}
	return out
}

// literalBlock returns the text of the .nf/.fi block that follows marker
// in a rendered page, unescaped.
func literalBlock(page, marker string) string {
	_, after, ok := strings.Cut(page, marker)
	if !ok {
		return ""
	}
	_, block, ok := strings.Cut(after, ".nf\n")
	if !ok {
		return ""
	}
	block, _, _ = strings.Cut(block, ".fi\n")
	return strings.NewReplacer(`\-`, "-", `\e`, `\`, `\&`, "").Replace(block)
}

// TestContribManPages renders the pages as `make man` does and checks each
// against its program: the version and date stamped, every flag of every
// -h screen documented, no flag the program does not have (outside
// foreignFlags), the defaults block equal to what -p prints, and groff's
// warnings silent.
func TestContribManPages(t *testing.T) {
	bin := binaries(t)
	out := renderMan(t, bin)
	for _, p := range programs {
		t.Run(p, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(out, p+".1"))
			if err != nil {
				t.Fatal(err)
			}
			src := string(data)
			if first, _, _ := strings.Cut(src, "\n"); !strings.Contains(first, `"2026-01-02" "haproxystats 1.2.3"`) || strings.Contains(src, "@") {
				t.Errorf("%s.1: .TH line %q, placeholders left: %v", p, first, strings.Contains(src, "@"))
			}
			page := manText(src)
			help := helpFlags(t, bin, p)
			if len(help) < 6 {
				t.Fatalf("%s: only %q found in -h", p, help)
			}
			documented := findFlags(page)
			for _, f := range help {
				if !slices.Contains(documented, f) {
					t.Errorf("%s.1 does not mention %s (from %s -h)", p, f, p)
				}
			}
			for _, f := range documented {
				if !slices.Contains(help, f) && !slices.Contains(foreignFlags, f) {
					t.Errorf("%s.1 mentions %s, which no -h screen of %s has", p, f, p)
				}
			}
			if p != "haproxystats-engine" {
				want, _, code := runCmd(t, nil, filepath.Join(bin, p), "-p")
				if got := literalBlock(src, ".SH CONFIGURATION"); code != 0 || got != want {
					t.Errorf("%s.1: defaults block\n%s\nwant %s -p:\n%s", p, got, p, want)
				}
			}
			t.Logf("%s: %d flags of -h documented: %s", p, len(help), strings.Join(help, " "))
		})
	}
	groff := need(t, "groff", "groff-base")
	for _, p := range programs {
		o, e, code := runCmd(t, nil, groff, "-man", "-ww", "-z", filepath.Join(out, p+".1"))
		if code != 0 || o+e != "" {
			t.Errorf("groff -man -ww %s.1: exit %d\n%s%s", p, code, o, e)
		}
	}
}

// TestContribManPagesFollowThePrograms shows that the pages are derived
// from the programs, not written beside them: render.sh run with programs
// whose -h has one more option and whose -p one more default puts both in
// the pages.
func TestContribManPagesFollowThePrograms(t *testing.T) {
	bin := binaries(t)
	fake := t.TempDir()
	for _, p := range programs {
		script := `#!/bin/sh
real=` + filepath.Join(bin, p) + `
case "$*" in
-h) "$real" -h; echo "    -Z, --zz-new-option <zz>  a new option"; echo "                              [default: 7]" ;;
"run -h") "$real" run -h; echo "      --zz-run-option    a new option of run"; exit 2 ;;
-p) "$real" -p; printf '[zz-section]\nzz-new-key = 42\n\n' ;;
*) exec "$real" "$@" ;;
esac
`
		if err := os.WriteFile(filepath.Join(fake, p), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := renderMan(t, fake)
	for _, p := range programs {
		data, err := os.ReadFile(filepath.Join(out, p+".1"))
		if err != nil {
			t.Fatal(err)
		}
		page := manText(string(data))
		if p == "haproxystats-engine" {
			// Its own -h lists commands, not options; those are per command.
			if !strings.Contains(page, ".TP\n--zz-run-option\nA new option of run\n") {
				t.Errorf("%s.1 rendered with a new option in run -h does not document it:\n%s", p, page)
			}
			continue
		}
		if !strings.Contains(page, ".TP\n-Z, --zz-new-option zz\nA new option [default: 7]\n") {
			t.Errorf("%s.1 rendered with a new option in -h does not document it:\n%s", p, page)
		}
		if !strings.Contains(literalBlock(string(data), ".SH CONFIGURATION"), "zz-new-key = 42\n") {
			t.Errorf("%s.1 rendered with a new default in -p does not show it", p)
		}
	}
	// And a program that is missing is an error, not a page without options.
	os.Remove(filepath.Join(fake, programs[0]))
	sh := need(t, "sh", "dash")
	if _, e, code := runCmd(t, nil, sh, filepath.Join(root, "contrib/man/render.sh"), t.TempDir(), "1", "2", fake); code == 0 || !strings.Contains(e, programs[0]) {
		t.Errorf("render.sh without %s: exit %d, %q; want an error naming it", programs[0], code, e)
	}
}
