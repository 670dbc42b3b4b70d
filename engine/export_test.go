package engine

// SetParallel says whether p reads the numbers of a batch on two goroutines
// (the default when GOMAXPROCS > 1), for the tests that compare both ways.
func SetParallel(p *Pipeline, on bool) { p.parallel = on }
