package engine

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Group maps object names that match Pattern (searched anywhere in the
// name after dot replacement) to the group Name.
type Group struct {
	Name    string
	Pattern *regexp.Regexp
}

// Paths builds metric paths: the prefix, dot replacement and the group
// rules of SPEC §4 and §5.6. It is safe for concurrent use.
type Paths struct {
	// Prefix is `namespace[.host].haproxy`.
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
}

// groupOf returns the group of name among groups (kind indexes the cache),
// or "" when none matches.
func (p *Paths) groupOf(kind int, groups []Group, name string) string {
	if p.GroupNamespace == "" || len(groups) == 0 {
		return ""
	}
	p.mu.RLock()
	g, ok := p.cache[kind][name]
	p.mu.RUnlock()
	if ok {
		return g
	}
	for _, gr := range groups {
		if gr.Pattern.MatchString(name) {
			g = gr.Name
			break
		}
	}
	p.mu.Lock()
	if p.cache[kind] == nil || len(p.cache[kind]) > maxInterned {
		p.cache[kind] = make(map[string]string)
	}
	p.cache[kind][name] = g
	p.mu.Unlock()
	return g
}

// GraphiteName replaces every '.' of a proxy or server name by '_'.
func GraphiteName(name string) string {
	if strings.IndexByte(name, '.') < 0 {
		return name
	}
	return strings.ReplaceAll(name, ".", "_")
}

// AppendValue appends v in the shortest form that parses back to the same
// float64: 12, 0.5, 0.3333333333333333.
func AppendValue(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// lineWriter is the Emitter the pipeline hands to stages: it formats every
// metric straight into the snapshot's output buffer.
type lineWriter struct {
	paths *Paths
	ts    string
	buf   []byte
	lines int
	count int // metrics emitted, NaN included

	lastKind  int
	lastName  string
	lastGroup string
}

func (w *lineWriter) Emit(m Metric) {
	w.count++
	if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
		return
	}
	switch m.Scope {
	case ScopeDaemon:
		w.line(m, "", "daemon.", "", "")
	case ScopeProcess:
		w.line(m, "", "daemon.process.", m.Object, "")
	case ScopeFrontend:
		w.grouped(m, 0, w.paths.FrontendGroups, m.Object, "frontend.", m.Object, "")
	case ScopeBackend:
		w.grouped(m, 1, w.paths.BackendGroups, m.Object, "backend.", m.Object, "")
	case ScopeServer:
		w.grouped(m, 1, w.paths.BackendGroups, m.Object, "backend.", m.Object, m.Server)
	case ScopeAggrServer:
		w.grouped(m, 2, w.paths.ServerGroups, m.Server, "server.", m.Server, "")
	case ScopeSelf:
		w.line(m, "", "haproxystats.", "", "")
	case ScopePath:
		w.line(m, "", "", "", "")
	}
}

func (w *lineWriter) grouped(m Metric, kind int, groups []Group, key, section, obj, srv string) {
	key = GraphiteName(key)
	var group string
	if w.lastKind == kind && w.lastName == key {
		group = w.lastGroup
	} else {
		group = w.paths.groupOf(kind, groups, key)
		w.lastKind, w.lastName, w.lastGroup = kind, key, group
	}
	if group != "" {
		w.line(m, group, section, obj, srv)
		if !w.paths.DoubleWrites {
			return
		}
	}
	w.line(m, "", section, obj, srv)
}

// line appends `P[.G.group].<section><obj>[.server.<srv>].<name> <value> <ts>\n`.
func (w *lineWriter) line(m Metric, group, section, obj, srv string) {
	b := append(w.buf, w.paths.Prefix...)
	b = append(b, '.')
	if group != "" {
		b = append(b, w.paths.GroupNamespace...)
		b = append(b, '.')
		b = appendName(b, group)
		b = append(b, '.')
	}
	b = append(b, section...)
	if obj != "" {
		b = appendName(b, obj)
		b = append(b, '.')
	}
	if srv != "" {
		b = append(b, "server."...)
		b = appendName(b, srv)
		b = append(b, '.')
	}
	if m.Scope == ScopePath {
		b = append(b, m.Name...)
	} else {
		b = appendName(b, m.Name)
	}
	b = append(b, ' ')
	b = AppendValue(b, m.Value)
	b = append(b, ' ')
	b = append(b, w.ts...)
	b = append(b, '\n')
	w.buf = b
	w.lines++
}

func appendName(b []byte, s string) []byte {
	start := len(b)
	b = append(b, s...)
	for i := start; i < len(b); i++ {
		if b[i] == '.' {
			b[i] = '_'
		}
	}
	return b
}
