package config

import (
	"errors"
	"testing"
)

// FuzzParse checks that parsing never panics and that gopkg.in/ini.v1 reads
// every file the line scanner accepts exactly as configparser would (the
// scanner's reading); a difference is reported with errMismatch.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"[s]\na = 1\n  b\n\n  c\n\nd = 2\n",
		"[s]\na =\n  x\n  y\n",
		"[s]\na = 1\n  # c\n  b\n",
		"[s]\n  a = 1\n    b = 2\n",
		"[s]\na = `x`\nb = \"\"\"y\"\"\"\n\"k\" = 1\n- = 2\n[z = 3\n",
		"[DEFAULT]\na=1\n[DEFAULT]\nb=2\n",
		"[s] ; x\na = b # c ; d\n",
		"[s]\r\na = 1\r\n",
		"[backend-groups]\nabc = _proc1$$\nxyz = proc\n",
		"[s]\na = \"\"\"x\n  y\"\"\"\n",
		"[s]\na = `x\n  `y\n",
		"[s]\na = x \\\n  y\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := parseFile("fuzz.conf", data)
		if errors.Is(err, errMismatch) {
			t.Fatalf("parseFile(%q): %v", data, err)
		}
	})
}
