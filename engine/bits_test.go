package engine

import (
	"math/rand/v2"
	"testing"
)

// setBits and copyBits do what a loop over the bits does, at any offset
// and length, and leave the other bits as they were.
func TestBitRanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		words := 1 + rng.IntN(6)
		dst := make([]uint64, words)
		for i := range dst {
			dst[i] = rng.Uint64()
		}
		want := append([]uint64(nil), dst...)
		from := rng.IntN(64 * words)
		to := from + rng.IntN(64*words-from+1)
		if rng.IntN(2) == 0 {
			setBits(dst, from, to)
			for r := from; r < to; r++ {
				want[r>>6] |= 1 << (uint(r) & 63)
			}
		} else {
			n := to - from
			src := make([]uint64, (n+63)/64+1)
			for i := range src {
				src[i] = rng.Uint64() // bits past n too, which must not be copied
			}
			copyBits(dst, from, src, n)
			for i := range n {
				r := from + i
				want[r>>6] &^= 1 << (uint(r) & 63)
				want[r>>6] |= (src[i>>6] >> (uint(i) & 63) & 1) << (uint(r) & 63)
			}
		}
		for i := range dst {
			if dst[i] != want[i] {
				t.Fatalf("bits [%d, %d) of %d words: word %d = %064b, want %064b", from, to, words, i, dst[i], want[i])
			}
		}
	}
}
