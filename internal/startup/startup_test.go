package startup

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDoReturnsResult(t *testing.T) {
	want := errors.New("bad")
	v, err := Do(context.Background(), func() (int, error) { return 7, want })
	if v != 7 || err != want {
		t.Errorf("Do = %d, %v, want 7, %v", v, err, want)
	}
}

func TestDoStopsAtOnce(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	cause := errors.New("signal: terminated")
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Do(ctx, func() (int, error) { <-block; return 1, nil })
		done <- err
	}()
	cancel(cause)
	select {
	case err := <-done:
		if !errors.Is(err, ErrStopped) || !errors.Is(err, cause) {
			t.Errorf("Do after a stop = %v, want ErrStopped and the cause", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Do has not returned 30 s after the stop while its step blocks")
	}
}

func TestDoNotStartedWhenStopped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	if _, err := Do(ctx, func() (int, error) { ran = true; return 0, nil }); !errors.Is(err, ErrStopped) || ran {
		t.Errorf("Do on a done context = %v (step ran: %v), want ErrStopped without running it", err, ran)
	}
}
