package builtin

import (
	"math"

	"github.com/haproxystats-go/haproxystats/engine"
)

// grouping assigns selected rows of a StatTable to groups (objects).
// rowGroup[i] is the group of row i, or -1 when the row is not selected.
type grouping struct {
	rowGroup []int32
	n        int
}

// groupRows groups the rows for which key returns ok by the returned key,
// numbering groups in first-seen order. K is a comparable key such as a
// name or a (backend, server) pair.
func groupRows[K comparable](rows int, key func(row int) (K, bool)) (grouping, []K) {
	g := grouping{rowGroup: make([]int32, rows)}
	index := make(map[K]int32)
	var keys []K
	for i := 0; i < rows; i++ {
		k, ok := key(i)
		if !ok {
			g.rowGroup[i] = -1
			continue
		}
		gi, seen := index[k]
		if !seen {
			gi = int32(len(keys))
			index[k] = gi
			keys = append(keys, k)
		}
		g.rowGroup[i] = gi
	}
	g.n = len(keys)
	return g, keys
}

// sum adds the column's values per group; empty cells count as 0.
func (g grouping) sum(c *engine.Column) []float64 {
	out := make([]float64, g.n)
	for i, gi := range g.rowGroup {
		if gi >= 0 {
			out[gi] += c.Values[i]
		}
	}
	return out
}

// mean averages the column's values per group over the rows for which
// keep is nil or true; a group without such a row gets NaN. Empty cells
// count as 0, as the original filled them before averaging.
func (g grouping) mean(c *engine.Column, keep []bool) []float64 {
	out := make([]float64, g.n)
	n := make([]int, g.n)
	for i, gi := range g.rowGroup {
		if gi >= 0 && (keep == nil || keep[i]) {
			out[gi] += c.Values[i]
			n[gi]++
		}
	}
	for i := range out {
		if n[i] == 0 {
			out[i] = math.NaN()
		} else {
			out[i] /= float64(n[i])
		}
	}
	return out
}

// served marks the rows whose lbtot is above 0: the response-time
// averages only use rows of servers that were selected at least once.
func served(t *engine.StatTable) []bool {
	keep := make([]bool, t.Rows())
	if c := t.Column("lbtot"); c != nil {
		for i, v := range c.Values {
			keep[i] = v > 0
		}
	}
	return keep
}

// series is one metric column computed per group.
type series struct {
	name   string
	values []float64
}

// aggregate computes, per group, the sums of summed and the averages of
// averaged (over every row) and of times (over rows with lbtot > 0). A
// name that is both summed and averaged is reported twice, as name_x (sum)
// and name_y (average), the column names pandas gave the original's merge.
// Columns that this HAProxy version does not have are skipped.
func aggregate(t *engine.StatTable, g grouping, summed, averaged, times []string) []series {
	avg := make(map[string]bool, len(averaged)+len(times))
	for _, n := range averaged {
		avg[n] = true
	}
	for _, n := range times {
		avg[n] = true
	}
	sumSet := make(map[string]bool, len(summed))
	var out []series
	for _, name := range summed {
		c := t.Column(name)
		if c == nil || sumSet[name] {
			continue
		}
		sumSet[name] = true
		label := name
		if avg[name] {
			label = name + "_x"
		}
		out = append(out, series{label, g.sum(c)})
	}
	var keep []bool
	for i, list := range [][]string{averaged, times} {
		for _, name := range list {
			c := t.Column(name)
			if c == nil {
				continue
			}
			var mask []bool
			if i == 1 {
				if keep == nil {
					keep = served(t)
				}
				mask = keep
			}
			label := name
			if sumSet[name] {
				label = name + "_y"
			}
			out = append(out, series{label, g.mean(c, mask)})
		}
	}
	return out
}

// union returns the distinct names of lists, in order.
func union(lists ...[]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lists {
		for _, n := range l {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}
