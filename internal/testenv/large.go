package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// GenerateLarge writes the large benchmark snapshot into dst from the
// capture in src (the medium conformance case's snapshot): 8 processes x
// 1000 backends x 10 servers, frontends copied 5 times. It is a Go port of
// shared/perf/gen_large.py producing byte-identical files (the sha256 the
// perf README gives), so that benchmarks need nothing outside the
// repository.
func GenerateLarge(src, dst string) error {
	return Generate(src, dst, 8, 1000, 10, 5)
}

var (
	processNum = regexp.MustCompile(`(?m)^Process_num: \d+$`)
	nbproc     = regexp.MustCompile(`(?m)^Nbproc: \d+$`)
	rateLim    = regexp.MustCompile(`(?m)^(CompressBpsRateLim: .*)$`)
)

// Generate writes a scaled snapshot into dst (created): procs processes,
// nbackends backends of nservers servers, every frontend copied feCopies
// times, exactly as shared/perf/gen_large.py does with the same numbers.
func Generate(src, dst string, procs, nbackends, nservers, feCopies int) error {
	stats, _ := filepath.Glob(filepath.Join(src, "*_stat"))
	k := len(stats)
	if k == 0 {
		return fmt.Errorf("%s: no *_stat file", src)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for p := 1; p <= procs; p++ {
		q := (p-1)%k + 1
		stat, err := os.ReadFile(filepath.Join(src, fmt.Sprintf("admin%d.sock_stat", q)))
		if err != nil {
			return err
		}
		info, err := os.ReadFile(filepath.Join(src, fmt.Sprintf("admin%d.sock_info", q)))
		if err != nil {
			return err
		}
		in := processNum.ReplaceAllString(string(info), fmt.Sprintf("Process_num: %d", p))
		in = nbproc.ReplaceAllString(in, fmt.Sprintf("Nbproc: %d", procs))
		if !strings.Contains(in, "ZlibMemUsage:") {
			in = rateLim.ReplaceAllString(in, "$1\nZlibMemUsage: 0\nMaxZlibMemUsage: 0")
		}
		if err := os.WriteFile(filepath.Join(dst, fmt.Sprintf("admin%d.sock_info", p)), []byte(in), 0o644); err != nil {
			return err
		}
		out := scaleStat(string(stat), nbackends, nservers, feCopies)
		if err := os.WriteFile(filepath.Join(dst, fmt.Sprintf("admin%d.sock_stat", p)), []byte(out), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func scaleStat(text string, nbackends, nservers, feCopies int) string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	header := lines[0]
	var fronts [][]string
	blocks := map[string][][]string{}
	var order []string
	for _, l := range lines[1:] {
		r := strings.Split(l, ",")
		if r[1] == "FRONTEND" {
			fronts = append(fronts, r)
			continue
		}
		if _, ok := blocks[r[0]]; !ok {
			order = append(order, r[0])
		}
		blocks[r[0]] = append(blocks[r[0]], r)
	}
	out := []string{header}
	for c := 0; c < feCopies; c++ {
		for _, r := range fronts {
			out = append(out, strings.Join(append([]string{fmt.Sprintf("%s_r%02d", r[0], c)}, r[1:]...), ","))
		}
	}
	reps := max(1, nbackends/max(1, len(order)))
	for c := 0; c < reps; c++ {
		for _, name := range order {
			var srvs, back [][]string
			for _, r := range blocks[name] {
				if r[1] == "BACKEND" {
					back = append(back, r)
				} else {
					srvs = append(srvs, r)
				}
			}
			n := fmt.Sprintf("%s_r%02d", name, c)
			if len(srvs) > 0 {
				for i := 0; i < nservers; i++ {
					r := srvs[i%len(srvs)]
					out = append(out, strings.Join(append([]string{n, fmt.Sprintf("%s_c%d", r[1], i)}, r[2:]...), ","))
				}
			}
			for _, r := range back {
				out = append(out, strings.Join(append([]string{n}, r[1:]...), ","))
			}
		}
	}
	return strings.Join(out, "\n") + "\n\n"
}
