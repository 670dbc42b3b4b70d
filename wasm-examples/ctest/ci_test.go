package ctest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildScriptMissingToolchain: with no rustc that builds a wasm32
// module with std (here a rustc that fails as rustup's does without the
// target), build-c-rust.sh skips the Rust examples loudly, exit 0, and
// under CI fails, exit 1: a skip there would hide that .ci/install-deps
// did not install the toolchain.
func TestBuildScriptMissingToolchain(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "rustc")
	script := "#!/bin/sh\necho \"error[E0463]: can't find crate for \\`std\\`\" >&2\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := filepath.Abs(filepath.Join(examplesDir, "rsavail", "rsavail.rs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range []string{"", "true"} {
		out := t.TempDir()
		cmd := exec.Command(filepath.Join(examplesDir, "build-c-rust.sh"), "-o", out, src)
		cmd.Env = append(os.Environ(), "RUSTC="+fake, "CI="+ci)
		log, err := cmd.CombinedOutput()
		code := cmd.ProcessState.ExitCode()
		if err != nil && code < 0 {
			t.Fatalf("build-c-rust.sh: %v", err)
		}
		if _, serr := os.Stat(filepath.Join(out, "rsavail", "rsavail.wasm")); serr == nil {
			t.Errorf("CI=%q: a module was built with a rustc that cannot", ci)
		}
		switch {
		case ci == "" && (code != 0 || !strings.Contains(string(log), "!!! SKIP Rust examples rsavail")):
			t.Errorf("CI unset: exit %d, output %q; want 0 and a SKIP line", code, log)
		case ci != "" && (code != 1 || !strings.Contains(string(log), "!!! FAIL Rust examples rsavail") || !strings.Contains(string(log), "E0463")):
			t.Errorf("CI=true: exit %d, output %q; want 1 and a FAIL line with the probe's error", code, log)
		}
	}
}
