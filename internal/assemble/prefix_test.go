package assemble

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haproxystats-go/haproxystats/internal/config"
)

func TestPrefix(t *testing.T) {
	tests := []struct {
		namespace      string
		prefixHostname bool
		fqdn           bool
		host           string
		want           string
	}{
		// SPEC §4: namespace as written, its dots included.
		{"fra1.edge", false, false, "", "fra1.edge.haproxy"},
		{"fra1.edge", true, true, "lb1.example.com", "fra1.edge.lb1_example_com.haproxy"},
		{"fra1.edge", true, false, "lb1.example.com", "fra1.edge.lb1.haproxy"},
		{"loadbalancers", true, true, "lb-1", "loadbalancers.lb-1.haproxy"},
		{"metrics_lb", false, true, "ignored host", "metrics_lb.haproxy"},
	}
	for _, tt := range tests {
		g := config.Graphite{Namespace: tt.namespace, PrefixHostname: tt.prefixHostname, FQDN: tt.fqdn}
		got, err := Prefix(g, tt.host)
		if err != nil || got != tt.want {
			t.Errorf("Prefix(%+v, %q) = %q, %v, want %q", g, tt.host, got, err, tt.want)
		}
	}
}

// TestPrefixHostnameOption: [graphite] hostname replaces the operating
// system's host name; a host name given by the caller (tests) wins.
func TestPrefixHostnameOption(t *testing.T) {
	g := config.Graphite{Namespace: "lb", PrefixHostname: true, FQDN: true, Hostname: "lb7.dc1"}
	if got, err := Prefix(g, ""); err != nil || got != "lb.lb7_dc1.haproxy" {
		t.Errorf("Prefix(hostname = lb7.dc1) = %q, %v, want lb.lb7_dc1.haproxy", got, err)
	}
	if got, err := Prefix(g, "other"); err != nil || got != "lb.other.haproxy" {
		t.Errorf("Prefix(hostname = lb7.dc1, caller's other) = %q, %v, want lb.other.haproxy", got, err)
	}
}

// TestPrefixBadHostname: a host name that would put a space, a newline or
// Graphite tag syntax into every path is refused, naming the option and
// the host name.
func TestPrefixBadHostname(t *testing.T) {
	for _, host := range []string{"lb 1", "lb1\nforged 1 1", "lb;env=prod", "lb\u00a0x"} {
		g := config.Graphite{Namespace: "lb", PrefixHostname: true, FQDN: true}
		got, err := Prefix(g, host)
		if err == nil || !strings.Contains(err.Error(), "[graphite] prefix-hostname") || !strings.Contains(err.Error(), "host name") {
			t.Errorf("Prefix(%q) = %q, %v, want an error naming [graphite] prefix-hostname and the host name", host, got, err)
		}
	}
	// Cut at the first dot, what follows does not matter.
	g := config.Graphite{Namespace: "lb", PrefixHostname: true, FQDN: false}
	if got, err := Prefix(g, "lb1.bad name"); err != nil || got != "lb.lb1.haproxy" {
		t.Errorf("Prefix(fqdn = false, %q) = %q, %v, want lb.lb1.haproxy", "lb1.bad name", got, err)
	}
}

// TestNamespaceDotsInOutput: the lines of a snapshot start with the
// namespace as written.
func TestNamespaceDotsInOutput(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "haproxystats.conf")
	if err := os.WriteFile(conf, []byte("[graphite]\nnamespace = fra1.edge\nprefix-hostname = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(dir, "incoming", "1700000000")
	if err := os.MkdirAll(snap, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join("..", "..", "testdata", "conformance", "single-defaults", "incoming")
	entries, err := os.ReadDir(src)
	if err != nil || len(entries) == 0 {
		t.Fatalf("read %s: %v", src, err)
	}
	files, err := os.ReadDir(filepath.Join(src, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(src, entries[0].Name(), f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(snap, f.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	built, err := ForCase(dir, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer built.Close()
	var out bytes.Buffer
	if _, err := built.Pipeline.ProcessDir(context.Background(), snap, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) < 10 {
		t.Fatalf("%d lines, want the snapshot's metrics", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "fra1.edge.haproxy.") {
			t.Fatalf("line %q does not start with fra1.edge.haproxy.", l)
		}
	}
}
