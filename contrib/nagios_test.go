package contrib_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestContribNagiosDaemons runs check_haproxystats_daemons.sh with a fake
// systemctl first on PATH that answers `is-active UNIT...` as systemd does:
// one state per unit on stdout, exit 0 only when all are active. The fake
// also records its arguments, so the documented liveness command
// (`systemctl is-active haproxystats-pull haproxystats-process`) is
// checked to be what the script runs.
func TestContribNagiosDaemons(t *testing.T) {
	script, err := filepath.Abs(filepath.Join(root, "contrib/nagios/check_haproxystats_daemons.sh"))
	if err != nil {
		t.Fatal(err)
	}
	sh := need(t, "sh", "dash")
	fakeDir := t.TempDir()
	argsFile := filepath.Join(fakeDir, "args")
	fake := `#!/bin/sh
echo "$*" > "` + argsFile + `"
[ "$1" = is-active ] || exit 64
shift
rc=0
for u in "$@"; do
	eval "s=\${STATE_$(echo "$u" | tr -c 'a-zA-Z0-9\n' _):-inactive}"
	[ "$s" = NONE ] && { echo "Failed to connect to bus" >&2; continue; }
	echo "$s"
	[ "$s" = active ] || rc=3
done
exit $rc
`
	if err := os.WriteFile(filepath.Join(fakeDir, "systemctl"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	state := func(pull, proc string) []string {
		return []string{"STATE_haproxystats_pull=" + pull, "STATE_haproxystats_process=" + proc}
	}
	tests := []struct {
		name  string
		args  []string
		env   []string
		code  int
		out   string
		calls string
	}{
		{"both active", nil, state("active", "active"), 0,
			"OK: haproxystats-pull active, haproxystats-process active\n", "is-active haproxystats-pull haproxystats-process"},
		{"process failed", nil, state("active", "failed"), 2,
			"CRITICAL: haproxystats-pull active, haproxystats-process failed\n", ""},
		{"pull stopped", nil, state("inactive", "active"), 2,
			"CRITICAL: haproxystats-pull inactive, haproxystats-process active\n", ""},
		{"restarting", nil, state("activating", "active"), 1,
			"WARNING: haproxystats-pull activating, haproxystats-process active\n", ""},
		{"restarting and failed", nil, state("activating", "failed"), 2,
			"CRITICAL: haproxystats-pull activating, haproxystats-process failed\n", ""},
		{"one daemon", []string{"haproxystats"}, []string{"STATE_haproxystats=active"}, 0,
			"OK: haproxystats active\n", "is-active haproxystats"},
		{"one daemon unknown unit", []string{"haproxystats"}, []string{"STATE_haproxystats=unknown"}, 2,
			"CRITICAL: haproxystats unknown\n", ""},
		{"no answer", nil, state("NONE", "NONE"), 3,
			"UNKNOWN: systemctl is-active haproxystats-pull haproxystats-process answered 0 states for 2 units: Failed to connect to bus\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append([]string{"PATH=" + fakeDir + ":/usr/bin:/bin"}, tt.env...)
			out, errOut, code := runCmd(t, env, sh, append([]string{script}, tt.args...)...)
			if code != tt.code || out != tt.out {
				t.Errorf("check_haproxystats_daemons.sh %q = %d, %q; want %d, %q (stderr %q)", tt.args, code, out, tt.code, tt.out, errOut)
			}
			if tt.calls != "" {
				got, _ := os.ReadFile(argsFile)
				if strings.TrimSpace(string(got)) != tt.calls {
					t.Errorf("ran systemctl %q, want systemctl %q", strings.TrimSpace(string(got)), tt.calls)
				}
			}
		})
	}
	t.Run("no systemctl", func(t *testing.T) {
		empty := t.TempDir()
		out, _, code := runCmd(t, []string{"PATH=" + empty}, sh, script)
		if code != 3 || out != "UNKNOWN: systemctl not found\n" {
			t.Errorf("without systemctl = %d, %q; want 3, UNKNOWN", code, out)
		}
	})
	// The units document the same command.
	for _, u := range []string{"haproxystats-pull.service", "haproxystats-process.service"} {
		if !strings.Contains(readFile(t, "contrib/systemd/"+u), "systemctl is-active haproxystats-pull haproxystats-process") {
			t.Errorf("%s does not document the liveness command", u)
		}
	}
}
