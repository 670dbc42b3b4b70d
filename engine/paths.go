package engine

import (
	"math"
	"regexp"
	"strconv"
	"sync"
)

// Group maps object names that match Pattern (searched anywhere in the
// name as it appears in paths) to the group Name.
type Group struct {
	Name    string
	Pattern *regexp.Regexp
}

// Paths builds metric paths: the prefix, the name rule and the group rules
// of SPEC §4 and §5.6. It is safe for concurrent use.
type Paths struct {
	// Prefix is `namespace[.host].haproxy`, used as written: the
	// configuration checks it.
	Prefix string
	// GroupNamespace enables grouping when not empty.
	GroupNamespace string
	// DoubleWrites also sends grouped metrics under the plain path.
	DoubleWrites bool
	// Frontend, Backend and Server groups, in configuration order; the
	// first matching group wins.
	FrontendGroups, BackendGroups, ServerGroups []Group

	mu    sync.RWMutex
	cache [3]map[string]string
	// shared, when set, holds the group cache (a Paths of WithPrefix).
	shared *Paths
}

// WithPrefix returns paths with another prefix and the same group rules,
// sharing p's cache of the groups of names (a central processor makes one
// per load balancer host and cluster: the cache, up to a few MB for a
// large installation with groups, is then held once). Safe for concurrent
// use with p; p's group fields must not change afterwards.
func (p *Paths) WithPrefix(prefix string) *Paths {
	return &Paths{
		Prefix:         prefix,
		GroupNamespace: p.GroupNamespace,
		DoubleWrites:   p.DoubleWrites,
		FrontendGroups: p.FrontendGroups,
		BackendGroups:  p.BackendGroups,
		ServerGroups:   p.ServerGroups,
		shared:         p.cacheOwner(),
	}
}

// cacheOwner is the Paths whose group cache p uses.
func (p *Paths) cacheOwner() *Paths {
	if p.shared != nil {
		return p.shared
	}
	return p
}

// maxGroupCache bounds each group cache; it is emptied when it grows past.
const maxGroupCache = 1 << 20

// groupOf returns the group of name among groups (kind indexes the cache),
// or "" when none matches.
func (p *Paths) groupOf(kind int, groups []Group, name string) string {
	if p.GroupNamespace == "" || len(groups) == 0 {
		return ""
	}
	c := p.cacheOwner()
	c.mu.RLock()
	g, ok := c.cache[kind][name]
	c.mu.RUnlock()
	if ok {
		return g
	}
	for _, gr := range groups {
		if gr.Pattern.MatchString(name) {
			g = gr.Name
			break
		}
	}
	c.mu.Lock()
	if c.cache[kind] == nil || len(c.cache[kind]) > maxGroupCache {
		c.cache[kind] = make(map[string]string)
	}
	c.cache[kind][name] = g
	c.mu.Unlock()
	return g
}

// safe marks the bytes a name keeps in a metric path: the characters
// HAProxy itself allows in proxy and server names, but the dot, which
// separates path segments. Every other byte becomes '_'.
var safe = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['_'], t['-'], t[':'] = true, true, true
	return t
}()

// PathName returns name as it appears in a metric path: every byte
// outside [A-Za-z0-9_:-] becomes '_'. For the names HAProxy accepts this
// replaces only the dots, as the original did; for anything else
// (spaces, control characters, a newline in a quoted CSV field, Graphite
// tag syntax `;` and `=`, bytes of non-ASCII characters) it guarantees
// that no name can add a line or a field to the Graphite stream. Every
// metric path the pipeline writes goes through this rule.
func PathName(name string) string {
	for i := 0; i < len(name); i++ {
		if !safe[name[i]] {
			return string(appendName(make([]byte, 0, len(name)), name))
		}
	}
	return name
}

// needsCare reports whether name holds a byte that PathName replaces
// other than a dot: such names are worth a warning.
func needsCare(name []byte) bool {
	for _, c := range name {
		if !safe[c] && c != '.' {
			return true
		}
	}
	return false
}

// appendName appends s with the PathName rule.
func appendName(b []byte, s string) []byte {
	start := len(b)
	b = append(b, s...)
	for j := start; j < len(b); j++ {
		if !safe[b[j]] {
			b[j] = '_'
		}
	}
	return b
}

// appendPath appends a free path (ScopePath): segments separated by dots,
// each with the PathName rule.
func appendPath(b []byte, s string) []byte {
	start := len(b)
	b = append(b, s...)
	for j := start; j < len(b); j++ {
		if !safe[b[j]] && b[j] != '.' {
			b[j] = '_'
		}
	}
	return b
}

// AppendValue appends v in the shortest form that parses back to the same
// float64: 12, 0.5, 0.3333333333333333.
func AppendValue(b []byte, v float64) []byte {
	if v >= 0 && v < 10 && v == math.Trunc(v) { // most counters of most objects
		return append(b, '0'+byte(v))
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}
