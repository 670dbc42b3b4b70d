package testenv

import (
	"fmt"
	"strings"
	"testing"
)

// verdict records what a helper did to its test instead of doing it.
type verdict struct {
	testing.TB
	fatal, skip string
}

func (v *verdict) Helper()                   {}
func (v *verdict) Fatal(args ...any)         { v.fatal = fmt.Sprint(args...) }
func (v *verdict) Skip(args ...any)          { v.skip = fmt.Sprint(args...) }
func (v *verdict) Skipf(f string, a ...any)  { v.skip = fmt.Sprintf(f, a...) }
func (v *verdict) Fatalf(f string, a ...any) { v.fatal = fmt.Sprintf(f, a...) }

// TestMissingFailsUnderCI: a binary the tests need and do not find skips
// them on a developer's machine and fails them under CI, where
// .ci/install-deps installs it.
func TestMissingFailsUnderCI(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // nothing in it
	// VictoriaMetricsBinary also looks in GOPATH/bin, fixed when the test
	// binary starts: it is checked through Missing.
	helpers := map[string]func(testing.TB) string{
		"HAProxyBinary":     HAProxyBinary,
		"CarbonRelayBinary": CarbonRelayBinary,
		"Missing":           func(t testing.TB) string { Missing(t, "SKIPPING: x not found"); return "" },
	}
	for _, ci := range []string{"", "true", "1"} {
		t.Setenv("CI", ci)
		for name, helper := range helpers {
			v := &verdict{TB: t}
			helper(v)
			if ci == "" && (v.skip == "" || v.fatal != "") {
				t.Errorf("%s without CI: skip %q, fatal %q; want a skip", name, v.skip, v.fatal)
			}
			if ci != "" && (v.fatal == "" || v.skip != "" || !strings.Contains(v.fatal, "CI")) {
				t.Errorf("%s with CI=%s: skip %q, fatal %q; want a failure naming CI", name, ci, v.skip, v.fatal)
			}
		}
	}
}
