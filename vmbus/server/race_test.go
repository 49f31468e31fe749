//go:build race

package server

// raceEnabled keeps FuzzHandleMessage's guest off the rings under the race
// detector: a guest that writes a ring the host reads is a data race by
// design (the ring's atomics order only a well-behaved peer), and so are
// two channels over one GPADL's pages.
const raceEnabled = true
