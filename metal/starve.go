package metal

// The starvation watchdog: a runnable thread that has waited in the run
// queue for starveNS is reported on the console, once per wait, with what
// the CPUs it may run on are doing. The scheduler is FIFO and every slice
// ends while another thread waits, so this never fires unless metal (or a
// CPU's timer) is broken: it turns a machine that silently stops making
// progress — a guest's VP that never runs again, a garbage collection that
// never ends — into a line that says which thread waits for which CPU and
// why that CPU does not switch.
//
// Any CPU's timer interrupt runs the check, at most once every
// starveCheckNS across the CPUs; the Go runtime's sysmon sleeps in short
// timed blocks, so some CPU always takes timer interrupts. Runs with
// interrupts off, under the kernel lock; must not allocate.

const (
	starveNS      = 2_000_000_000
	starveCheckNS = 500_000_000
)

var (
	starveChecked int64  // when the run queue was last looked at
	starvations   uint64 // waits reported (Stats.Starvations)
)

// checkStarvation reports the queued threads that have waited starveNS or
// more at now and were not reported yet in this wait.
func checkStarvation(now int64) {
	if now-starveChecked < starveCheckNS {
		return
	}
	starveChecked = now
	for k := 0; k < runqLen; k++ {
		i := runq[(runqHead+k)%maxThreads]
		t := &threads[i]
		if t.starveReported || now-t.queuedAt < starveNS {
			continue
		}
		t.starveReported = true
		starvations++
		reportStarved(t, now)
	}
}

// reportStarved prints one starved thread and the CPUs it may run on.
func reportStarved(t *thread, now int64) {
	kputs("gohv: metal: scheduler: thread ")
	kputdec(uint64(t.tid))
	kputs(" has waited ")
	kputdec(uint64((now - t.queuedAt) / 1_000_000))
	kputs(" ms in the run queue")
	if t.affinity != 0 {
		kputs(" for cpu ")
		kputdec(uint64(t.affinity - 1))
	}
	kputs(" (")
	kputdec(uint64(runqLen))
	kputs(" queued)\n")
	for k := range cpuSlots {
		c := &cpus[k]
		if !c.online.Load() || !t.runsOn(c) {
			continue
		}
		cur := &threads[c.current]
		kputs("gohv: metal: scheduler:   cpu ")
		kputdec(uint64(c.index))
		if c.current == c.idle {
			kputs(" idle")
		} else {
			kputs(" runs thread ")
			kputdec(uint64(cur.tid))
		}
		kputs(" for ")
		kputint((now - c.sliceStart) / 1_000_000)
		kputs(" ms; timer armed ")
		if c.timerArmed == 0 {
			kputs("for nothing")
		} else {
			kputs("for ")
			kputint((c.timerArmed - now) / 1000)
			kputs(" us ahead")
		}
		kputs("; alarm ")
		if cur.alarm == 0 {
			kputs("none")
		} else {
			kputint((cur.alarm - now) / 1000)
			kputs(" us ahead")
		}
		kputs("; ")
		kputdec(c.timerInterrupts)
		kputs(" timer interrupts, ")
		kputdec(c.contextSwitches)
		kputs(" switches, ")
		kputdec(c.trapCount[vecResched])
		kputs(" reschedule IPIs; pinned queued ")
		kputdec(uint64(c.pinnedQueued))
		if c.kicked {
			kputs(", kicked")
		}
		kputs("\n")
	}
}
