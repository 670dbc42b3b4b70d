// Package contrib_test checks the operating files of contrib/ against the
// programs: the systemd units (systemd-analyze verify), the Nagios liveness
// script, the example configuration and docs/configuration.md (against
// the table of options in code, both ways), the man pages (rendered from
// each program's -h and -p), the Grafana dashboard (every target against a
// real VictoriaMetrics), the README's operating sections (log messages and
// files they name), `make dist` and the Debian package (built, installed,
// run and purged on this machine, as root).
package contrib_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/haproxystats-go/haproxystats/internal/testenv"
)

// root is the top of the source tree, seen from contrib/.
const root = ".."

// programs are the three commands, as built into bin/ and packaged.
var programs = []string{"haproxystats-pull", "haproxystats-process", "haproxystats-engine"}

// testVersion is stamped into the binaries the tests build.
const testVersion = "0.0.0-contrib-test"

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	buildOut  []byte
)

// binaries builds the three programs once per test binary into a
// directory readable by every user (the package test runs them as the
// haproxystats user) and returns it.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "haproxystats-contrib-bin")
		if buildErr != nil {
			return
		}
		if buildErr = os.Chmod(buildDir, 0o755); buildErr != nil {
			return
		}
		args := []string{"build", "-o", buildDir + "/",
			"-ldflags", "-X github.com/haproxystats-go/haproxystats/internal/buildinfo.Version=" + testVersion}
		for _, p := range programs {
			args = append(args, "./cmd/"+p)
		}
		cmd := exec.Command(goTool(), args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build the programs: %v\n%s", buildErr, buildOut)
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// goTool is the go command that runs the tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// need returns the path of the executable name or skips the test loudly,
// naming the Debian package that provides it (fails it under CI, where
// .ci/install-deps installs it).
func need(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testenv.Missing(t, fmt.Sprintf("SKIPPING: %s not found in PATH; install the Debian package %s (.ci/install-deps does) to run this test", name, pkg))
	}
	return p
}

// runCmd runs name with args and returns stdout, stderr and the exit
// status (-1 when it could not be started).
func runCmd(t *testing.T, env []string, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if env != nil {
		cmd.Env = env
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			e.WriteString(err.Error())
		}
	}
	return o.String(), e.String(), code
}

// readFile returns the text of a file of the tree.
func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// lines splits text into its non-empty lines.
func lines(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}
