package metal

// Time system calls: clock_gettime and nanosleep. Run with interrupts off;
// must not allocate.

func sysClockGettimeImpl(clk, ts uint64) uint64 {
	if !userAccess(ts, 16, true) {
		return errno(EFAULT)
	}
	var ns int64
	switch clk {
	case 0, 5, 8: // REALTIME, REALTIME_COARSE, REALTIME_ALARM
		ns = nanotime() + wallOffset
	case 1, 4, 6, 7, 9: // MONOTONIC, _RAW, _COARSE, BOOTTIME, BOOTTIME_ALARM
		ns = nanotime()
	case 2, 3: // process/thread CPU time: approximate by uptime
		ns = nanotime()
	default:
		return errno(EINVAL)
	}
	*userU64(ts) = uint64(ns / 1e9)
	*userU64(ts + 8) = uint64(ns % 1e9)
	return 0
}

// readTimespec reads a relative timeout; ok=false on a bad pointer or value.
func readTimespec(p uint64) (int64, bool) {
	if !userAccess(p, 16, false) {
		return 0, false
	}
	sec, nsec := int64(*userU64(p)), int64(*userU64(p + 8))
	if sec < 0 || nsec < 0 || nsec >= 1e9 {
		return 0, false
	}
	if sec > 1<<32 {
		sec = 1 << 32
	}
	return sec*1e9 + nsec, true
}

func sysNanosleepImpl(req uint64) uint64 {
	d, ok := readTimespec(req)
	if !ok {
		return errno(EINVAL)
	}
	if d == 0 {
		if runqLen > 0 {
			needResched = true
		}
		return 0
	}
	block(blockSleep, nanotime()+d)
	return 0
}
