package config

import (
	"errors"
	"io"
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

// FuzzInterpolate loads a file and reads every option of every section
// (Get, then Print and the settings, which share one bound): never a panic,
// never a value longer than MaxValueLen, and always an answer, however the
// references nest (bounded by MaxReferences, MaxValueLen and maxExpansion).
func FuzzInterpolate(f *testing.F) {
	seeds := []string{
		"[s]\na = x\nb = ${a}/y\nc = ${t:a}\n[t]\na = 1\n",
		"[DEFAULT]\nx = ${y}\ny = 1\n[s]\ny = 2\n",
		"[s]\nx = ${x}\n",
		"[s]\na = $$ ${} ${a:b:c} $x\n",
		"[paths]\nbase-dir = ${DEFAULT:d}\n[DEFAULT]\nd = /srv\n",
		"[graphite]\nnamespace = ${process:workers}.x\n[process]\nworkers = 9\n",
		bomb(8, 10, "xxxxxxxxxx"),
		bomb(16, 4, ""),
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := LoadSources(nil, Source{Name: "fuzz.conf", Data: data})
		if err != nil {
			return
		}
		for _, s := range append([]string{SectionDefault}, c.Sections()...) {
			for _, o := range c.OwnOptions(s) {
				v, err := c.Get(s, o)
				if err == nil && len(v) > MaxValueLen {
					t.Fatalf("Get(%q, %q) = %d bytes, more than MaxValueLen", s, o, len(v))
				}
			}
		}
		c.Print(io.Discard, nil)
		c.PullSettings()
		c.ProcessSettings()
	})
}
