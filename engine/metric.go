package engine

// Scope says where a metric belongs and so how its path is built. With
// prefix P (`namespace[.host].haproxy`) and, for grouped objects,
// group namespace G and group g:
type Scope uint8

const (
	// ScopeDaemon: P.daemon.<Name>.
	ScopeDaemon Scope = iota + 1
	// ScopeProcess: P.daemon.process.<Object>.<Name>, Object the process.
	ScopeProcess
	// ScopeFrontend: P[.G.g].frontend.<Object>.<Name>.
	ScopeFrontend
	// ScopeBackend: P[.G.g].backend.<Object>.<Name>.
	ScopeBackend
	// ScopeServer: P[.G.g].backend.<Object>.server.<Server>.<Name>; the
	// group is the backend's.
	ScopeServer
	// ScopeAggrServer: P[.G.g].server.<Server>.<Name>, a server aggregated
	// over every backend; grouped by [server-groups].
	ScopeAggrServer
	// ScopeSelf: P.haproxystats.<Name>, never grouped.
	ScopeSelf
	// ScopePath: P.<Name>, a free path under the prefix; Name may contain
	// dots and is not changed.
	ScopePath
)

var scopeNames = [...]string{"", "daemon", "process", "frontend", "backend", "server", "aggr-server", "self", "path"}

func (s Scope) String() string {
	if int(s) < len(scopeNames) {
		return scopeNames[s]
	}
	return "invalid"
}

// Metric is one value computed from a snapshot. Object and Server are
// proxy and server names; dots in them (and in Name, except for ScopePath)
// become '_' in the path.
type Metric struct {
	Scope  Scope
	Object string
	Server string
	Name   string
	Value  float64
}

// ObjectEmitter is implemented by the Emitters the pipeline hands to
// stages: EmitObject emits one metric per name, all of the object that
// m's Scope, Object and Server name (m.Name and m.Value are ignored), with
// values[i] the value of names[i]; it is Emit called for each, without
// building the object's path more than once. Stages that emit many
// metrics per object use it when the Emitter has it.
type ObjectEmitter interface {
	Emitter
	EmitObject(m Metric, names []string, values []float64)
}

// Emitter receives the metrics of a stage. Implementations provided by the
// pipeline are not safe for concurrent use: a stage emits from the
// goroutine that called Process.
type Emitter interface {
	Emit(m Metric)
}
