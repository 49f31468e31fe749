package checks

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"gohv/metal"
)

const (
	futexWait = 0 | 128
	futexWake = 1 | 128
)

// futexHandoff ping-pongs a word between two OS threads with raw futex
// wait/wake and returns the median cost of one wake-to-run handoff (half a
// round trip).
func futexHandoff(env *Env, rounds int) uint64 {
	prev := runtime.GOMAXPROCS(2) // each thread keeps a P while blocked
	defer runtime.GOMAXPROCS(prev)
	var word uint32 // 0: ping's turn, 1: pong's turn
	addr := uintptr(unsafe.Pointer(&word))
	wait := func(v uint32) {
		for atomic.LoadUint32(&word) == v {
			syscall.Syscall6(syscall.SYS_FUTEX, addr, futexWait, uintptr(v), 0, 0, 0)
		}
	}
	pass := func(v uint32) {
		atomic.StoreUint32(&word, v)
		syscall.Syscall6(syscall.SYS_FUTEX, addr, futexWake, 1, 0, 0, 0)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		for i := 0; i < rounds; i++ {
			wait(0)
			pass(0)
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	costs := make([]uint64, 0, rounds)
	for i := 0; i < rounds; i++ {
		t0 := metal.TSC()
		pass(1)
		wait(1)
		costs = append(costs, (metal.TSC()-t0)/2)
	}
	wg.Wait()
	sort.Slice(costs, func(i, j int) bool { return costs[i] < costs[j] })
	if len(costs) == 0 {
		fmt.Fprintln(env.Out, "gohv: warning: futex handoff measured nothing")
		return 0
	}
	return costs[len(costs)/2]
}
