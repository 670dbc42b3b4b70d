package wasmstage

import (
	"context"
	"fmt"
	"log/slog"
)

// inProcess runs a trusted stage's module (timeout = 0) in the daemon
// itself, as wazero's examples do: no process boundary and no copy, but
// nothing bounds what the module's compilation or a runaway call costs
// (see docs/ABI.md, "Isolation"). Its methods are serialized by the
// stage's lock.
type inProcess struct {
	h *host
}

func newInProcess(ctx context.Context, opts Options, bin []byte, logf func(slog.Level, string, bool)) (*inProcess, error) {
	h, err := newHost(ctx, bin, hostConfig{
		memoryLimitMiB: opts.MemoryLimitMiB,
		cacheDir:       opts.CacheDir,
		params:         opts.Params,
		log:            logf,
	})
	if err != nil {
		return nil, err
	}
	return &inProcess{h: h}, nil
}

func (r *inProcess) start(context.Context) (bool, error) { return false, nil }

func (r *inProcess) beginCall() { r.h.beginCall() }

func (r *inProcess) droppedLogs() int { return r.h.dropped }

func (r *inProcess) instantiate(ctx context.Context, first bool) ([]string, error) {
	return r.h.instantiate(ctx, first)
}

func (r *inProcess) input(ctx context.Context, size int) (uint32, []byte, error) {
	ptr, err := r.h.allocate(ctx, size)
	if err != nil {
		return 0, nil, err
	}
	buf, ok := r.h.memory().Read(ptr, uint32(size))
	if !ok { // allocate checked the bounds
		r.h.closeInstance()
		return 0, nil, fmt.Errorf("input [%d, %d) outside memory: %w", ptr, uint64(ptr)+uint64(size), ErrMalformed)
	}
	return ptr, buf, nil
}

func (r *inProcess) process(ctx context.Context, ptr uint32, size int) ([]byte, error) {
	packed, err := r.h.process(ctx, ptr, size)
	if err != nil || packed == 0 {
		return nil, err
	}
	mem := r.h.memory()
	optr, olen := uint32(packed>>32), uint32(packed)
	out, ok := mem.Read(optr, olen)
	if !ok {
		return nil, fmt.Errorf("output [%d, %d) outside memory of %d bytes: %w", optr, uint64(optr)+uint64(olen), mem.Size(), ErrMalformed)
	}
	return out, nil
}

// kill cannot stop a call in the daemon's own process.
func (r *inProcess) kill() {}

func (r *inProcess) close() error { return r.h.close() }
