package enginetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/haproxystats-go/haproxystats/engine"
)

// Case is one golden case directory in the conformance format:
// haproxystats.conf, incoming/<epoch>/..., expected.txt, optional
// outcome.txt, exclusion files and expected-local-store/<epoch>.txt.
type Case struct {
	Name string
	Dir  string
}

// Setup is what a case's configuration asks for.
type Setup struct {
	Pipeline *engine.Pipeline
	// LocalStore reports whether the configuration enables [local-store];
	// its files are then compared with expected-local-store/.
	LocalStore bool
	// Close, when set, releases what the pipeline holds (WebAssembly
	// runtimes); Run calls it when the case is done.
	Close func() error
}

// Build makes the pipeline for a case from its configuration file. Relative
// paths in the file are relative to the case directory.
type Build func(caseDir, confFile string) (*Setup, error)

// Find returns the cases under each path: a path is a case directory (it
// holds haproxystats.conf) or a directory with cases at any depth below it,
// as go test ./... finds packages. A case directory is not searched further
// (its incoming/ holds snapshots, not cases); directories whose name starts
// with "." and symbolic links are not followed. Cases found below a path
// are named by their path relative to it, in lexical order.
func Find(paths ...string) ([]Case, error) {
	var cases []Case
	for _, p := range paths {
		if isCase(p) {
			// Named as given: example cases are all called testcase.
			cases = append(cases, Case{Name: filepath.Clean(p), Dir: p})
			continue
		}
		n := len(cases)
		err := filepath.WalkDir(p, func(dir string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() || dir == p {
				return nil
			}
			if strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if isCase(dir) {
				name, err := filepath.Rel(p, dir)
				if err != nil {
					return err
				}
				cases = append(cases, Case{Name: name, Dir: dir})
				return filepath.SkipDir
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("find cases: %w", err)
		}
		if len(cases) == n {
			return nil, fmt.Errorf("find cases: %s is not a case directory and holds none", p)
		}
	}
	return cases, nil
}

func isCase(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "haproxystats.conf"))
	return err == nil && st.Mode().IsRegular()
}

// Result is the outcome of running one case.
type Result struct {
	Case       Case
	Mismatches []Mismatch
	// Output is every produced line, normalised like expected.txt.
	Output []byte
	// Err is set when the case could not be run at all.
	Err error
}

// Passed reports whether the case has no counted mismatch.
func (r *Result) Passed() bool {
	if r.Err != nil {
		return false
	}
	for _, m := range r.Mismatches {
		if m.Counted {
			return false
		}
	}
	return true
}

// Run processes every snapshot of the case in timestamp order and compares
// the output with expected.txt (and expected-local-store/ when enabled).
func Run(ctx context.Context, c Case, build Build) *Result {
	r := &Result{Case: c}
	setup, err := build(c.Dir, filepath.Join(c.Dir, "haproxystats.conf"))
	if err != nil {
		r.Err = err
		return r
	}
	if setup.Close != nil {
		defer setup.Close()
	}
	outcome := readOutcome(filepath.Join(c.Dir, "outcome.txt"))
	refFailed := outcome["worker-crash"] == "yes"

	incoming := filepath.Join(c.Dir, "incoming")
	snaps, err := snapshots(incoming)
	if err != nil {
		r.Err = err
		return r
	}
	var all []byte
	perSnapshot := map[string][]byte{}
	var left []string
	for _, name := range snaps {
		var out bytes.Buffer
		if _, err := setup.Pipeline.ProcessDir(ctx, filepath.Join(incoming, name), &out); err != nil {
			left = append(left, name)
			continue
		}
		all = append(all, out.Bytes()...)
		perSnapshot[name] = out.Bytes()
	}
	r.Output = Normalize(all)
	expected, err := os.ReadFile(filepath.Join(c.Dir, "expected.txt"))
	if err != nil {
		r.Err = fmt.Errorf("case %s: %w", c.Name, err)
		return r
	}
	r.Mismatches = Compare(expected, all, refFailed)
	if want := expectedLeft(outcome, snaps); strings.Join(want, ",") != strings.Join(left, ",") {
		r.Mismatches = append(r.Mismatches, Mismatch{Kind: Folders, Counted: !refFailed,
			Path: fmt.Sprintf("left in incoming/: %v, want %v", left, want)})
	}
	if setup.LocalStore {
		for _, name := range snaps {
			want, err := os.ReadFile(filepath.Join(c.Dir, "expected-local-store", name+".txt"))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				r.Err = err
				return r
			}
			for _, m := range Compare(withoutTotalWallClockTime(want), withoutTotalWallClockTime(perSnapshot[name]), refFailed) {
				m.Path = "local-store/" + name + "/stats: " + m.Path
				r.Mismatches = append(r.Mismatches, m)
			}
		}
	}
	return r
}

// Update rewrites the case's expected.txt (and expected-local-store/ files
// that exist) from a result's output.
func Update(r *Result) error {
	if r.Err != nil {
		return r.Err
	}
	return os.WriteFile(filepath.Join(r.Case.Dir, "expected.txt"), r.Output, 0o644)
}

// Report prints `PASS name` or `FAIL name` followed by the mismatches (all
// of them with verbose, else the first 20).
func Report(w io.Writer, r *Result, verbose bool) {
	if r.Passed() {
		fmt.Fprintf(w, "PASS %s\n", r.Case.Name)
		if !verbose {
			return
		}
	} else {
		fmt.Fprintf(w, "FAIL %s\n", r.Case.Name)
	}
	if r.Err != nil {
		fmt.Fprintf(w, "    error: %v\n", r.Err)
	}
	for i, m := range r.Mismatches {
		if i == 20 && !verbose {
			fmt.Fprintf(w, "    ... %d more (use -v)\n", len(r.Mismatches)-i)
			break
		}
		fmt.Fprintf(w, "    %s\n", m)
	}
}

// snapshots lists the snapshot directories of incoming in timestamp order.
func snapshots(incoming string) ([]string, error) {
	entries, err := os.ReadDir(incoming)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Slice(names, func(i, j int) bool {
		if len(names[i]) != len(names[j]) {
			return len(names[i]) < len(names[j])
		}
		return names[i] < names[j]
	})
	return names, nil
}

func readOutcome(path string) map[string]string {
	out := map[string]string{}
	data, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	for _, l := range lines(data) {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// expectedLeft is the folders the reference left: none unless outcome.txt
// says fewer were removed than present, in which case (reference failure)
// all of them, as the corpus cases have one snapshot each.
func expectedLeft(outcome map[string]string, snaps []string) []string {
	if outcome["snapshots-removed"] == "" || outcome["snapshots-removed"] == outcome["snapshots"] {
		return nil
	}
	if outcome["snapshots-removed"] == "0" {
		return snaps
	}
	return nil
}
