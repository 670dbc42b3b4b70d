package wasmstage

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseOptions(t *testing.T) {
	abs, _ := filepath.Abs("/opt/stages/x.wasm")
	tests := []struct {
		name    string
		stage   string
		section map[string]string
		want    Options
		errs    []string
	}{
		{
			name:    "defaults",
			stage:   "errratio",
			section: map[string]string{"module": "stages/errratio.wasm"},
			want: Options{Name: "errratio", Module: filepath.Join("/etc/haproxystats", "stages/errratio.wasm"),
				Timeout: time.Second, MemoryLimitMiB: 64, MaxMetrics: 100000, Params: map[string]string{},
				ModuleSizeLimitMiB: 32, CompileTimeout: time.Minute},
		},
		{
			name:  "everything",
			stage: "top-5",
			section: map[string]string{"module": abs, "timeout": "0.25", "memory-limit": "16",
				"max-metrics": "10", "top": "5", "label": " a b ", "module-size-limit": "2", "compile-timeout": "2.5"},
			want: Options{Name: "top-5", Module: abs, Timeout: 250 * time.Millisecond, MemoryLimitMiB: 16,
				MaxMetrics: 10, Params: map[string]string{"top": "5", "label": " a b "},
				ModuleSizeLimitMiB: 2, CompileTimeout: 2500 * time.Millisecond},
		},
		{
			name:    "trusted",
			stage:   "t",
			section: map[string]string{"module": "t.wasm", "timeout": "0"},
			want: Options{Name: "t", Module: filepath.Join("/etc/haproxystats", "t.wasm"), Timeout: 0,
				MemoryLimitMiB: 64, MaxMetrics: 100000, Params: map[string]string{},
				ModuleSizeLimitMiB: 32, CompileTimeout: time.Minute},
		},
		{
			name:    "missing module",
			stage:   "x",
			section: map[string]string{"timeout": "1"},
			errs:    []string{"[stage.x] module: required option missing"},
		},
		{
			name:  "all wrong at once",
			stage: "x",
			section: map[string]string{"module": " ", "timeout": "-1", "memory-limit": "64MB",
				"max-metrics": "0", "module-size-limit": "0", "compile-timeout": "0"},
			errs: []string{
				`[stage.x] module = " ": empty path`,
				`[stage.x] module-size-limit = "0": want MiB between 1 and 1024`,
				`[stage.x] compile-timeout = "0": want seconds between 0.001 and 3600`,
				`[stage.x] timeout = "-1": want seconds between 0 (no limit) and 3600`,
				`[stage.x] memory-limit = "64MB": want MiB between 1 and 4096`,
				`[stage.x] max-metrics = "0": want a number of metrics between 1 and 2147483647`,
			},
		},
		{name: "timeout NaN", stage: "x", section: map[string]string{"module": "m", "timeout": "nan"}, errs: []string{`timeout = "nan"`}},
		{name: "timeout too small", stage: "x", section: map[string]string{"module": "m", "timeout": "0.0000001"}, errs: []string{"at least 0.001"}},
		{name: "memory too large", stage: "x", section: map[string]string{"module": "m", "memory-limit": "5000"}, errs: []string{`memory-limit = "5000"`}},
		{name: "bad stage name", stage: "a.b", section: map[string]string{"module": "m"}, errs: []string{`stage name "a.b"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOptions(tt.stage, tt.section, "/etc/haproxystats")
			if len(tt.errs) > 0 {
				if err == nil {
					t.Fatalf("ParseOptions(%v) = %+v, want errors %q", tt.section, got, tt.errs)
				}
				for _, e := range tt.errs {
					if !strings.Contains(err.Error(), e) {
						t.Errorf("ParseOptions(%v) = %v, want it to contain %q", tt.section, err, e)
					}
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseOptions(%v) = %+v, %v; want %+v", tt.section, got, err, tt.want)
			}
		})
	}
}

// TestOptionNames: every name OptionNames lists is one ParseOptions reads
// itself (not a parameter), and every other option is a parameter.
func TestOptionNames(t *testing.T) {
	section := map[string]string{"module": "m", "other": "x"}
	values := map[string]string{"timeout": "1", "memory-limit": "1", "max-metrics": "1", "module-size-limit": "1", "compile-timeout": "1"}
	for _, name := range OptionNames() {
		if v, ok := values[name]; ok {
			section[name] = v
		} else if name != "module" {
			t.Errorf("OptionNames() lists %q, which this test does not know", name)
		}
	}
	o, err := ParseOptions("x", section, "/")
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Params) != 1 || o.Params["other"] != "x" {
		t.Errorf("ParseOptions(%v).Params = %v, want only other", section, o.Params)
	}
}
