//go:build race

package ring

// raceEnabled shortens the stress test under the race detector, which
// makes every memory access some ten times slower.
const raceEnabled = true
