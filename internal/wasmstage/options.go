package wasmstage

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Defaults of the [stage.<name>] options.
const (
	DefaultTimeout        = time.Second
	DefaultMemoryLimitMiB = 64
	DefaultMaxMetrics     = 100000
	// DefaultModuleSizeLimitMiB bounds the module file: a Go module is
	// about 3 MB, a C or Rust one far less.
	DefaultModuleSizeLimitMiB = 32
	// DefaultCompileTimeout bounds the compilation of the module in the
	// child process: a 3 MB Go module takes 1-10 s on a busy 2-core
	// machine, a module with a compilation cache hit milliseconds.
	DefaultCompileTimeout = time.Minute
)

// Bounds of the [stage.<name>] options.
const (
	maxTimeout        = time.Hour
	maxMemoryLimitMiB = 4096 // the 32-bit address space
	maxMaxMetrics     = math.MaxInt32
	// maxModuleSizeLimit bounds module-size-limit, in bytes.
	maxModuleSizeLimit = 1 << 30
)

// Options configures one WASM stage: a `[stage.<name>]` section.
type Options struct {
	// Name is the stage name from `[process] stages`; it appears in logs
	// and in the self-metrics Stage<Name>WallClockTime, Stage<Name>Metrics
	// and Stage<Name>Errors.
	Name string
	// Module is the path of the .wasm file.
	Module string
	// Timeout bounds each call into the module (instantiation included);
	// 0 means a trusted module without time limit, run in the daemon
	// itself instead of a child process.
	Timeout time.Duration
	// MemoryLimitMiB bounds the module's linear memory; 0 means
	// DefaultMemoryLimitMiB.
	MemoryLimitMiB int
	// MaxMetrics bounds the metrics one call may return; 0 means
	// DefaultMaxMetrics.
	MaxMetrics int
	// Params are the other options of the section, handed to the module's
	// hs_init.
	Params map[string]string
	// ModuleSizeLimitMiB bounds the size of the module file; 0 means
	// DefaultModuleSizeLimitMiB.
	ModuleSizeLimitMiB int
	// CompileTimeout bounds the compilation of the module in the child
	// process (at start-up, and again when a killed child is replaced);
	// 0 means DefaultCompileTimeout. A trusted module (Timeout 0) is
	// compiled in the daemon, without a limit.
	CompileTimeout time.Duration
	// CacheDir is the directory of wazero's compilation cache, so that a
	// restart does not compile the module again; "" keeps compiled code in
	// memory only (with a timeout: in a temporary directory removed by
	// Close, which a replaced child process reads).
	CacheDir string

	// childExec is the program started as the child process; "" is the
	// running program (/proc/self/exe). Tests set it.
	childExec string
}

// OptionNames lists the options of a `[stage.<name>]` section that the
// host reads itself; every other option is a parameter of the module.
func OptionNames() []string {
	return []string{"module", "timeout", "memory-limit", "max-metrics", "module-size-limit", "compile-timeout"}
}

// ParseOptions validates the raw options of the `[stage.<name>]` section
// (option names lower-case, as the configuration loader delivers them).
// module is required and resolved against configDir when relative;
// timeout (float seconds, default 1, 0 = no limit), memory-limit (MiB,
// default 64), max-metrics (default 100000), module-size-limit (MiB,
// default 32) and compile-timeout (float seconds, default 60) are checked;
// every other option becomes a parameter. All problems are returned at once, each
// naming the section, the option and its value.
func ParseOptions(name string, section map[string]string, configDir string) (Options, error) {
	o := Options{
		Name:           name,
		Timeout:        DefaultTimeout,
		MemoryLimitMiB: DefaultMemoryLimitMiB,
		MaxMetrics:     DefaultMaxMetrics,
		Params:         map[string]string{},

		ModuleSizeLimitMiB: DefaultModuleSizeLimitMiB,
		CompileTimeout:     DefaultCompileTimeout,
	}
	var errs []error
	if err := checkStageName(name); err != nil {
		errs = append(errs, err)
	}
	bad := func(option, value, format string, args ...any) {
		errs = append(errs, fmt.Errorf("[stage.%s] %s = %q: %s", name, option, value, fmt.Sprintf(format, args...)))
	}
	haveModule := false
	keys := make([]string, 0, len(section))
	for k := range section {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := section[k]
		tv := strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "module":
			haveModule = true
			if tv == "" {
				bad(k, v, "empty path")
				continue
			}
			if !filepath.IsAbs(tv) {
				tv = filepath.Join(configDir, tv)
			}
			o.Module = tv
		case "timeout":
			f, err := strconv.ParseFloat(tv, 64)
			if err != nil || math.IsNaN(f) || f < 0 || f > maxTimeout.Seconds() {
				bad(k, v, "want seconds between 0 (no limit) and %g", maxTimeout.Seconds())
				continue
			}
			o.Timeout = time.Duration(f * float64(time.Second))
			if f > 0 && o.Timeout < time.Millisecond {
				bad(k, v, "want at least 0.001 seconds, or 0 for no limit")
			}
		case "memory-limit":
			n, err := strconv.Atoi(tv)
			if err != nil || n < 1 || n > maxMemoryLimitMiB {
				bad(k, v, "want MiB between 1 and %d", maxMemoryLimitMiB)
				continue
			}
			o.MemoryLimitMiB = n
		case "max-metrics":
			n, err := strconv.Atoi(tv)
			if err != nil || n < 1 || n > maxMaxMetrics {
				bad(k, v, "want a number of metrics between 1 and %d", maxMaxMetrics)
				continue
			}
			o.MaxMetrics = n
		case "module-size-limit":
			n, err := strconv.Atoi(tv)
			if err != nil || n < 1 || n > maxModuleSizeLimit>>20 {
				bad(k, v, "want MiB between 1 and %d", maxModuleSizeLimit>>20)
				continue
			}
			o.ModuleSizeLimitMiB = n
		case "compile-timeout":
			f, err := strconv.ParseFloat(tv, 64)
			if err != nil || math.IsNaN(f) || f < 0.001 || f > maxTimeout.Seconds() {
				bad(k, v, "want seconds between 0.001 and %g", maxTimeout.Seconds())
				continue
			}
			o.CompileTimeout = time.Duration(f * float64(time.Second))
		default:
			o.Params[k] = v
		}
	}
	if !haveModule {
		errs = append(errs, fmt.Errorf("[stage.%s] module: required option missing", name))
	}
	return o, errors.Join(errs...)
}

// checkStageName accepts names usable in a metric path: letters, digits,
// '_' and '-'.
func checkStageName(name string) error {
	if name == "" {
		return errors.New("stage name is empty")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("[stage.%s]: stage name %q may hold only letters, digits, '_' and '-'", name, name)
		}
	}
	return nil
}

// withDefaults fills the zero fields of o.
func (o Options) withDefaults() Options {
	if o.MemoryLimitMiB <= 0 {
		o.MemoryLimitMiB = DefaultMemoryLimitMiB
	}
	if o.MaxMetrics <= 0 {
		o.MaxMetrics = DefaultMaxMetrics
	}
	if o.ModuleSizeLimitMiB <= 0 {
		o.ModuleSizeLimitMiB = DefaultModuleSizeLimitMiB
	}
	if o.CompileTimeout <= 0 {
		o.CompileTimeout = DefaultCompileTimeout
	}
	return o
}
