// Package cases builds the pipeline of a golden case for the case runner
// (engine/enginetest): `haproxystats-engine test`, the conformance tests
// and the WebAssembly examples' cases. It keeps the runner out of the
// daemons, which never import this package.
package cases

import (
	"github.com/haproxystats-go/haproxystats/engine/enginetest"
	"github.com/haproxystats-go/haproxystats/internal/assemble"
)

// Build is the enginetest.Build of this project: the case's
// haproxystats.conf alone, as assemble.ForCase reads it.
func Build(caseDir, confFile string) (*enginetest.Setup, error) {
	b, err := assemble.ForCase(caseDir, confFile)
	if err != nil {
		return nil, err
	}
	return &enginetest.Setup{Pipeline: b.Pipeline, LocalStore: b.Settings.LocalStore.Enabled, Close: b.Close}, nil
}
