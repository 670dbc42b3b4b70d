package wasmstage

import "testing"

// WAT compiles testdata/<name>.wat for the external tests.
func WAT(t testing.TB, name string) string { return wat(t, name) }
