package testenv

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The helper itself: a reload while a held connection keeps the first
// worker alive lists it as leaving until the connection closes.
func TestMasterWorkerReloadHold(t *testing.T) {
	dir := ShortDir(t)
	m := StartMasterWorker(t, MasterWorkerConfig{MasterSockets: []string{filepath.Join(dir, "m.sock"), fmt.Sprintf("127.0.0.1:%d", FreePort(t))}})
	cur, old, err := m.Workers()
	if err != nil || len(cur) != 1 || len(old) != 0 {
		t.Fatalf("Workers = %v, %v, %v, want one current worker", cur, old, err)
	}
	for range 3 {
		if err := m.Get(); err != nil {
			t.Fatal(err)
		}
	}
	if m.Requests() != 3 {
		t.Errorf("Requests = %d, want 3", m.Requests())
	}
	held := m.Hold()
	first := cur[0]
	second := m.Reload()
	cur, old, err = m.Workers()
	if err != nil || !slices.Equal(cur, []int{second}) || !slices.Equal(old, []int{first}) {
		t.Fatalf("after reload Workers = %v, %v, %v, want [%d] [%d]", cur, old, err, second, first)
	}
	held.Close()
	if !m.WaitWorkerGone(first, 10*time.Second) {
		t.Fatalf("worker %d still there 10s after its connection closed", first)
	}
	cur, old, err = m.Workers()
	if err != nil || !slices.Equal(cur, []int{second}) || len(old) != 0 {
		t.Fatalf("Workers = %v, %v, %v, want [%d] []", cur, old, err, second)
	}
	master := m.MasterPID()
	m.Stop()
	if isHAProxy(master) || isHAProxy(second) {
		t.Errorf("haproxy %d or %d still running after Stop", master, second)
	}
}
