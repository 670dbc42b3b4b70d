package engine

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"os"
	"testing"
)

func loadLines(b *testing.B) ([][]byte, int) {
	data, err := os.ReadFile("/tmp/hs-large/admin1.sock_stat")
	if err != nil {
		b.Skip(err)
	}
	return bytes.Split(bytes.TrimSpace(data), []byte("\n"))[1:], len(data)
}

var sink int

// commas only, whole line
func BenchmarkFloorCommas(b *testing.B) {
	lines, n := loadLines(b)
	b.SetBytes(int64(n))
	for range b.N {
		c := 0
		for _, line := range lines {
			i := 0
			for ; i+8 <= len(line); i += 8 {
				c += bits.OnesCount64(commas(binary.LittleEndian.Uint64(line[i:])))
			}
		}
		sink = c
	}
}

// visit each comma position up to field 62, parse numbers of fields 2..61 into an array
func BenchmarkFloorParse62(b *testing.B) {
	lines, n := loadLines(b)
	b.SetBytes(int64(n))
	var vals [128]float64
	for range b.N {
		for _, line := range lines {
			field, start := 0, 0
		outer:
			for i := 0; i+8 <= len(line); i += 8 {
				m := commas(binary.LittleEndian.Uint64(line[i:]))
				for m != 0 {
					end := i + bits.TrailingZeros64(m)>>3
					m &= m - 1
					var v uint64
					for _, ch := range line[start:end] {
						v = v*10 + uint64(ch-'0')
					}
					vals[field&127] = float64(v)
					field++
					if field > 61 {
						break outer
					}
					start = end + 1
				}
			}
		}
	}
	sink = int(vals[3])
}

// byte loop up to field 62 accumulating digits
func BenchmarkFloorByte62(b *testing.B) {
	lines, n := loadLines(b)
	b.SetBytes(int64(n))
	var vals [128]float64
	for range b.N {
		for _, line := range lines {
			field := 0
			var v uint64
			for _, ch := range line {
				if ch == ',' {
					vals[field&127] = float64(v)
					v = 0
					field++
					if field > 61 {
						break
					}
					continue
				}
				v = v*10 + uint64(ch-'0')
			}
		}
	}
	sink = int(vals[3])
}

func swar8(w uint64) uint64 {
	w &= 0x0F0F0F0F0F0F0F0F
	w = (w * 2561) >> 8
	w = ((w & 0x00FF00FF00FF00FF) * 6553601) >> 16
	return ((w & 0x0000FFFF0000FFFF) * 42949672960001) >> 32
}

func BenchmarkFloorSWAR62(b *testing.B) {
	lines, n := loadLines(b)
	b.SetBytes(int64(n))
	var vals [128]float64
	for range b.N {
		for _, line := range lines {
			field, start := 0, 0
		outer:
			for i := 0; i+8 <= len(line); i += 8 {
				m := commas(binary.LittleEndian.Uint64(line[i:]))
				for m != 0 {
					end := i + bits.TrailingZeros64(m)>>3
					m &= m - 1
					L := end - start
					var v uint64
					if L <= 8 && start+8 <= len(line) {
						s := uint(8-L) * 8
						w := binary.LittleEndian.Uint64(line[start:])<<s | 0x3030303030303030>>(64-s)
						v = swar8(w)
					}
					vals[field&127] = float64(v)
					field++
					if field > 61 {
						break outer
					}
					start = end + 1
				}
			}
		}
	}
	sink = int(vals[3])
}

func BenchmarkFloorBranchless62(b *testing.B) {
	lines, n := loadLines(b)
	b.SetBytes(int64(n))
	var acc [130]uint64
	var ends [130]int32
	var bad [130]uint8
	var vals [128]float64
	for range b.N {
		for _, line := range lines {
			field := 0
			var v uint64
			var bd uint8
			for i, c := range line {
				d := uint64(c) - '0'
				var comma uint64
				if c == ',' {
					comma = 1
				}
				acc[field] = v
				ends[field] = int32(i)
				bad[field] = bd
				var nd uint8
				if d > 9 {
					nd = 1
				}
				keep := comma - 1
				v = (v*10 + d) & keep
				bd = (bd | nd) & uint8(keep)
				field += int(comma)
				if field > 62 {
					break
				}
			}
			for f := 2; f < 62; f++ {
				if bad[f] == 0 {
					vals[f] = float64(acc[f])
				}
			}
		}
	}
	sink = int(vals[3]) + int(ends[5])
}
