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

	// The group of the last grouped object, and the path prefix of the
	// last object: consecutive metrics of one object reuse both.
	groupKey  objectKey
	group     string
	prefixKey objectKey
	prefix    []byte
}

type objectKey struct {
	scope       Scope
	group       string
	object, srv string
}

func (w *lineWriter) Emit(m Metric) {
	w.count++
	if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
		return
	}
	switch m.Scope {
	case ScopeFrontend:
		w.grouped(m, 0, w.paths.FrontendGroups, m.Object)
	case ScopeBackend, ScopeServer:
		w.grouped(m, 1, w.paths.BackendGroups, m.Object)
	case ScopeAggrServer:
		w.grouped(m, 2, w.paths.ServerGroups, m.Server)
	case ScopeDaemon, ScopeProcess, ScopeSelf, ScopePath:
		w.line(m, "")
	}
}

func (w *lineWriter) grouped(m Metric, kind int, groups []Group, name string) {
	if len(groups) == 0 || w.paths.GroupNamespace == "" {
		w.line(m, "")
		return
	}
	k := objectKey{scope: Scope(kind), object: name}
	if k != w.groupKey {
		w.groupKey, w.group = k, w.paths.groupOf(kind, groups, GraphiteName(name))
	}
	if w.group != "" {
		w.line(m, w.group)
		if !w.paths.DoubleWrites {
			return
		}
	}
	w.line(m, "")
}

var sections = [...]string{
	ScopeDaemon:     "daemon.",
	ScopeProcess:    "daemon.process.",
	ScopeFrontend:   "frontend.",
	ScopeBackend:    "backend.",
	ScopeServer:     "backend.",
	ScopeAggrServer: "server.",
	ScopeSelf:       "haproxystats.",
	ScopePath:       "",
}

// line appends `P[.G.group].<section>[<object>.][server.<srv>.]<name> <value> <ts>\n`.
func (w *lineWriter) line(m Metric, group string) {
	k := objectKey{m.Scope, group, m.Object, m.Server}
	if m.Scope == ScopeDaemon || m.Scope == ScopeSelf || m.Scope == ScopePath {
		k.object, k.srv = "", ""
	} else if m.Scope == ScopeAggrServer {
		k.object = ""
	}
	if k != w.prefixKey || w.prefix == nil {
		w.prefixKey = k
		b := append(w.prefix[:0], w.paths.Prefix...)
		b = append(b, '.')
		if group != "" {
			b = append(b, w.paths.GroupNamespace...)
			b = append(b, '.')
			b = appendName(b, group)
			b = append(b, '.')
		}
		b = append(b, sections[m.Scope]...)
		if k.object != "" {
			b = appendName(b, k.object)
			b = append(b, '.')
		}
		if k.srv != "" {
			if m.Scope == ScopeServer {
				b = append(b, "server."...)
			}
			b = appendName(b, k.srv)
			b = append(b, '.')
		}
		w.prefix = b
	}
	b := append(w.buf, w.prefix...)
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

// appendName appends s with every '.' replaced by '_'.
func appendName(b []byte, s string) []byte {
	i := strings.IndexByte(s, '.')
	if i < 0 {
		return append(b, s...)
	}
	start := len(b)
	b = append(b, s...)
	for j := start + i; j < len(b); j++ {
		if b[j] == '.' {
			b[j] = '_'
		}
	}
	return b
}
