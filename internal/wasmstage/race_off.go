//go:build !race

package wasmstage

const raceEnabled = false
