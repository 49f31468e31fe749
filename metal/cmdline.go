package metal

// The kernel command line, split into words without allocating: read at
// boot, before the runtime exists, for the inject= words, timer=oneshot and
// the runtime's argv.

// fields splits on spaces into a fixed array (no allocation).
func fields(b []byte) [32][]byte {
	var out [32][]byte
	n := 0
	for i := 0; i < len(b) && n < len(out); {
		for i < len(b) && b[i] == ' ' {
			i++
		}
		j := i
		for j < len(b) && b[j] != ' ' {
			j++
		}
		if j > i {
			out[n] = b[i:j]
			n++
		}
		i = j
	}
	return out
}

func hasWord(w []byte, s string) bool {
	if len(w) != len(s) {
		return false
	}
	for i := range w {
		if w[i] != s[i] {
			return false
		}
	}
	return true
}

// hasTimerOneShotWord reports whether the command line holds timer=oneshot:
// arm the LAPIC timer in one-shot mode even where the CPU has TSC-deadline
// (to run that path on a CPU that would not take it).
func hasTimerOneShotWord(cmd []byte) bool {
	for _, w := range fields(cmd) {
		if hasWord(w, "timer=oneshot") {
			return true
		}
	}
	return false
}
