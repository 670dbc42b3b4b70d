package config_test

import (
	"fmt"
	"os"

	"github.com/haproxystats-go/haproxystats/internal/config"
)

func ExampleLoadSources() {
	c, err := config.LoadSources(nil, config.Source{Name: "haproxystats.conf", Data: []byte(`
[paths]
base-dir = /srv/haproxystats

[graphite]
group-namespace = flavor
group-namespace-double-writes = false

[backend-groups]
abc = _proc1$$
`)})
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, _ := c.Get("process", "src-dir")
	fmt.Println(dir)
	s, err := c.ProcessSettings()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Graphite.GroupNamespace, s.Groups.Backend[0].Name, s.Groups.Backend[0].Pattern)
	// Output:
	// /srv/haproxystats/incoming
	// flavor abc _proc1$
}

func ExamplePrintDefaults() {
	// The defaults of one section, as haproxystats-pull -p prints them
	// (with config.PullSections it prints [DEFAULT] and [kafka] too).
	config.PrintDefaults(os.Stdout, func(s string) bool { return s == config.SectionPull })
	// Output:
	// [pull]
	// buffer-limit = 6291456
	// destination = spool
	// dst-dir = ${paths:base-dir}/incoming
	// interval = 0.5
	// kafka-dst-dir = ${paths:base-dir}/kafka-outgoing
	// loglevel = info
	// max-answer-size = 268435456
	// pull-interval = 10
	// pull-timeout = 2
	// queue-size = 360
	// retries = 1
	// timeout = 0.1
	// tmp-dst-dir = ${paths:base-dir}/incoming.tmp
	// workers = 8
}
