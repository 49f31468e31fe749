package metal

import (
	"errors"
	"testing"
)

// resetDeviceVectors clears the package's device vector state.
func resetDeviceVectors(t *testing.T) {
	t.Helper()
	for i := range deviceVecs {
		deviceVecs[i].count.Store(0)
		deviceVecs[i].taken.Store(false)
	}
	strayDevices.Store(0)
}

func TestDeviceVectorsAllocateInRangeOnce(t *testing.T) {
	resetDeviceVectors(t)
	seen := map[uint8]bool{}
	for range deviceVectors {
		v, err := AllocDeviceVector()
		if err != nil {
			t.Fatal(err)
		}
		if v < vecDeviceFirst || v > vecDeviceLast || seen[v] {
			t.Fatalf("vector %#x (seen %v)", v, seen)
		}
		if v == vecTimer || v == vecResched || v == vecShootdown || v >= vecPICBase {
			t.Fatalf("vector %#x is metal's own", v)
		}
		seen[v] = true
	}
	if _, err := AllocDeviceVector(); !errors.Is(err, ErrNoDeviceVector) {
		t.Fatalf("all taken: %v", err)
	}
	FreeDeviceVector(0x25)
	if v, err := AllocDeviceVector(); err != nil || v != 0x25 {
		t.Fatalf("after free: %#x %v", v, err)
	}
	FreeDeviceVector(0x80) // outside the range: ignored
	if _, err := WaitDeviceInterrupt(0x80, 0, 0); err == nil {
		t.Fatal("wait on a vector outside the range")
	}
}

// TestDeviceInterruptWakesItsWaitersOnly: an interrupt on an allocated
// vector counts and wakes the threads waiting on its word, not those on
// another vector's; one on a free vector is stray and wakes nobody.
func TestDeviceInterruptWakesItsWaitersOnly(t *testing.T) {
	setupKernel(t)
	resetDeviceVectors(t)
	v, _ := AllocDeviceVector()
	w, _ := AllocDeviceVector()
	a := thisCPU().current
	b := newThread()
	makeRunnable(b)
	threads[a].futex = deviceVecs[v-vecDeviceFirst].addr()
	block(blockFutex, 0)
	schedule()
	if thisCPU().current != b {
		t.Fatalf("running %d, want %d", thisCPU().current, b)
	}
	threads[b].futex = deviceVecs[w-vecDeviceFirst].addr()
	block(blockFutex, 0)
	schedule()

	deviceInterrupt(vecDeviceLast)
	if StrayInterrupts() != 1 || threads[a].state != tsBlocked || threads[b].state != tsBlocked {
		t.Fatalf("stray interrupt: stray %d, states %d %d", StrayInterrupts(), threads[a].state, threads[b].state)
	}
	deviceInterrupt(uint64(v))
	if DeviceInterrupts(v) != 1 || threads[a].state != tsRunnable || threads[b].state != tsBlocked || threads[a].frame.RAX != 0 {
		t.Fatalf("after the interrupt: count %d, states %d %d", DeviceInterrupts(v), threads[a].state, threads[b].state)
	}
	if DeviceInterrupts(w) != 0 {
		t.Fatalf("the other vector counted %d", DeviceInterrupts(w))
	}
	// A waiter whose count is stale returns at once.
	if n, err := WaitDeviceInterrupt(v, 0, 0); err != nil || n != 1 {
		t.Fatalf("stale wait: %d %v", n, err)
	}
}

func TestDeviceInterruptDoesNotAllocate(t *testing.T) {
	setupKernel(t)
	resetDeviceVectors(t)
	v, _ := AllocDeviceVector()
	if n := testing.AllocsPerRun(100, func() { deviceInterrupt(uint64(v)) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
