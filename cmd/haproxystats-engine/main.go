// Command haproxystats-engine runs the haproxystats processing pipeline
// offline: over recorded snapshot cases (test) or snapshot directories
// (run).
package main

import (
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

	"github.com/haproxystats-go/haproxystats/engine/enginetest"
	"github.com/haproxystats-go/haproxystats/internal/buildinfo"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/graphite"
	"github.com/haproxystats-go/haproxystats/internal/pipeline"
	"github.com/haproxystats-go/haproxystats/internal/process"
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
           format, or a directory of them) and compare with expected.txt
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
		return checkCmd(args[1:], stdout, stderr)
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
	cases, err := enginetest.Find(fs.Args()...)
	if err != nil {
		fmt.Fprintln(stderr, "haproxystats-engine test:", err)
		return 2
	}
	passed, failed := 0, 0
	for _, c := range cases {
		r := enginetest.Run(ctx, c, pipeline.BuildCase)
		if *update && r.Err == nil {
			if err := enginetest.Update(r); err != nil {
				fmt.Fprintln(stderr, "haproxystats-engine test:", err)
				return 2
			}
			r = enginetest.Run(ctx, c, pipeline.BuildCase)
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
	boot := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, err := config.Load(file, dir, boot)
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
	if err := oneDaemon(ctx, cfg, filepath.Dir(file), logger); err != nil {
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
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, err := config.Load(*file, *dir, logger)
	if err != nil {
		fmt.Fprintln(stderr, "haproxystats-engine run:", err)
		return 2
	}
	built, err := pipeline.New(cfg, pipeline.Options{Logger: logger, ConfigDir: filepath.Dir(*file)})
	if err != nil {
		fmt.Fprintln(stderr, "haproxystats-engine run:", err)
		return 2
	}
	defer built.Close()
	code := 0
	for _, snap := range fs.Args() {
		out, err := built.Pipeline.ProcessDir(ctx, filepath.Clean(snap))
		if err != nil {
			fmt.Fprintln(stderr, "haproxystats-engine run:", err)
			if errors.Is(err, context.Canceled) {
				return 1
			}
			code = 1
			continue
		}
		if _, err := stdout.Write(out.Lines); err != nil {
			fmt.Fprintln(stderr, "haproxystats-engine run:", err)
			return 1
		}
		out.Release()
	}
	return code
}

// checkCmd validates the configuration as haproxystats-process (and, when
// sockets are configured, haproxystats-pull) would at start, and loads
// every WebAssembly stage, for an operator's own CI.
func checkCmd(args []string, stdout, stderr io.Writer) int {
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
	cfg, err := config.Load(*file, *dir, logger)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var problems []string
	if cfg.Has(config.SectionPull, "socket-dir") || cfg.Has(config.SectionPull, "servers") {
		if _, err := cfg.PullSettings(); err != nil {
			problems = append(problems, err.Error())
		}
	}
	built, err := pipeline.New(cfg, pipeline.Options{Logger: logger, ConfigDir: filepath.Dir(*file), StageCacheDir: "-"})
	if err != nil {
		problems = append(problems, err.Error())
	} else if _, err := graphite.New(process.GraphiteConfig(built.Settings.Graphite), logger); err != nil {
		problems = append(problems, "[graphite]: "+err.Error())
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, p)
		}
		return 1
	}
	defer built.Close()
	fmt.Fprintf(stdout, "OK: %s: configuration valid, %d stage(s) loaded %v\n", *file, len(built.Settings.Process.Stages), built.Settings.Process.Stages)
	if !cfg.Has(config.SectionPull, "socket-dir") && !cfg.Has(config.SectionPull, "servers") {
		fmt.Fprintln(stdout, "note: [pull] sets neither socket-dir nor servers: haproxystats-pull and run --pull would refuse to start (fine where only haproxystats-process runs)")
	}
	return 0
}
