package contrib_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// makeTarget returns the recipe lines of target in the Makefile.
func makeTarget(t *testing.T, target string) []string {
	t.Helper()
	var recipe []string
	in := false
	for _, l := range strings.Split(readFile(t, "Makefile"), "\n") {
		switch {
		case strings.HasPrefix(l, target+":"):
			in = true
		case in && strings.HasPrefix(l, "\t"):
			recipe = append(recipe, l)
		case in && l != "" && !strings.HasPrefix(l, "\t"):
			return recipe
		}
	}
	return recipe
}

// TestMakeFuzzRunsEveryTarget: `make fuzz` runs every fuzz target of the
// tree, each in its package, so that a new parser's fuzz test is not
// forgotten.
func TestMakeFuzzRunsEveryTarget(t *testing.T) {
	recipe := strings.Join(makeTarget(t, "fuzz"), "\n")
	fuzzFunc := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`)
	found := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		for _, m := range fuzzFunc.FindAllStringSubmatch(string(data), -1) {
			found++
			want := "-fuzz '^" + m[1] + "$$' -fuzztime $(FUZZTIME) ./" + rel + "/"
			if !strings.Contains(recipe, want) {
				t.Errorf("make fuzz does not run %s of ./%s/ (want a line with %q)", m[1], rel, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 5 {
		t.Errorf("found %d fuzz targets, want at least the 5 of stat, info, config (2) and the WASM decoder", found)
	}
}

// TestMakeTestChecksModTidy: `make test` (CI) fails when go.mod or go.sum
// is not what the code needs.
func TestMakeTestChecksModTidy(t *testing.T) {
	if !strings.Contains(strings.Join(makeTarget(t, "lint"), "\n"), "$(GO) mod tidy -diff") {
		t.Error("make lint does not run go mod tidy -diff")
	}
	if test := readFile(t, "Makefile"); !regexp.MustCompile(`(?m)^test:.*\blint\b`).MatchString(test) {
		t.Error("make test does not depend on lint")
	}
}
