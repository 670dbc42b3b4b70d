package engine

import (
	"regexp"
	"testing"
)

// TestPathsWithPrefix: a Paths made by WithPrefix has its own prefix, the
// same group rules, and fills the group cache of the Paths it came from
// (one cache for every host of a central processor).
func TestPathsWithPrefix(t *testing.T) {
	p := &Paths{Prefix: "lb.haproxy", GroupNamespace: "team", DoubleWrites: true,
		BackendGroups: []Group{{Name: "web", Pattern: regexp.MustCompile("^be_web")}}}
	q := p.WithPrefix("lb.host1.haproxy")
	r := q.WithPrefix("lb.web.haproxy")
	if q.Prefix != "lb.host1.haproxy" || r.Prefix != "lb.web.haproxy" || !r.DoubleWrites || r.GroupNamespace != "team" || p.Prefix != "lb.haproxy" {
		t.Fatalf("WithPrefix: %+v, %+v (from %+v)", q, r, p)
	}
	if g := r.groupOf(1, r.BackendGroups, "be_web1"); g != "web" {
		t.Errorf("groupOf(be_web1) = %q, want web", g)
	}
	if g := q.groupOf(1, q.BackendGroups, "be_db"); g != "" {
		t.Errorf("groupOf(be_db) = %q, want none", g)
	}
	if len(p.cache[1]) != 2 || p.cache[1]["be_web1"] != "web" || q.cache[1] != nil || r.cache[1] != nil {
		t.Errorf("group caches: origin %v, views %v %v; want both names in the origin's only", p.cache[1], q.cache[1], r.cache[1])
	}
}
