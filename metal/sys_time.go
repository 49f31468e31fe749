package metal

import "sync/atomic"

// Time system calls: clock_gettime and nanosleep. Run with interrupts off;
// must not allocate.

// Clock IDs (Linux include/uapi/linux/time.h).
const (
	clockRealtime        = 0
	clockMonotonic       = 1
	clockProcessCPUTime  = 2
	clockThreadCPUTime   = 3
	clockMonotonicRaw    = 4
	clockRealtimeCoarse  = 5
	clockMonotonicCoarse = 6
	clockBoottime        = 7
	clockRealtimeAlarm   = 8
	clockBoottimeAlarm   = 9
)

func sysClockGettimeImpl(clk, ts uint64) uint64 {
	if !userAccess(ts, 16, true) {
		return errno(EFAULT)
	}
	var ns int64
	switch clk {
	case clockRealtime, clockRealtimeCoarse, clockRealtimeAlarm:
		ns = nanotime() + atomic.LoadInt64(&wallOffset)
	case clockMonotonic, clockMonotonicRaw, clockMonotonicCoarse, clockBoottime, clockBoottimeAlarm:
		ns = nanotime()
	case clockProcessCPUTime, clockThreadCPUTime: // approximated by uptime
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
		yield()
		return 0
	}
	block(blockSleep, nanotime()+d)
	return 0
}
