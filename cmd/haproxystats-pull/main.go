// Command haproxystats-pull pulls `show info` and `show stat` from every
// HAProxy stats socket on a fixed cadence into the spool directory, a
// drop-in replacement for the Python program of the same name. With [pull]
// destination = kafka or both it also publishes every round to Kafka
// (internal/publish) for a central processing tier.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/haproxystats-go/haproxystats/internal/buildinfo"
	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/publish"
	"github.com/haproxystats-go/haproxystats/internal/pull"
	"github.com/haproxystats-go/haproxystats/internal/startup"
)

const usage = `Pulls statistics from HAProxy daemon over UNIX and TCP socket(s)

Usage:
    haproxystats-pull [-f <file>] [-p | -P]

Options:
    -f, --file <file>  configuration file with settings
                       [default: /etc/haproxystats.conf]
    -p, --print        show default settings
    -P, --print-conf   show configuration
    -h, --help         show this screen
    -v, --version      show version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("haproxystats-pull", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	file := fs.StringP("file", "f", "/etc/haproxystats.conf", "")
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
		if err := config.PrintDefaults(stdout, config.PullSections); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	// A stop during start-up ends it at once, exit 0, as a stop
	// afterwards does.
	boot := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, err := startup.Do(ctx, func() (*config.Config, error) { return config.Load(*file, "", boot) })
	if errors.Is(err, startup.ErrStopped) {
		boot.Info("haproxystats-pull stopped during start-up", "cause", err)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *printConf {
		if err := cfg.Print(stdout, config.PullSections); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	settings, err := cfg.PullSettings()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: settings.Loglevel}))
	p, err := pull.New(pull.ConfigFrom(settings), logger)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var pub *publish.Publisher
	if settings.ToKafka() {
		if pub, err = publish.FromSettings(settings, logger); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	if ctx.Err() != nil {
		logger.Info("haproxystats-pull stopped during start-up", "cause", context.Cause(ctx))
		return 0
	}
	logger.Info("haproxystats-pull started", "version", buildinfo.String(), "config", *file)
	if err := publish.RunWith(ctx, pub, p.Run); err != nil {
		logger.Error("haproxystats-pull stopped", "error", err)
		return 1
	}
	logger.Info("haproxystats-pull stopped")
	return 0
}
