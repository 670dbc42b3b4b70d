package config

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestZZPyDiff(t *testing.T) {
	data, err := os.ReadFile("/tmp/pydiff/cases.json")
	if err != nil {
		t.Skip(err)
	}
	var cases []struct {
		Text string
		Res  struct {
			Ok       bool
			Line     int
			Err      string
			Sections map[string]map[string]string
			Order    map[string][]string
			Default  map[string]string
			Sorder   []string
		}
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, c := range cases {
		fd, err := parseFile("x.conf", []byte(c.Text))
		if !c.Res.Ok {
			var perr *ParseError
			if !errors.As(err, &perr) || !strings.Contains(err.Error(), " line "+strconv.Itoa(c.Res.Line)+":") {
				bad++
				if bad < 15 {
					t.Errorf("%q: python %s at line %d, go %v", c.Text, c.Res.Err, c.Res.Line, err)
				}
			}
			continue
		}
		if err != nil {
			bad++
			if bad < 15 {
				t.Errorf("%q: python ok, go %v", c.Text, err)
			}
			continue
		}
		got := map[string]map[string]string{}
		gorder := map[string][]string{}
		for _, s := range fd.order {
			got[s] = fd.sections[s].values
			gorder[s] = fd.sections[s].order
		}
		def := map[string]string{}
		if d := fd.sections["DEFAULT"]; d != nil {
			def = d.values
		}
		if len(c.Res.Sections) == 0 {
			c.Res.Sections = map[string]map[string]string{}
			c.Res.Order = map[string][]string{}
		}
		for s := range c.Res.Sections {
			if c.Res.Sections[s] == nil {
				c.Res.Sections[s] = map[string]string{}
			}
		}
		for s, v := range got {
			if len(v) == 0 {
				got[s] = map[string]string{}
			}
		}
		if c.Res.Default == nil {
			c.Res.Default = map[string]string{}
		}
		ok := reflect.DeepEqual(got, c.Res.Sections) && reflect.DeepEqual(def, c.Res.Default) && strings.Join(fd.order, "|") == strings.Join(c.Res.Sorder, "|")
		for s, o := range c.Res.Order {
			if len(o) == 0 && len(gorder[s]) == 0 {
				continue
			}
			if !reflect.DeepEqual(o, gorder[s]) {
				ok = false
			}
		}
		if !ok {
			bad++
			if bad < 15 {
				t.Errorf("%q:\npython %v %v %v\ngo     %v %v %v", c.Text, c.Res.Sections, c.Res.Default, c.Res.Sorder, got, def, fd.order)
			}
		}
	}
	t.Logf("%d cases, %d differ", len(cases), bad)
}
