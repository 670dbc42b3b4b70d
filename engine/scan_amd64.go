//go:build amd64 && !purego

package engine

import "golang.org/x/sys/cpu"

// asm is true: store is storeNums.
const asm = true

// scanBlocks finds the commas of line sixteen bytes at a time (SSE2, and
// POPCNT to count them), from the start of the line, for scan: it writes
// the position of comma f at b[f] (b[0] is the caller's), and stops after
// the block in which it has found want commas, returning want and the
// block's offset, or before the first block that the line does not hold
// whole or that holds a double quote, returning the commas found and the
// offset of that block (scanWords goes on from there). It
// writes garbage in up to sixteen slots past the last comma it counted:
// want+16 must be below maxFields. line must be shorter than 2^31 bytes.
//
//go:noescape
func scanBlocks(line []byte, b *[maxFields]int32, want int) (f, i int)

// storeNums is storeGo in assembly (SSE2). slow must have room for
// len(nums) indexes; nothing else is checked but the line's bounds.
//
//go:noescape
func storeNums(nums []used, b *[maxFields]int32, nf int, line []byte, r int, slow []int32) int

// scanCompress is scanBlocks with AVX-512 (F, BW and VL): the offsets of
// a block's commas are packed by one instruction and written sixteen at
// once, instead of one by one. It writes garbage in the same slots.
//
//go:noescape
func scanCompress(line []byte, b *[maxFields]int32, want int) (f, i int)

// The ways this processor runs scan: scanBlocks (every amd64 processor
// since 2008 has POPCNT), scanCompress (AVX-512, with the operating
// system's support of its registers, which cpu checks).
var (
	blocks   = cpu.X86.HasPOPCNT
	compress = blocks && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL
)
