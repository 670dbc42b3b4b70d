package throttle

import (
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
