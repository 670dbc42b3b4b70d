package contrib_test

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/wasmstage"
)

// The example configuration's convention (stated at its top):
//
//	;key = value   an option shown with its default, or for an option
//	               without default an example value; ;[section] likewise
//	# text         prose
//	key = value    an option the file really sets
//
// The rules this file checks:
//  1. As shipped, the file changes no default: every option the code has a
//     default for (config.PrintDefaults, all sections) resolves to the
//     same value through config.LoadSources. Only the options in setExtra,
//     which have no default, are really set.
//  2. With every `;` of an option or header line removed ("uncommented"),
//     the same holds, so each `;key = value` shows the code's default; and
//     every default option appears in the text of its section (an option
//     inherited from [DEFAULT] may appear in [DEFAULT] only), so a new
//     default in code cannot go undocumented.
//  3. Every option the code knows without a default (codeTable's unset
//     rows) appears with an example, and the uncommented file validates as
//     both programs would (PullSettings, ProcessSettings).
//  4. The [stage.example] section shows wasmstage's defaults.
//  5. Every section and option the file writes is one the code reads: an
//     option of the code's table (of its section or of DEFAULT), any
//     group = regex of a *-groups section, or an option of [stage.example].

const exampleConf = "contrib/haproxystats.conf"

// setExtra are the options the shipped file really sets.
var setExtra = map[string]string{"pull/socket-dir": "/run/haproxy"}

// codeOption is one row of the table of known options in
// internal/config/defaults.go.
type codeOption struct {
	value string
	unset bool
}

// codeTable reads the table of known options, `var table = []option{...}`
// of internal/config/defaults.go, from its source: section -> option ->
// row, unset rows included (config.PrintDefaults shows only the options
// with a default). The rows with a default are checked against
// config.PrintDefaults, so this reading cannot go wrong unnoticed.
func codeTable(t *testing.T) map[string]map[string]codeOption {
	t.Helper()
	const file = "internal/config/defaults.go"
	f, err := parser.ParseFile(token.NewFileSet(), file, readFile(t, file), 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	var rows []ast.Expr
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, spec := range g.Specs {
			vs, ok := spec.(*ast.ValueSpec)
			if !ok {
				continue
			}
			for i, name := range vs.Names {
				if i >= len(vs.Values) {
					continue
				}
				switch v := vs.Values[i].(type) {
				case *ast.BasicLit:
					if g.Tok == token.CONST && v.Kind == token.STRING {
						consts[name.Name], _ = strconv.Unquote(v.Value)
					}
				case *ast.CompositeLit:
					if name.Name == "table" {
						rows = v.Elts
					}
				}
			}
		}
	}
	if len(rows) < 20 {
		t.Fatalf("%s: found %d rows in var table; has the table moved?", file, len(rows))
	}
	out := map[string]map[string]codeOption{}
	for _, r := range rows {
		lit, ok := r.(*ast.CompositeLit)
		if !ok {
			t.Fatalf("%s: a row of table is not a literal", file)
		}
		var section, name string
		var o codeOption
		for _, e := range lit.Elts {
			kv := e.(*ast.KeyValueExpr)
			key := kv.Key.(*ast.Ident).Name
			switch v := kv.Value.(type) {
			case *ast.Ident:
				switch key {
				case "section":
					section = consts[v.Name]
				case "unset":
					o.unset = v.Name == "true"
				}
			case *ast.BasicLit:
				s, _ := strconv.Unquote(v.Value)
				switch key {
				case "section":
					section = s
				case "name":
					name = s
				case "value":
					o.value = s
				}
			}
		}
		if section == "" || name == "" {
			t.Fatalf("%s: cannot read the row at offset %d", file, lit.Pos())
		}
		if out[section] == nil {
			out[section] = map[string]codeOption{}
		}
		out[section][name] = o
	}
	// The rows with a default are what -p prints (each section with the
	// DEFAULT options it inherits).
	printed := defaultsTable(t)
	for section, opts := range out {
		for key, o := range opts {
			if !o.unset && printed[section][key] != o.value {
				t.Fatalf("%s: [%s] %s = %q, but config.PrintDefaults prints %q", file, section, key, o.value, printed[section][key])
			}
		}
	}
	for section, opts := range printed {
		for key := range opts {
			if _, own := out[section][key]; !own && out[config.SectionDefault][key].value == "" {
				t.Fatalf("config.PrintDefaults prints [%s] %s, not found in %s", section, key, file)
			}
		}
	}
	return out
}

// noDefault returns the known options without a default, as section/key.
func noDefault(t *testing.T) []string {
	var out []string
	for section, opts := range codeTable(t) {
		for key, o := range opts {
			if o.unset {
				out = append(out, section+"/"+key)
			}
		}
	}
	slices.Sort(out)
	if len(out) < 8 {
		t.Fatalf("only %d options without default in the code's table: %q", len(out), out)
	}
	return out
}

var disabled = regexp.MustCompile(`^;(\[[^\]]+\]|[a-z0-9][a-z0-9_.-]* = .*)$`)

// uncomment removes the `;` of disabled options and section headers.
func uncomment(text string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if disabled.MatchString(l) {
			l = l[1:]
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// defaultsTable parses config.PrintDefaults(nil) into section -> key -> raw
// value.
func defaultsTable(t *testing.T) map[string]map[string]string {
	t.Helper()
	var b strings.Builder
	if err := config.PrintDefaults(&b, nil); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "":
		case strings.HasPrefix(l, "["):
			section = strings.Trim(l, "[]")
			out[section] = map[string]string{}
		default:
			k, v, ok := strings.Cut(l, " = ")
			if !ok {
				t.Fatalf("PrintDefaults line %q", l)
			}
			out[section][k] = v
		}
	}
	if len(out) < 5 {
		t.Fatalf("PrintDefaults printed %d sections", len(out))
	}
	return out
}

// sectionsText returns, per section header of text (commented or not), the
// option names written under it (commented or not).
func sectionsText(text string) map[string][]string {
	out := map[string][]string{}
	section := ""
	for _, l := range strings.Split(uncomment(text), "\n") {
		switch {
		case strings.HasPrefix(l, "["):
			section = strings.Trim(l, "[]")
			if _, ok := out[section]; !ok {
				out[section] = nil
			}
		case l == "" || l[0] == '#' || l[0] == ';' || l[0] == ' ' || l[0] == '\t':
		default:
			if k, _, ok := strings.Cut(l, " = "); ok {
				out[section] = append(out[section], k)
			}
		}
	}
	return out
}

func TestContribConfigMatchesDefaults(t *testing.T) {
	text := readFile(t, exampleConf)
	table := defaultsTable(t)
	code := config.Default()
	shipped, err := config.LoadSources(nil, config.Source{Name: exampleConf, Data: []byte(text)})
	if err != nil {
		t.Fatalf("%s does not parse: %v", exampleConf, err)
	}
	view, err := config.LoadSources(nil, config.Source{Name: exampleConf + " (uncommented)", Data: []byte(uncomment(text))})
	if err != nil {
		t.Fatalf("%s with its options uncommented does not parse: %v", exampleConf, err)
	}

	// Rules 1 and 2: values.
	for section, opts := range table {
		for key := range opts {
			want, err := code.Get(section, key)
			if err != nil {
				t.Fatalf("default [%s] %s: %v", section, key, err)
			}
			for name, c := range map[string]*config.Config{"as shipped": shipped, "uncommented": view} {
				got, err := c.Get(section, key)
				if err != nil || got != want {
					t.Errorf("%s %s: [%s] %s = %q (%v), the default in code is %q (raw %q)",
						exampleConf, name, section, key, got, err, want, opts[key])
				}
			}
		}
	}
	for opt, want := range setExtra {
		section, key, _ := strings.Cut(opt, "/")
		if got, err := shipped.Get(section, key); err != nil || got != want {
			t.Errorf("%s: [%s] %s = %q (%v), want it set to %q", exampleConf, section, key, got, err, want)
		}
	}
	// Only setExtra is really set: no other uncommented option line.
	for section, keys := range sectionsText(commentedOut(text)) {
		for _, k := range keys {
			if _, ok := setExtra[section+"/"+k]; !ok {
				t.Errorf("%s: [%s] %s is set; show it as ;%s = <default> instead (or list it in setExtra)", exampleConf, section, k, k)
			}
		}
	}

	// Rule 2: presence in the text.
	written := sectionsText(text)
	for section, opts := range table {
		for key := range opts {
			inherited := section != config.SectionDefault && table[config.SectionDefault][key] != "" &&
				opts[key] == table[config.SectionDefault][key]
			if slices.Contains(written[section], key) || inherited && slices.Contains(written[config.SectionDefault], key) {
				continue
			}
			t.Errorf("%s: [%s] %s (default %q) is not shown; add ;%s = %s under [%s]", exampleConf, section, key, opts[key], key, opts[key], section)
		}
	}

	// Rule 3: the options without default, and validation.
	for _, opt := range noDefault(t) {
		section, key, _ := strings.Cut(opt, "/")
		if !slices.Contains(written[section], key) {
			t.Errorf("%s: [%s] %s (no default) is not shown with an example", exampleConf, section, key)
		}
	}
	if _, err := shipped.PullSettings(); err != nil {
		t.Errorf("%s as shipped: haproxystats-pull would refuse it: %v", exampleConf, err)
	}
	if _, err := shipped.ProcessSettings(); err != nil {
		t.Errorf("%s as shipped: haproxystats-process would refuse it: %v", exampleConf, err)
	}
	if _, err := view.PullSettings(); err != nil {
		t.Errorf("%s uncommented: invalid [pull] example: %v", exampleConf, err)
	}
	if _, err := view.ProcessSettings(); err != nil {
		t.Errorf("%s uncommented: invalid example: %v", exampleConf, err)
	}

	// Rule 4: the stage section.
	raw, err := view.StageOptions("example")
	if err != nil {
		t.Fatalf("%s uncommented: [stage.example]: %v", exampleConf, err)
	}
	opts, err := wasmstage.ParseOptions("example", raw, "/etc")
	if err != nil {
		t.Fatalf("%s uncommented: [stage.example]: %v", exampleConf, err)
	}
	if opts.Timeout != wasmstage.DefaultTimeout || opts.MemoryLimitMiB != wasmstage.DefaultMemoryLimitMiB ||
		opts.MaxMetrics != wasmstage.DefaultMaxMetrics || opts.ModuleSizeLimitMiB != wasmstage.DefaultModuleSizeLimitMiB ||
		opts.CompileTimeout != wasmstage.DefaultCompileTimeout {
		t.Errorf("%s: [stage.example] timeout, memory-limit, max-metrics, module-size-limit, compile-timeout = %v, %d, %d, %d, %v; the defaults are %v, %d, %d, %d, %v",
			exampleConf, opts.Timeout, opts.MemoryLimitMiB, opts.MaxMetrics, opts.ModuleSizeLimitMiB, opts.CompileTimeout,
			wasmstage.DefaultTimeout, wasmstage.DefaultMemoryLimitMiB, wasmstage.DefaultMaxMetrics,
			wasmstage.DefaultModuleSizeLimitMiB, wasmstage.DefaultCompileTimeout)
	}
	for _, k := range wasmstage.OptionNames() {
		if _, ok := raw[k]; !ok {
			t.Errorf("%s: [stage.example] does not show %s", exampleConf, k)
		}
	}
	if len(opts.Params) == 0 {
		t.Errorf("%s: [stage.example] shows no parameter", exampleConf)
	}
	if got := strings.Fields(mustGet(t, view, "process", "stages")); !slices.Equal(got, []string{"example"}) {
		t.Errorf("%s: ;stages = %q, want the example stage", exampleConf, got)
	}
}

// TestContribConfigKnownOptions is rule 5: the example configuration
// writes no section and no option that the programs do not read, so a
// misspelt or retired option cannot hide in it.
func TestContribConfigKnownOptions(t *testing.T) {
	text := readFile(t, exampleConf)
	code := codeTable(t)
	for section, keys := range sectionsText(text) {
		for _, key := range keys {
			if !knownOption(code, section, key) {
				t.Errorf("%s: [%s] %s is not an option the programs read (internal/config/defaults.go, wasmstage)", exampleConf, section, key)
			}
		}
		if len(keys) == 0 {
			t.Errorf("%s: section [%s] shows no option", exampleConf, section)
		}
	}
	// The check can fail.
	for _, bad := range [][2]string{{"pull", "pull-intervall"}, {"graphite", "prefix_hostname"}, {"stage.example", "memory_limit"}, {"proces", "workers"}} {
		if knownOption(code, bad[0], bad[1]) {
			t.Errorf("[%s] %s counts as known", bad[0], bad[1])
		}
	}
}

// stageExampleParams are the parameters [stage.example] shows: a stage's
// own options, handed to its module, which the code cannot know.
var stageExampleParams = []string{"threshold"}

// knownOption reports whether the programs read option key of section.
func knownOption(code map[string]map[string]codeOption, section, key string) bool {
	switch {
	case section == config.SectionFrontendGroups || section == config.SectionBackendGroups || section == config.SectionServerGroups:
		return true // group = regex
	case section == config.StageSection("example"):
		return slices.Contains(wasmstage.OptionNames(), key) ||
			slices.Contains(stageExampleParams, key)
	}
	if _, ok := code[section]; !ok {
		return false
	}
	_, own := code[section][key]
	_, inherited := code[config.SectionDefault][key]
	return own || inherited
}

// commentedOut drops the disabled option and header lines of text, keeping
// what the file really sets under its real headers.
func commentedOut(text string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if !disabled.MatchString(l) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func mustGet(t *testing.T, c *config.Config, section, key string) string {
	t.Helper()
	v, err := c.Get(section, key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestContribConfigDriftDetected makes sure the check above can fail: a
// changed default value and a missing option are both caught.
func TestContribConfigDriftDetected(t *testing.T) {
	text := readFile(t, exampleConf)
	table := defaultsTable(t)
	changed := strings.Replace(text, ";pull-interval = 10", ";pull-interval = 11", 1)
	if changed == text {
		t.Fatal("the example has no ;pull-interval = 10 line")
	}
	view, err := config.LoadSources(nil, config.Source{Name: "x", Data: []byte(uncomment(changed))})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, view, "pull", "pull-interval"); got != "11" || table["pull"]["pull-interval"] != "10" {
		t.Errorf("uncommented pull-interval = %q, default %q: the drift would go unnoticed", got, table["pull"]["pull-interval"])
	}
	removed := strings.Replace(text, ";buffer-limit = 6291456\n", "", 1)
	if slices.Contains(sectionsText(removed)["pull"], "buffer-limit") {
		t.Error("a removed option still counts as shown")
	}
	if n, _ := strconv.Atoi(table["pull"]["buffer-limit"]); n != 6291456 {
		t.Errorf("buffer-limit default %q", table["pull"]["buffer-limit"])
	}
}

// TestContribConfigurationReference checks that docs/configuration.md
// documents every option the code has a default for, and every option
// without default, each in the table of its section, with the default the
// code has.
func TestContribConfigurationReference(t *testing.T) {
	const doc = "docs/configuration.md"
	text := readFile(t, doc)
	// section -> option -> default column, from "## [section] ..." headings
	// and "| `option` | default | ..." rows.
	documented := map[string]map[string]string{}
	heading := regexp.MustCompile(`^## \[([a-z.\\<>-]+|DEFAULT)\]`)
	row := regexp.MustCompile("^\\| `([a-z-]+)` \\| ([^|]*) \\|")
	section := ""
	for _, l := range strings.Split(text, "\n") {
		if m := heading.FindStringSubmatch(l); m != nil {
			section = m[1]
			documented[section] = map[string]string{}
			continue
		}
		if m := row.FindStringSubmatch(l); m != nil && section != "" {
			documented[section][m[1]] = strings.Trim(strings.TrimSpace(m[2]), "`")
		}
	}
	for section, opts := range defaultsTable(t) {
		for key, value := range opts {
			got, ok := documented[section][key]
			if !ok && section != config.SectionDefault && documented[config.SectionDefault][key] == value {
				continue // inherited, documented in [DEFAULT]
			}
			if got == "from DEFAULT" {
				got = documented[config.SectionDefault][key]
			}
			if !ok || got != value {
				t.Errorf("%s: [%s] %s: documented default %q (found %v), the code has %q", doc, section, key, got, ok, value)
			}
		}
	}
	for _, opt := range noDefault(t) {
		section, key, _ := strings.Cut(opt, "/")
		if got, ok := documented[section][key]; !ok || got != "unset" {
			t.Errorf("%s: [%s] %s: documented default %q (found %v), want unset", doc, section, key, got, ok)
		}
	}
	stage := documented[`stage.\<name\>`]
	for key, want := range map[string]string{
		"module":       "required",
		"timeout":      strconv.FormatFloat(wasmstage.DefaultTimeout.Seconds(), 'f', 1, 64),
		"memory-limit": strconv.Itoa(wasmstage.DefaultMemoryLimitMiB),
		"max-metrics":  strconv.Itoa(wasmstage.DefaultMaxMetrics),

		"module-size-limit": strconv.Itoa(wasmstage.DefaultModuleSizeLimitMiB),
		"compile-timeout":   strconv.FormatFloat(wasmstage.DefaultCompileTimeout.Seconds(), 'f', -1, 64),
	} {
		if stage[key] != want {
			t.Errorf("%s: [stage.<name>] %s: documented %q, want %q", doc, key, stage[key], want)
		}
	}
}
