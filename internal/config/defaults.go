package config

import (
	"bufio"
	"io"
	"slices"
	"strings"
)

// Section names.
const (
	SectionDefault        = "DEFAULT"
	SectionPaths          = "paths"
	SectionPull           = "pull"
	SectionProcess        = "process"
	SectionGraphite       = "graphite"
	SectionLocalStore     = "local-store"
	SectionKafka          = "kafka"
	SectionFrontendGroups = "frontend-groups"
	SectionBackendGroups  = "backend-groups"
	SectionServerGroups   = "server-groups"
)

// groupSections are the sections whose options are group = regex pairs.
var groupSections = []string{SectionFrontendGroups, SectionBackendGroups, SectionServerGroups}

// option is one row of the table of known options (SPEC §2).
type option struct {
	section string
	name    string
	value   string // raw, before interpolation
	unset   bool   // known, but without a default
	secret  bool   // -P prints it masked (a password)
}

// table is the single definition of the built-in defaults: lookups fall back
// to it, -p prints it, and options not in it are logged as unknown.
// The [local-store] and [kafka] rows give defaults only; those sections are
// enabled by their presence in the user's files, never by this table.
var table = []option{
	{section: SectionDefault, name: "loglevel", value: "info"},
	{section: SectionDefault, name: "retries", value: "2"},
	{section: SectionDefault, name: "timeout", value: "1"},
	{section: SectionDefault, name: "interval", value: "2"},

	{section: SectionPaths, name: "base-dir", value: "/var/lib/haproxystats"},

	{section: SectionPull, name: "socket-dir", unset: true},
	{section: SectionPull, name: "servers", unset: true},
	{section: SectionPull, name: "masters", unset: true},
	{section: SectionPull, name: "retries", value: "1"},
	{section: SectionPull, name: "timeout", value: "0.1"},
	{section: SectionPull, name: "interval", value: "0.5"},
	{section: SectionPull, name: "pull-timeout", value: "2"},
	{section: SectionPull, name: "pull-interval", value: "10"},
	{section: SectionPull, name: "buffer-limit", value: "6291456"},
	{section: SectionPull, name: "max-answer-size", value: "268435456"},
	{section: SectionPull, name: "dst-dir", value: "${paths:base-dir}/incoming"},
	{section: SectionPull, name: "tmp-dst-dir", value: "${paths:base-dir}/incoming.tmp"},
	{section: SectionPull, name: "workers", value: "8"},
	{section: SectionPull, name: "queue-size", value: "360"},
	{section: SectionPull, name: "destination", value: "spool"},
	{section: SectionPull, name: "kafka-dst-dir", value: "${paths:base-dir}/kafka-outgoing"},

	{section: SectionProcess, name: "src-dir", value: "${paths:base-dir}/incoming"},
	{section: SectionProcess, name: "workers", value: "4"},
	{section: SectionProcess, name: "frontend-metrics", unset: true},
	{section: SectionProcess, name: "backend-metrics", unset: true},
	{section: SectionProcess, name: "server-metrics", unset: true},
	{section: SectionProcess, name: "exclude-frontends", unset: true},
	{section: SectionProcess, name: "exclude-backends", unset: true},
	{section: SectionProcess, name: "aggr-server-metrics", value: "false"},
	{section: SectionProcess, name: "per-process-metrics", value: "false"},
	{section: SectionProcess, name: "calculate-percentages", value: "false"},
	{section: SectionProcess, name: "liveness-check-interval", value: "10"},
	{section: SectionProcess, name: "stop-timeout", value: "10"},
	{section: SectionProcess, name: "stages", unset: true},
	{section: SectionProcess, name: "stage-cache-dir", value: "${paths:base-dir}/stage-cache"},
	{section: SectionProcess, name: "max-file-size", value: "268435456"},
	{section: SectionProcess, name: "memory-budget", value: "16777216"},
	{section: SectionProcess, name: "monotonic-counters", value: "false"},
	{section: SectionProcess, name: "counters-dir", value: "${paths:base-dir}/counters"},
	{section: SectionProcess, name: "counters-expiry", value: "3600"},
	{section: SectionProcess, name: "source", value: "spool"},
	{section: SectionProcess, name: "cluster-name", unset: true},
	{section: SectionProcess, name: "cluster-interval", value: "${pull:pull-interval}"},
	{section: SectionProcess, name: "cluster-wait", value: "${cluster-interval}"},
	{section: SectionProcess, name: "cluster-late", unset: true},
	{section: SectionProcess, name: "cluster-hosts-expiry", unset: true},

	{section: SectionGraphite, name: "server", value: "127.0.0.1"},
	{section: SectionGraphite, name: "port", value: "3002"},
	{section: SectionGraphite, name: "retries", value: "3"},
	{section: SectionGraphite, name: "interval", value: "1.8"},
	{section: SectionGraphite, name: "connect-timeout", value: "1.0"},
	{section: SectionGraphite, name: "write-timeout", value: "1.0"},
	{section: SectionGraphite, name: "delay", value: "10"},
	{section: SectionGraphite, name: "backoff", value: "2"},
	{section: SectionGraphite, name: "namespace", value: "loadbalancers"},
	{section: SectionGraphite, name: "prefix-hostname", value: "true"},
	{section: SectionGraphite, name: "fqdn", value: "true"},
	{section: SectionGraphite, name: "queue-size", value: "1000000"},
	{section: SectionGraphite, name: "group-namespace", unset: true},
	{section: SectionGraphite, name: "group-namespace-double-writes", unset: true},
	{section: SectionGraphite, name: "hostname", unset: true},

	{section: SectionLocalStore, name: "dir", value: "${paths:base-dir}/local-store"},

	{section: SectionKafka, name: "brokers", unset: true},
	{section: SectionKafka, name: "topic", value: "haproxystats-metrics"},
	{section: SectionKafka, name: "client-id", value: "haproxystats"},
	{section: SectionKafka, name: "compression", value: "snappy"},
	{section: SectionKafka, name: "tls", value: "false"},
	{section: SectionKafka, name: "tls-ca-file", unset: true},
	{section: SectionKafka, name: "tls-cert-file", unset: true},
	{section: SectionKafka, name: "tls-key-file", unset: true},
	{section: SectionKafka, name: "tls-insecure-skip-verify", value: "false"},
	{section: SectionKafka, name: "sasl-mechanism", unset: true},
	{section: SectionKafka, name: "sasl-user", unset: true},
	{section: SectionKafka, name: "sasl-password", unset: true, secret: true},
	{section: SectionKafka, name: "dial-timeout", value: "10"},
	{section: SectionKafka, name: "request-timeout", value: "10"},
	{section: SectionKafka, name: "produce-timeout", value: "10"},
	{section: SectionKafka, name: "retry-backoff", value: "0.25"},
	{section: SectionKafka, name: "retry-backoff-max", value: "5"},
	{section: SectionKafka, name: "max-record-bytes", value: "65536"},
	{section: SectionKafka, name: "max-buffered-bytes", value: "33554432"},
	{section: SectionKafka, name: "snapshot-topic", value: "haproxystats-snapshots"},
	{section: SectionKafka, name: "max-snapshot-bytes", value: "67108864"},
	{section: SectionKafka, name: "group", value: "haproxystats-process"},
	{section: SectionKafka, name: "consumer-dir", value: "${paths:base-dir}/kafka-incoming"},
	{section: SectionKafka, name: "consumer-queue-size", value: "16"},
	{section: SectionKafka, name: "session-timeout", value: "45"},
}

// defaults holds the table's values by section and option; known holds every
// option of the table, set or not.
var defaults, known = index(table)

// presenceSections are the sections enabled by their presence in the user's
// files: -P lists them only then.
var presenceSections = []string{SectionLocalStore, SectionKafka}

// isSecret reports whether -P masks the value of option in section.
func isSecret(section, option string) bool {
	for _, o := range table {
		if o.secret && o.section == section && o.name == option {
			return true
		}
	}
	return false
}

func index(rows []option) (values map[string]map[string]string, names map[string]map[string]bool) {
	values, names = map[string]map[string]string{}, map[string]map[string]bool{}
	for _, o := range rows {
		if names[o.section] == nil {
			names[o.section] = map[string]bool{}
			values[o.section] = map[string]string{}
		}
		names[o.section][o.name] = true
		if !o.unset {
			values[o.section][o.name] = o.value
		}
	}
	return values, names
}

// isKnownSection reports whether the programs read section.
func isKnownSection(s string) bool {
	_, ok := known[s]
	return ok || slices.Contains(groupSections, s) || strings.HasPrefix(s, StageSection(""))
}

// isKnownOption reports whether the programs read option in section: an
// option of the table for that section or for DEFAULT, or any option of a
// group section or of a stage section (whose options other than its own
// are the module's parameters).
func isKnownOption(s, o string) bool {
	if slices.Contains(groupSections, s) || strings.HasPrefix(s, StageSection("")) {
		return true
	}
	return known[s][o] || known[SectionDefault][o]
}

// PullSections selects the sections haproxystats-pull prints with -p and -P:
// DEFAULT, pull and kafka (read when [pull] destination is kafka or both;
// -P lists it only when the user's files have it).
func PullSections(section string) bool {
	return section == SectionDefault || section == SectionPull || section == SectionKafka
}

// ProcessSections selects the sections haproxystats-process prints with -p
// and -P: every section except pull.
func ProcessSections(section string) bool { return section != SectionPull }

// PrintDefaults writes the built-in defaults of the sections include selects
// (nil selects all), for -p: every section of the table, local-store
// included, sorted by name in byte order (so DEFAULT comes first); each as a
// [section] header, its options with the DEFAULT options it inherits as
// sorted "key = value" lines, and a blank line. Values are printed raw, as
// the table holds them (dst-dir = ${paths:base-dir}/incoming).
func PrintDefaults(w io.Writer, include func(section string) bool) error {
	var names []string
	for s := range defaults {
		if include == nil || include(s) {
			names = append(names, s)
		}
	}
	slices.Sort(names)
	bw := bufio.NewWriter(w)
	for _, s := range names {
		items := map[string]string{}
		for k, v := range defaults[SectionDefault] {
			items[k] = v
		}
		for k, v := range defaults[s] {
			items[k] = v
		}
		writeSection(bw, s, items)
	}
	return bw.Flush()
}

func writeSection(w *bufio.Writer, name string, items map[string]string) {
	keys := make([]string, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.WriteString("[" + name + "]\n")
	for _, k := range keys {
		w.WriteString(k + " = " + items[k] + "\n")
	}
	w.WriteString("\n")
}
