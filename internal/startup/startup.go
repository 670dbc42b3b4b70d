package startup

import (
	"context"
	"errors"
	"fmt"
)

// ErrStopped is wrapped by the error of Do when the context was done
// before the step returned.
var ErrStopped = errors.New("stopped during start-up")

// Do runs step and returns its results, or, as soon as ctx is done first,
// an error wrapping ErrStopped and the context's cause (for
// signal.NotifyContext, the signal). step is not started when ctx is done
// already. On a stop, step's goroutine is abandoned, still running: the
// caller must exit, and step must own nothing that needs releasing other
// than by the exit.
func Do[T any](ctx context.Context, step func() (T, error)) (T, error) {
	var zero T
	if ctx.Err() != nil {
		return zero, stopped(ctx)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1) // buffered: an abandoned step does not block
	go func() {
		v, err := step()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return zero, stopped(ctx)
	}
}

func stopped(ctx context.Context) error {
	return fmt.Errorf("%w: %w", ErrStopped, context.Cause(ctx))
}
