// Command haproxystats-process processes the snapshots that
// haproxystats-pull leaves in the spool and sends the metrics to Graphite,
// a drop-in replacement for the Python program of the same name.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	processd "github.com/haproxystats-go/haproxystats/daemon"
	"github.com/haproxystats-go/haproxystats/internal/buildinfo"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/wasmstage"
)

const usage = `Processes statistics from HAProxy and pushes them to Graphite

Usage:
    haproxystats-process [-f <file>] [-d <dir>] [-p | -P]

Options:
    -f, --file <file>  configuration file with settings
                       [default: /etc/haproxystats.conf]
    -d, --dir <dir>    directory with additional configuration files
    -p, --print        show default settings
    -P, --print-conf   show configuration
    -h, --help         show this screen
    -v, --version      show version
`

func main() {
	// A WASM stage runs its module in a child process: this program,
	// started again with a hidden argument.
	if wasmstage.IsChild() {
		os.Exit(wasmstage.ChildMain())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("haproxystats-process", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	file := fs.StringP("file", "f", "/etc/haproxystats.conf", "")
	dir := fs.StringP("dir", "d", "", "")
	printDefaults := fs.BoolP("print", "p", false, "")
	printConf := fs.BoolP("print-conf", "P", false, "")
	help := fs.BoolP("help", "h", false, "")
	version := fs.BoolP("version", "v", false, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case *help:
		fmt.Fprint(stdout, usage)
		return 0
	case *version:
		fmt.Fprintln(stdout, buildinfo.String())
		return 0
	case fs.NArg() > 0 || (*printDefaults && *printConf):
		fmt.Fprint(stderr, usage)
		return 2
	case *printDefaults:
		if err := config.PrintDefaults(stdout, config.ProcessSections); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	if *printConf {
		cfg, err := config.Load(*file, *dir, slog.New(slog.NewTextHandler(stderr, nil)))
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if err := cfg.Print(stdout, config.ProcessSections); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	if err := processd.Run(ctx, processd.Options{File: *file, Dir: *dir, Log: stderr}); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
