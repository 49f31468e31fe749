package metal

import (
	"strconv"
	"strings"
	"testing"
)

// TestStarvedThreadIsReportedOnce: a thread bound to CPU 1 that has sat in
// the run queue for starveNS is reported, with CPU 1's state, once per
// wait; a thread queued for less is not; queuing it again starts a new
// wait that may be reported again.
func TestStarvedThreadIsReportedOnce(t *testing.T) {
	setupKernel(t)
	t.Cleanup(func() { hostCPU, cpuSlots = 0, 1 })
	asCPU(t, 1, 2)
	asCPU(t, 0, 2)
	starved, fresh := newThread(), newThread()
	threads[starved].affinity = 2 // CPU 1
	makeRunnable(starved)
	makeRunnable(fresh)
	now := nanotime()
	threads[starved].queuedAt = now - starveNS - 1
	testConsoleLen = 0
	starveChecked, starvations = now-starveCheckNS, 0

	checkStarvation(now)
	out := string(testConsole[:testConsoleLen])
	if starvations != 1 {
		t.Fatalf("starvations = %d, want 1; console:\n%s", starvations, out)
	}
	want := "thread " + strconv.Itoa(int(threads[starved].tid)) + " has waited 2000 ms in the run queue for cpu 1"
	if !strings.Contains(out, want) || !strings.Contains(out, "cpu 1 idle") {
		t.Errorf("console lacks %q or CPU 1's state:\n%s", want, out)
	}
	if strings.Contains(out, "thread "+strconv.Itoa(int(threads[fresh].tid))+" has waited") {
		t.Errorf("reported a thread queued just now:\n%s", out)
	}
	if strings.Contains(out, "cpu 0") {
		t.Errorf("reported CPU 0, which may not run the bound thread:\n%s", out)
	}

	checkStarvation(now + starveCheckNS) // the same wait: not again
	if starvations != 1 {
		t.Errorf("the same wait was reported %d times", starvations)
	}
	// Taken and queued again: a new wait, reported once it is as long.
	if c := thisCPU(); c.runqPop() != fresh {
		t.Fatal("CPU 0 did not take the unbound thread")
	}
	asCPU(t, 1, 2)
	if got := thisCPU().runqPop(); got != starved {
		t.Fatalf("CPU 1 took %d, want the bound thread %d", got, starved)
	}
	runqPush(starved)
	asCPU(t, 0, 2)
	threads[starved].queuedAt = now - starveNS
	checkStarvation(now + 2*starveCheckNS)
	if starvations != 2 {
		t.Errorf("a second wait: %d reports, want 2", starvations)
	}
}
