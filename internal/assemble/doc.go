// Package assemble builds the processing pipeline from a loaded
// configuration: the metric path prefix (namespace and host name), the
// group rules, the built-in stages with their [process] options and
// exclusion files, the operator's WebAssembly stages and the pipeline's
// limits. It is the one place where configuration becomes an
// engine.Pipeline, shared by haproxystats-process, haproxystats-engine and
// the one-daemon mode.
//
// New does its work at construction (compiling modules) and returns errors
// naming the file or option; exclusion files are read again for every
// snapshot (builtin.Exclusions). The resulting Pipeline is safe for
// concurrent use; Built.Close releases the WebAssembly runtimes.
package assemble
