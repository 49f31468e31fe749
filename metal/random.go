package metal

import "gohv/x86"

// Randomness for the runtime's AT_RANDOM and getrandom: RDRAND where the
// CPU has it. Runs with interrupts off; must not allocate.

// fillRandom uses RDRAND where the CPU has it, else a TSC-seeded xorshift
// (good enough for map seeds; the boot log says which).
func fillRandom(b []byte) {
	for i := 0; i < len(b); i += 8 {
		var v uint64
		ok := false
		if hasRDRAND {
			v, ok = x86.RDRAND()
		}
		if !ok {
			rngState ^= x86.RDTSC()
			rngState ^= rngState << 13
			rngState ^= rngState >> 7
			rngState ^= rngState << 17
			v = rngState
		}
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

var rngState uint64 = 0x9e3779b97f4a7c15

func sysGetrandomImpl(buf, n uint64) uint64 {
	if n > 1<<16 {
		n = 1 << 16
	}
	if !userAccess(buf, n, true) {
		return errno(EFAULT)
	}
	fillRandom(userBytes(buf, n))
	return n
}
