package hsabi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Stage is what a module registers.
type Stage struct {
	// Columns lists the `show stat` columns Process reads; only those are
	// copied into the module's memory.
	Columns []string
	// Init, when set, receives the options of the stage's configuration
	// section other than module, timeout, memory-limit and max-metrics.
	// It runs each time the host creates an instance; an error prevents
	// the stage from starting.
	Init func(params map[string]string) error
	// Process computes the metrics of one snapshot. A returned error (or
	// a panic) discards its metrics for this snapshot.
	Process func(snap *Snapshot, out *Emitter) error
}

var (
	registered *Stage
	snap       Snapshot
	emitter    Emitter
)

// Register sets the stage of this module; call it once, from init.
func Register(s Stage) {
	if registered != nil {
		panic("hsabi: Register called twice")
	}
	registered = &s
}

// runInit decodes the parameters and calls Stage.Init.
func runInit(b []byte) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	params, err := decodeParams(b)
	if err != nil {
		return err
	}
	if registered == nil {
		return errors.New("hsabi: no stage registered (call hsabi.Register from init)")
	}
	if registered.Init == nil {
		return nil
	}
	return registered.Init(params)
}

// decodeParams decodes the hs_init parameter buffer.
func decodeParams(b []byte) (map[string]string, error) {
	le := binary.LittleEndian
	if len(b) < 4 {
		return nil, fmt.Errorf("parameters: %d bytes: %w", len(b), ErrInput)
	}
	n := int(le.Uint32(b))
	b = b[4:]
	params := make(map[string]string, min(n, 1024))
	next := func() (string, bool) {
		if len(b) < 4 {
			return "", false
		}
		l := int(le.Uint32(b))
		if l > len(b)-4 {
			return "", false
		}
		s := string(b[4 : 4+l])
		b = b[4+l:]
		return s, true
	}
	for i := 0; i < n; i++ {
		k, ok1 := next()
		v, ok2 := next()
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("parameter %d truncated: %w", i, ErrInput)
		}
		params[k] = v
	}
	return params, nil
}

// runProcess decodes the input and runs Stage.Process; it returns the
// output buffer.
func runProcess(in []byte) []byte {
	emitter.reset()
	return emitter.finish(process(in))
}

func process(in []byte) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	if registered == nil || registered.Process == nil {
		return errors.New("hsabi: no stage registered (call hsabi.Register from init)")
	}
	if err := snap.Decode(in); err != nil {
		return err
	}
	return registered.Process(&snap, &emitter)
}
