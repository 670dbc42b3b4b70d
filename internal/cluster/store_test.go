package cluster

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func writeSnapshot(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestStore: a view holds every host's snapshot files as <host>.<file>,
// links that outlive the source directories; a host replaced while a view
// is read changes nothing in it, and its files are gone from the next
// view; Remove removes the bucket; OpenStore empties the store.
func TestStore(t *testing.T) {
	base := t.TempDir()
	s, err := OpenStore(filepath.Join(base, "_cluster"))
	if err != nil {
		t.Fatal(err)
	}
	k := Key{"web", 1_800_000_010}
	lb1 := filepath.Join(base, "lb1", "1800000011")
	lb2 := filepath.Join(base, "lb2.example.com", "1800000013")
	writeSnapshot(t, lb1, map[string]string{"a.sock_info": "Name: HAProxy\n", "a.sock_stat": "# pxname\n", "README": "not a snapshot file"})
	writeSnapshot(t, lb2, map[string]string{"m.sock:master-1:worker-2_stat": "# pxname\n"})
	for host, src := range map[string]string{"lb1": lb1, "lb2.example.com": lb2} {
		if err := s.AddHost(k, host, src); err != nil {
			t.Fatal(err)
		}
	}
	e := Emission{Key: k, Hosts: []Host{{"lb1", 1}, {"lb2.example.com", 2}}}
	v1, err := s.View(e)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"lb1.a.sock_info", "lb1.a.sock_stat", "lb2.example.com.m.sock:master-1:worker-2_stat"}
	if filepath.Base(v1) != "1800000010" || !slices.Equal(listDir(t, v1), want) {
		t.Fatalf("view %s holds %v, want %v", v1, listDir(t, v1), want)
	}
	// The source removes its directories: the bucket keeps its files.
	os.RemoveAll(lb1)
	os.RemoveAll(lb2)
	if data, err := os.ReadFile(filepath.Join(v1, "lb1.a.sock_info")); err != nil || string(data) != "Name: HAProxy\n" {
		t.Errorf("view file after its source went: %q, %v", data, err)
	}
	// lb1 replaced by a snapshot with another socket.
	lb1b := filepath.Join(base, "lb1", "1800000015")
	writeSnapshot(t, lb1b, map[string]string{"b.sock_stat": "# pxname\n"})
	if err := s.AddHost(k, "lb1", lb1b); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(listDir(t, v1), want) {
		t.Errorf("view being read changed when lb1 was replaced: %v", listDir(t, v1))
	}
	v2, err := s.View(e)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"lb1.b.sock_stat", "lb2.example.com.m.sock:master-1:worker-2_stat"}; !slices.Equal(listDir(t, v2), want) {
		t.Errorf("view after lb1 was replaced holds %v, want %v", listDir(t, v2), want)
	}
	// Two hosts whose files would share a name.
	clash := filepath.Join(base, "lb1.b", "1800000016")
	writeSnapshot(t, clash, map[string]string{"sock_stat": "# pxname\n"})
	if err := s.AddHost(k, "lb1.b", clash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.View(Emission{Key: k, Hosts: []Host{{"lb1", 1}, {"lb1.b", 3}}}); err == nil {
		t.Error("View of hosts whose files share a name succeeded")
	}
	if err := s.Remove(k); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, s.Dir()); len(got) != 0 {
		t.Errorf("store holds %v after Remove", got)
	}
	writeSnapshot(t, filepath.Join(s.Dir(), "web", "1800000020", "hosts", "lb1"), map[string]string{"x_stat": ""})
	if s, err = OpenStore(s.Dir()); err != nil || len(listDir(t, s.Dir())) != 0 {
		t.Errorf("OpenStore left %v (%v)", listDir(t, s.Dir()), err)
	}
}
