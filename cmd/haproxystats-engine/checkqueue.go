package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/spf13/pflag"

	"github.com/haproxystats-go/haproxystats/internal/config"
	"github.com/haproxystats-go/haproxystats/internal/spool"
)

const checkQueueUsage = `Checks the size of the queue which is consumed by haproxystats-process

Usage:
    haproxystats-engine check-queue [-f <file> -o <ok> -w <warning> ]

Options:
    -f, --file <file>        configuration file with settings
                             [default: /etc/haproxystats.conf]
    -o, --ok <ok>            OK threshold [default: 60]
    -w, --warning <warning>  WARNING threshold [default: 120]
    -h, --help               show this screen

A Nagios check: the queue is the number of snapshot directories in
[pull] dst-dir (the spool haproxystats-process and the one daemon
consume), or with [pull] destination = kafka in kafka-dst-dir (the Kafka
publisher's spool), or with both in the fuller of the two. Up to OK it exits 0 (OK), up to WARNING 1 (WARNING), above
2 (CRITICAL); 3 (UNKNOWN) when the configuration or the directory cannot
be read.
`

// Nagios plugin exit codes.
const (
	nagiosOK       = 0
	nagiosWarning  = 1
	nagiosCritical = 2
	nagiosUnknown  = 3
)

// checkQueueCmd is the original's contrib/nagios/check_haproxystats_queue_size.py:
// same options, defaults, threshold semantics and messages. Like the
// original it counts [pull] dst-dir; unlike it, only snapshot directories
// (all-digit names) count, as for pull's own queue-size, and the built-in
// defaults apply, so the option is never missing.
func checkQueueCmd(args []string, stdout, stderr io.Writer) int {
	flags := pflag.NewFlagSet("check-queue", pflag.ContinueOnError)
	flags.SetOutput(io.Discard)
	file := flags.StringP("file", "f", "/etc/haproxystats.conf", "configuration file with settings")
	okArg := flags.StringP("ok", "o", "60", "OK threshold")
	warnArg := flags.StringP("warning", "w", "120", "WARNING threshold")
	help := flags.BoolP("help", "h", false, "show this screen")
	if err := flags.Parse(args); err != nil {
		fmt.Fprintf(stdout, "UNKNOWN: %v\n", err)
		fmt.Fprint(stderr, checkQueueUsage)
		return nagiosUnknown
	}
	if *help {
		fmt.Fprint(stdout, checkQueueUsage)
		return nagiosOK
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stdout, "UNKNOWN: unexpected argument %q\n", flags.Arg(0))
		fmt.Fprint(stderr, checkQueueUsage)
		return nagiosUnknown
	}
	okThreshold, err := config.ParseInt(*okArg)
	if err != nil {
		fmt.Fprintf(stdout, "UNKNOWN: --ok %q: %v\n", *okArg, err)
		return nagiosUnknown
	}
	warnThreshold, err := config.ParseInt(*warnArg)
	if err != nil {
		fmt.Fprintf(stdout, "UNKNOWN: --warning %q: %v\n", *warnArg, err)
		return nagiosUnknown
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, err := config.Load(*file, "", logger)
	if err != nil {
		fmt.Fprintf(stdout, "UNKNOWN: can't load configuration: %v\n", oneLine(err))
		return nagiosUnknown
	}
	dirs, err := queueDirs(cfg)
	if err != nil {
		fmt.Fprintf(stdout, "UNKNOWN: can't load configuration: %v\n", oneLine(err))
		return nagiosUnknown
	}
	dir, size := "", -1
	for _, d := range dirs {
		n, err := spool.Count(d)
		if err != nil {
			// The original printed Python's exception; name the operation
			// and the cause without spool's own prefix.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe
			}
			fmt.Fprintf(stdout, "UNKNOWN: can't check %s due to %v\n", d, err)
			return nagiosUnknown
		}
		if n > size {
			dir, size = d, n
		}
	}
	msg := fmt.Sprintf(": Queue location=%s, Thresholds OK=%d WARNING=%d and any higher value is critical",
		dir, okThreshold, warnThreshold)
	switch {
	case size <= okThreshold:
		fmt.Fprintf(stdout, "OK: queue size %d%s\n", size, msg)
		return nagiosOK
	case size <= warnThreshold:
		fmt.Fprintf(stdout, "WARNING: queue size %d%s\n", size, msg)
		return nagiosWarning
	default:
		fmt.Fprintf(stdout, "CRITICAL: queue size %d%s\n", size, msg)
		return nagiosCritical
	}
}

// oneLine joins the lines of a joined error with "; ": Nagios shows the
// first line of the output.
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// queueDirs returns the spools whose backlog the check counts: [pull]
// dst-dir, or with destination = kafka the Kafka publisher's kafka-dst-dir,
// or with both the two (the fuller one is reported).
func queueDirs(cfg *config.Config) ([]string, error) {
	dst, err := cfg.Path(config.SectionPull, "dst-dir")
	if err != nil {
		return nil, err
	}
	dest, err := cfg.Get(config.SectionPull, "destination")
	if err != nil {
		return nil, err
	}
	dest = strings.ToLower(dest)
	if dest != config.DestinationKafka && dest != config.DestinationBoth {
		return []string{dst}, nil
	}
	kafka, err := cfg.Path(config.SectionPull, "kafka-dst-dir")
	if err != nil {
		return nil, err
	}
	if dest == config.DestinationKafka {
		return []string{kafka}, nil
	}
	return []string{dst, kafka}, nil
}
