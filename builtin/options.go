package builtin

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/haproxystats-go/haproxystats/engine"
)

// Options selects what the built-in stages compute: the [process] options
// of the configuration file.
type Options struct {
	// FrontendMetrics, BackendMetrics and ServerMetrics replace the default
	// summed lists when not nil.
	FrontendMetrics, BackendMetrics, ServerMetrics []string
	// ExcludeFrontends and ExcludeBackends name objects whose lines are not
	// sent; dots are replaced before matching.
	ExcludeFrontends, ExcludeBackends []string
	AggrServerMetrics                 bool
	PerProcessMetrics                 bool
	CalculatePercentages              bool
	// Logger receives warnings about incomplete input; nil discards.
	Logger *slog.Logger
}

// Stages returns the built-in stages in the original's order: daemon,
// frontends, backends, servers. They are safe for concurrent use.
func Stages(opts Options) []engine.StageSpec {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return []engine.StageSpec{
		{Name: "daemon", Stage: &Daemon{opts: opts}, TimeMetric: "WallClockTimeHAProxy"},
		{Name: "frontends", Stage: newFrontends(opts), TimeMetric: "WallClockTimeFrontends"},
		{Name: "backends", Stage: newBackends(opts), TimeMetric: "WallClockTimeBackends"},
		{Name: "servers", Stage: newServers(opts), TimeMetric: "WallClockTimeServers"},
	}
}

// ReadExclusions reads an exclusion file: one name per line, surrounding
// blanks ignored, blank lines and lines starting with '#' skipped.
func ReadExclusions(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read exclusion file: %w", err)
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names = append(names, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read exclusion file %s: %w", path, err)
	}
	return names, nil
}

func nameSet(names []string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[engine.GraphiteName(n)] = true
	}
	return set
}
