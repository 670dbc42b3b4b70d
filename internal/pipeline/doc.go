// Package pipeline assembles the processing pipeline from a loaded
// configuration: the metric path prefix (namespace and host name), the
// group rules, the built-in stages with their [process] options and
// exclusion files, and the operator's WebAssembly stages. It is the one
// place where configuration becomes an engine.Pipeline, shared by
// haproxystats-process, haproxystats-engine and the one-daemon mode.
//
// New does all its work at construction (reading exclusion files,
// compiling modules) and returns errors naming the file or option; the
// resulting Pipeline is safe for concurrent use.
package pipeline
