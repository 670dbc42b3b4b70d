module github.com/haproxystats-go/haproxystats

go 1.26.8

require (
	github.com/fsnotify/fsnotify v1.10.1
	github.com/spf13/pflag v1.1.0
	github.com/tetratelabs/wazero v1.12.0
	golang.org/x/sys v0.44.0
	gopkg.in/ini.v1 v1.67.3
)
