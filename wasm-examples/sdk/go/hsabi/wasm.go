//go:build wasip1

package hsabi

import "unsafe"

// The exports and the import of docs/ABI.md. Only this file depends on
// GOOS=wasip1; the rest of the package builds and tests anywhere.

//go:wasmimport hs log
func hsLog(level int32, ptr unsafe.Pointer, n int32)

func hostLog(level Level, msg string) {
	if len(msg) == 0 {
		return
	}
	hsLog(int32(level), unsafe.Pointer(unsafe.StringData(msg)), int32(len(msg)))
}

// input is the buffer handed out by hs_alloc: []uint64 so that it is
// 8-byte aligned. It is kept for the next call.
var input []uint64

// output keeps the last output buffer (or column list) reachable until the
// host has read it.
var output []byte

//go:wasmexport hs_abi_version
func hsABIVersion() int32 { return Version }

//go:wasmexport hs_alloc
func hsAlloc(size int32) int32 {
	if size < 0 {
		return 0
	}
	n := (int(size) + 7) / 8
	if n == 0 {
		n = 1
	}
	if cap(input) < n {
		// Room to spare: the input grows a little from one snapshot to
		// the next (new names).
		input = nil // let the old buffer go before allocating the new one
		input = make([]uint64, n, n+n/8+512)
	}
	input = input[:n]
	return int32(uintptr(unsafe.Pointer(&input[0])))
}

//go:wasmexport hs_columns
func hsColumns() int64 {
	if registered == nil || len(registered.Columns) == 0 {
		return 0
	}
	output = output[:0]
	for i, c := range registered.Columns {
		if i > 0 {
			output = append(output, ' ')
		}
		output = append(output, c...)
	}
	return pack(output)
}

//go:wasmexport hs_init
func hsInit(ptr, n int32) int32 {
	if err := runInit(inputBytes(ptr, n)); err != nil {
		Log(LevelError, "init: "+err.Error())
		return 1
	}
	return 0
}

//go:wasmexport hs_process
func hsProcess(ptr, n int32) int64 {
	output = runProcess(inputBytes(ptr, n))
	return pack(output)
}

// inputBytes returns the part of input the host wrote, checking that the
// host used the buffer hs_alloc returned.
func inputBytes(ptr, n int32) []byte {
	if len(input) == 0 || n < 0 || int(n) > 8*len(input) || uintptr(uint32(ptr)) != uintptr(unsafe.Pointer(&input[0])) {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&input[0])), n)
}

func pack(b []byte) int64 {
	if len(b) == 0 {
		return 0
	}
	return int64(uintptr(unsafe.Pointer(&b[0])))<<32 | int64(len(b))
}
