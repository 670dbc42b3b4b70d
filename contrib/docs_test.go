package contrib_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeSection returns the text of the "## title" section of README.md.
func readmeSection(t *testing.T, title string) string {
	t.Helper()
	text := readFile(t, "README.md")
	_, after, ok := strings.Cut(text, "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", title)
	}
	section, _, _ := strings.Cut(after, "\n## ")
	return section
}

// TestContribReadmeOperating checks what the Operating and Migrating
// sections of README.md name against the tree: every log message of the
// "lines worth an alert" table is logged by the code, word for word, and
// every file of the tree they point to exists.
func TestContribReadmeOperating(t *testing.T) {
	operating := readmeSection(t, "Operating")
	migrating := readmeSection(t, "Migrating from the Python original")

	var code strings.Builder
	for _, dir := range []string{"cmd", "internal", "engine", "builtin"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			data, err := os.ReadFile(path)
			code.Write(data)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	row := regexp.MustCompile("(?m)^\\| `([^`]+)`( \\([a-z ]+\\))? \\| ")
	messages := row.FindAllStringSubmatch(operating, -1)
	if len(messages) < 6 {
		t.Fatalf("README.md Operating: only %d log messages found in the table", len(messages))
	}
	for _, m := range messages {
		if strings.HasPrefix(m[1], "haproxystats-") {
			continue // the signals table
		}
		if !strings.Contains(code.String(), `"`+m[1]) {
			t.Errorf("README.md Operating documents the log message %q, which no program logs", m[1])
		}
	}

	path := regexp.MustCompile("(?:contrib|docs|testdata)/[A-Za-z0-9_./-]*[A-Za-z0-9_]")
	for _, p := range path.FindAllString(operating+migrating, -1) {
		if strings.Contains(p, "*") {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("README.md names %s: %v", p, err)
		}
	}
}
