package testenv

import (
	"os"
	"strings"
	"testing"
)

// CI reports whether the tests run under CI (the environment variable CI
// is true or 1), where .ci/install-deps has installed every tool the tests
// use.
func CI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// Missing handles a tool or toolchain a test needs and does not find: it
// skips t with msg, a loud reason naming what is missing and how to
// install it; under CI, where a skip would hide that .ci/install-deps did
// not install it, it fails t instead.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if CI() {
		t.Fatal(msg + " (CI is set: .ci/install-deps installs it, so its absence fails the test)")
	} else {
		t.Skip(msg)
	}
}
