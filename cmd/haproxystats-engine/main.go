// Command haproxystats-engine runs the haproxystats processing pipeline
// offline: over recorded snapshot cases (test) or snapshot directories
// (run).
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/haproxystats-go/haproxystats/engine"
	"github.com/haproxystats-go/haproxystats/engine/enginetest"
	"github.com/haproxystats-go/haproxystats/internal/assemble"
	"github.com/haproxystats-go/haproxystats/internal/buildinfo"
	"github.com/haproxystats-go/haproxystats/internal/cases"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/graphite"
	"github.com/haproxystats-go/haproxystats/internal/process"
	"github.com/haproxystats-go/haproxystats/internal/startup"
	"github.com/haproxystats-go/haproxystats/internal/wasmstage"
)

const usage = `Usage:
    haproxystats-engine test [-v] [--update] PATH...
    haproxystats-engine run [-f FILE] [-d DIR] SNAPSHOT_DIR...
    haproxystats-engine run --pull [-f FILE] [-d DIR]
    haproxystats-engine check [-f FILE] [-d DIR]
    haproxystats-engine check-queue [-f FILE] [-o OK] [-w WARNING]
    haproxystats-engine -h | --help
    haproxystats-engine --version

Commands:
    test   run every case under PATH (a case directory in the conformance
           format, or a directory with cases at any depth below it) and
           compare with expected.txt
    run    process snapshot directories once and print the Graphite lines;
           with --pull, run as one daemon: pull from the stats sockets on the
           [pull] cadence and send to Graphite, the spool as the buffer
    check  validate the configuration and load every stage (compile, check
           the ABI) without processing anything
    check-queue
           Nagios check of the spool backlog: the snapshots waiting in
           [pull] dst-dir against the OK and WARNING thresholds
`

func main() {
	// A WASM stage runs its module in a child process: this program,
	// started again with a hidden argument.
	if wasmstage.IsChild() {
		os.Exit(wasmstage.ChildMain())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "test":
		return testCmd(ctx, args[1:], stdout, stderr)
	case "run":
		return runCmd(ctx, args[1:], stdout, stderr)
	case "check":
		return checkCmd(ctx, args[1:], stdout, stderr)
	case "check-queue":
		return checkQueueCmd(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "--version", "-v", "version":
		fmt.Fprintln(stdout, "haproxystats-engine", buildinfo.String())
		return 0
	}
	fmt.Fprintf(stderr, "haproxystats-engine: unknown command %q\n%s", args[0], usage)
	return 2
}

func testCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.BoolP("verbose", "v", false, "print every mismatch, and the mismatches of passing cases")
	update := fs.Bool("update", false, "rewrite expected.txt of every case from the output (WallClockTime values as *)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "haproxystats-engine test: no PATH given")
		return 2
	}
	found, err := enginetest.Find(fs.Args()...)
	if err != nil {
		fmt.Fprintln(stderr, "haproxystats-engine test:", err)
		return 2
	}
	passed, failed := 0, 0
	for _, c := range found {
		r := enginetest.Run(ctx, c, cases.Build)
		if *update && r.Err == nil {
			if err := enginetest.Update(r); err != nil {
				fmt.Fprintln(stderr, "haproxystats-engine test:", err)
				return 2
			}
			r = enginetest.Run(ctx, c, cases.Build)
		}
		enginetest.Report(stdout, r, *verbose)
		if r.Passed() {
			passed++
		} else {
			failed++
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

func runDaemon(ctx context.Context, file, dir string, stderr io.Writer) int {
	// A stop during start-up (configuration, stage compilation) ends it
	// at once, exit 0, as a stop afterwards does.
	boot := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, err := startup.Do(ctx, func() (*config.Config, error) { return config.Load(file, dir, boot) })
	if errors.Is(err, startup.ErrStopped) {
		boot.Info("haproxystats-engine run --pull stopped during start-up", "cause", err)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "haproxystats-engine run --pull:", err)
		return 1
	}
	level := slog.LevelInfo
	if ps, err := cfg.PullSettings(); err == nil {
		level = ps.Loglevel
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	logger.Info("haproxystats-engine run --pull started", "version", buildinfo.String(), "config", file)
	err = oneDaemon(ctx, cfg, filepath.Dir(file), logger)
	if errors.Is(err, startup.ErrStopped) {
		logger.Info("haproxystats-engine run --pull stopped during start-up", "cause", err)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "haproxystats-engine run --pull:", err)
		return 1
	}
	return 0
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.StringP("file", "f", "/etc/haproxystats.conf", "configuration file")
	dir := fs.StringP("dir", "d", "", "directory of additional *.conf files, read after FILE in name order")
	pulling := fs.Bool("pull", false, "one daemon: pull, process and send continuously")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *pulling {
		if fs.NArg() > 0 {
			fmt.Fprintln(stderr, "haproxystats-engine run --pull: takes no SNAPSHOT_DIR")
			return 2
		}
		return runDaemon(ctx, *file, *dir, stderr)
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "haproxystats-engine run: no SNAPSHOT_DIR given")
		return 2
	}
	// The directory's name is the timestamp of every line.
	for _, snap := range fs.Args() {
		if name := filepath.Base(filepath.Clean(snap)); !engine.IsTimestamp(name) {
			fmt.Fprintf(stderr, "haproxystats-engine run: snapshot directory %s: its name %q is not an epoch second (digits only), the timestamp of its metrics\n", snap, name)
			return 2
		}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, err := config.Load(*file, *dir, logger)
	if err != nil {
		fmt.Fprintln(stderr, "haproxystats-engine run:", err)
		return 2
	}
	built, err := assemble.New(cfg, assemble.Options{Logger: logger, ConfigDir: filepath.Dir(*file), CountersInMemory: true})
	if err != nil {
		fmt.Fprintln(stderr, "haproxystats-engine run:", err)
		return 2
	}
	defer built.Close()
	code := 0
	out := bufio.NewWriterSize(stdout, 64<<10)
	for _, snap := range fs.Args() {
		// The lines go out as they are made, chunk by chunk.
		if _, err := built.Pipeline.ProcessDir(ctx, filepath.Clean(snap), out); err != nil {
			fmt.Fprintln(stderr, "haproxystats-engine run:", err)
			if errors.Is(err, context.Canceled) {
				return 1
			}
			code = 1
		}
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintln(stderr, "haproxystats-engine run:", err)
		return 1
	}
	return code
}

// checkCmd validates the configuration as haproxystats-process (and, when
// sockets are configured, haproxystats-pull) would at start, checks that
// the exclusion files can be read, and loads every WebAssembly stage, for
// an operator's own CI. A stop signal ends it at once, exit 1.
func checkCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("check", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.StringP("file", "f", "/etc/haproxystats.conf", "configuration file")
	dir := fs.StringP("dir", "d", "", "directory of additional *.conf files, read after FILE in name order")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "haproxystats-engine check: unexpected argument", fs.Arg(0))
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	type checked struct {
		cfg      *config.Config
		built    *assemble.Built
		problems []string
	}
	c, err := startup.Do(ctx, func() (checked, error) {
		cfg, err := config.Load(*file, *dir, logger)
		if err != nil {
			return checked{}, err
		}
		c := checked{cfg: cfg}
		if cfg.Has(config.SectionPull, "socket-dir") || cfg.Has(config.SectionPull, "servers") || cfg.Has(config.SectionPull, "masters") {
			if _, err := cfg.PullSettings(); err != nil {
				c.problems = append(c.problems, err.Error())
			}
		}
		// The daemons log an unreadable exclusion file and keep running
		// (SPEC §5.4); check reports it, and does not load the pipeline,
		// which reads the files, when one could block it.
		readable := true
		if ps, err := cfg.ProcessSettings(); err == nil {
			for _, ex := range []struct{ option, path string }{
				{"exclude-frontends", ps.Process.ExcludeFrontends},
				{"exclude-backends", ps.Process.ExcludeBackends},
			} {
				if ex.path == "" {
					continue
				}
				if _, err := assemble.ReadExclusionFile(ex.path); err != nil {
					c.problems = append(c.problems, fmt.Sprintf("[process] %s = %q: %v", ex.option, ex.path, err))
					readable = false
				}
			}
		}
		if !readable {
			return c, nil
		}
		c.built, err = assemble.New(cfg, assemble.Options{Logger: logger, ConfigDir: filepath.Dir(*file), StageCacheDir: "-", CountersInMemory: true})
		if err != nil {
			c.problems = append(c.problems, err.Error())
		} else if _, err := graphite.New(process.GraphiteConfig(c.built.Settings.Graphite), logger); err != nil {
			c.problems = append(c.problems, "[graphite]: "+err.Error())
		}
		return c, nil
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if c.built != nil {
		defer c.built.Close()
	}
	if len(c.problems) > 0 {
		for _, p := range c.problems {
			fmt.Fprintln(stderr, p)
		}
		return 1
	}
	fmt.Fprintf(stdout, "OK: %s: configuration valid, %d stage(s) loaded %v\n", *file, len(c.built.Settings.Process.Stages), c.built.Settings.Process.Stages)
	if !c.cfg.Has(config.SectionPull, "socket-dir") && !c.cfg.Has(config.SectionPull, "servers") && !c.cfg.Has(config.SectionPull, "masters") {
		fmt.Fprintln(stdout, "note: [pull] sets none of socket-dir, servers and masters: haproxystats-pull and run --pull would refuse to start (fine where only haproxystats-process runs)")
	}
	return 0
}
