package engine_test

import "github.com/haproxystats-go/haproxystats/internal/testenv"

func generateLarge(src, dst string) error { return testenv.GenerateLarge(src, dst) }
