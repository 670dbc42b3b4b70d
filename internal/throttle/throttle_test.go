package throttle

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestAllow(t *testing.T) {
	th := Throttle{Every: time.Hour}
	if ok, d := th.Allow("a"); !ok || d != 0 {
		t.Errorf("first Allow(a) = %v, %d, want true, 0", ok, d)
	}
	for range 3 {
		if ok, _ := th.Allow("a"); ok {
			t.Error("a repeat within Every was let through")
		}
	}
	if ok, _ := th.Allow("b"); !ok {
		t.Error("another key was held back")
	}
	if !th.Forget("a") || th.Forget("a") {
		t.Error("Forget(a) twice did not report true then false")
	}
	if ok, _ := th.Allow("a"); !ok {
		t.Error("a forgotten key was held back")
	}
	short := Throttle{Every: time.Nanosecond}
	short.Allow("x")
	short.seen["x"].dropped = 2
	short.seen["x"].last = time.Now().Add(-time.Second)
	if ok, d := short.Allow("x"); !ok || d != 2 {
		t.Errorf("Allow after Every = %v, %d, want true and the 2 held back", ok, d)
	}
}

// TestLog: Log lets the first message of a key through, holds back the
// repeats within Every, and counts them on the next one let through.
func TestLog(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, nil))
	th := &Throttle{Every: 50 * time.Millisecond}
	for range 3 {
		th.Log(l, slog.LevelWarn, "k", "broker down", "broker", "b1")
	}
	if n := strings.Count(buf.String(), "broker down"); n != 1 || strings.Contains(buf.String(), "repeated") {
		t.Fatalf("3 messages within Every logged %d times (want 1, without repeated):\n%s", n, buf.String())
	}
	time.Sleep(60 * time.Millisecond)
	th.Log(l, slog.LevelWarn, "k", "broker down", "broker", "b1")
	if !strings.Contains(buf.String(), "broker=b1 repeated=2") {
		t.Errorf("the message after Every lacks repeated=2:\n%s", buf.String())
	}
}
