//go:build !amd64 || purego

package engine

// Without the assembly of amd64, scan reads the line eight bytes at a
// time and store is storeGo, in Go.
const (
	blocks   = false
	compress = false
	asm      = false
)

// scanBlocks and scanCompress are not called where blocks and compress
// are false.
func scanBlocks([]byte, *[maxFields]int32, int) (f, i int)   { return 0, 0 }
func scanCompress([]byte, *[maxFields]int32, int) (f, i int) { return 0, 0 }

// storeNums is not called where asm is false.
func storeNums([]used, *[maxFields]int32, int, []byte, int, []int32) int { return 0 }
