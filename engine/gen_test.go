package engine_test

import "errors"

func generateLarge(src, dst string) error { return errors.New("set HAPROXYSTATS_LARGE") }
