package config

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestZZPyDiff2(t *testing.T) {
	data, err := os.ReadFile("/tmp/pydiff/cases2.json")
	if err != nil {
		t.Skip(err)
	}
	var cases []struct {
		Text string
		Res  map[string]struct {
			Ok      bool
			V       string
			Missing bool
			Sec     string
			Opt     string
		}
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, c := range cases {
		cfg, err := LoadSources(nil, Source{Name: "x", Data: []byte(c.Text)})
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range c.Res {
			sec, opt, _ := strings.Cut(k, "|")
			got, err := cfg.Get(sec, opt)
			ok := true
			switch {
			case want.Ok:
				ok = err == nil && got == want.V
			case want.Missing:
				ok = errors.Is(err, ErrNoOption) || errors.Is(err, ErrNoSection)
				var e *Error
				if errors.As(err, &e) {
					ok = false
				}
			default:
				var e *Error
				ok = errors.As(err, &e) && e.Section == want.Sec && e.Option == want.Opt
			}
			if !ok {
				bad++
				if bad < 15 {
					t.Errorf("%q Get(%s, %s) = %q, %v; python %+v", c.Text, sec, opt, got, err, want)
				}
			}
		}
	}
	t.Logf("%d cases, %d differ", len(cases), bad)
}
