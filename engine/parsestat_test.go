package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
)

// checkScanStore runs scan and store on record line (whose buffer goes on
// past it) with want fields wanted and every one of them stored, and
// compares them with a plain split on commas and parseNumber: the fields'
// bounds, and for each field either the number store wrote (a plain
// number of 1 to 18 digits, as parseNumber reads it) or its place in slow.
// When a wanted field holds a double quote, scan must return -1.
func checkScanStore(t *testing.T, line []byte, want int) {
	t.Helper()
	fields := bytes.Split(line, []byte{','})
	w := min(want, len(fields))
	for f := range max(w, 0) {
		if bytes.IndexByte(fields[f], '"') >= 0 {
			w = -1
			break
		}
	}
	bounds := make([]int32, maxFields)
	var nf int
	// Every way of scan this processor runs.
	for _, way := range scanWays() {
		clear(bounds)
		nf = scanUsing(line, bounds, want, way)
		if nf != w {
			t.Fatalf("scan(%q, want %d, way %d) = %d fields, want %d", line, want, way, nf, w)
		}
		for f := range nf {
			if got := line[bounds[f]+1 : bounds[f+1]]; !bytes.Equal(got, fields[f]) {
				t.Fatalf("scan(%q, way %d): field %d = %q, want %q", line, way, f, got, fields[f])
			}
		}
	}
	if nf < 0 {
		return
	}
	// Both ways of store where the assembly runs (asm), else the one;
	// every field stored, or one in three skipped and three past nf
	// asked for (which store must leave alone).
	for _, useAsm := range []bool{asm, false} {
		for _, skip := range []bool{false, true} {
			checkStore(t, line, fields, bounds, nf, useAsm, skip)
		}
	}
}

// scanWays returns the ways of scan this processor runs.
func scanWays() []int {
	ways := []int{byWords}
	if blocks {
		ways = append(ways, byBlocks)
	}
	if compress {
		ways = append(ways, byCompress)
	}
	return ways
}

// checkStore runs store (storeNums, or storeGo) on the fields scan
// bounded in line and compares what it wrote with fields and parseNumber.
func checkStore(t *testing.T, line []byte, fields [][]byte, bounds []int32, nf int, useAsm, skip bool) {
	t.Helper()
	vals := make([][batchRows]float64, nf+3)
	var nums []used
	for f := range nf + 3 {
		if skip && f%3 == 1 || !skip && f >= nf {
			continue
		}
		nums = append(nums, used{field: int32(f), slot: int32(f), vals: &vals[f]})
	}
	const r = 3
	slow := make([]int32, len(nums))
	var k int
	if useAsm {
		k = storeNums(nums, (*[maxFields]int32)(bounds), nf, line, r, slow)
	} else {
		k = storeGo(nums, bounds, nf, line, r, slow)
	}
	inSlow := map[int32]bool{}
	for _, j := range slow[:k] {
		inSlow[nums[j].field] = true
	}
	for _, u := range nums {
		f := int(u.field)
		if f >= nf {
			if inSlow[u.field] || vals[f] != ([batchRows]float64{}) {
				t.Errorf("asm %v: field %d, past the %d scanned: stored", useAsm, f, nf)
			}
			continue
		}
		cell := fields[f]
		plain := len(cell) >= 1 && len(cell) <= 18 && len(bytes.Trim(cell, "0123456789")) == 0
		if inSlow[int32(f)] {
			if plain {
				t.Errorf("asm %v: field %d %q: left to the slow path, but it is a plain number", useAsm, f, cell)
			}
			continue
		}
		if !plain {
			t.Errorf("asm %v: field %d %q: stored %v, but it is not a plain number", useAsm, f, cell, vals[f][r])
			continue
		}
		if v, ok := parseNumber(cell); !ok || v != vals[f][r] {
			t.Errorf("asm %v: field %d %q: stored %v, parseNumber reads %v, %v", useAsm, f, cell, vals[f][r], v, ok)
		}
	}
}

// randomRecord returns a record of n fields of the kinds a `show stat`
// line holds (and some it never does), in a buffer that goes on with
// garbage, commas included, past the record.
func randomRecord(rng *rand.Rand, n int) []byte {
	var b []byte
	for f := range n {
		if f > 0 {
			b = append(b, ',')
		}
		switch rng.IntN(11) {
		case 0, 1:
			// empty
		case 2, 3, 4:
			b = append(b, byte('0'+rng.IntN(10)))
		case 5:
			b = strconv.AppendUint(b, rng.Uint64N(1_000_000), 10)
		case 6:
			// 1 to 20 digits, leading zeros included.
			for range 1 + rng.IntN(20) {
				b = append(b, byte('0'+rng.IntN(10)))
			}
		case 7:
			b = append(b, []string{"UP", "L4OK", "-1", "1.5", "+3", " 7", "7 ", "9x", "/", ":", "http"}[rng.IntN(11)]...)
		case 8:
			b = strconv.AppendUint(b, rng.Uint64(), 10)
		case 9:
			b = append(b, "be_01_r02"...)
		case 10:
			// Rare: a double quote (HAProxy quotes text fields).
			if rng.IntN(4) == 0 {
				b = append(b, []string{`"a,b"`, `"x""y"`, `"`, `L7STS "503"`}[rng.IntN(4)]...)
			}
		}
	}
	line := len(b)
	for range rng.IntN(24) {
		b = append(b, ",09:a\""[rng.IntN(6)])
	}
	return b[:line]
}

func TestScanStore(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, line := range []string{
		"", ",", ",,", "0", "1,2", "12345678,123456789,1234567890123456,12345678901234567,123456789012345678,1234567890123456789",
		",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,", "a,b,c,d,e,f,g,h,i,j,k,l", "00000000,0000000000000000",
		"999999999999999999,1000000000000000000", "9,99,999,9999,99999,999999,9999999,99999999,999999999",
		`"`, `1,2,"3,4",5`, `0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,"L7STS, 503"`, `"a""b",1,2,3,4,5,6,7,8,9,10,11,12,13`,
	} {
		for want := range 40 {
			checkScanStore(t, []byte(line), want)
		}
	}
	for range 3000 {
		n := 1 + rng.IntN(140)
		line := randomRecord(rng, n)
		for _, want := range []int{1, 1 + rng.IntN(n), n, n + 5} {
			checkScanStore(t, line, want)
		}
		// A record that is its buffer's end: nothing to read past it.
		checkScanStore(t, bytes.Clone(line), n)
	}
}

// FuzzScanStore checks scan and store against a plain split and
// parseNumber on any bytes (make fuzz).
func FuzzScanStore(f *testing.F) {
	f.Add([]byte("be_00_r00,srv1_c0,0,0,0,1,,822,73980,70692,,0,,0,0,0,0,UP,1,1,0,0"), 10)
	f.Add([]byte(",,,,,,,,,,,,,,,,,,"), 30)
	f.Add([]byte("12345678901234567890,1,22,333"), 3)
	f.Fuzz(func(t *testing.T, line []byte, want int) {
		if want < 0 || want+slack > maxFields || len(line) > 1<<16 {
			return
		}
		// The fuzzer's bytes may hold a newline, which a record cannot.
		line = bytes.ReplaceAll(line, []byte{'\n'}, []byte{' '})
		checkScanStore(t, line, want)
	})
}

// A header of more fields than the fast path has room for takes the
// general path: the values are read all the same.
func TestParseStatWideRecord(t *testing.T) {
	var head, row bytes.Buffer
	head.WriteString("# pxname,svname,type")
	row.WriteString("be,s1,2")
	for i := range maxFields + 100 {
		fmt.Fprintf(&head, ",c%d", i)
		fmt.Fprintf(&row, ",%d", i)
	}
	s := parseOne(t, []string{"c5", "c1100"}, stat(head.String()+"\n"+row.String()+"\n"))
	for name, want := range map[string]float64{"c5": 5, "c1100": 1100} {
		c := s.Stats.Column(name)
		if c == nil || c.Values[0] != want || c.Null(0) {
			t.Errorf("column %s = %+v, want %v", name, c, want)
		}
	}
}
