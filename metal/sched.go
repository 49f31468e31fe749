package metal

// The scheduler: one FIFO run queue for every CPU, blocking and waking, and
// the switch at the end of every trap. A thread may be bound to one CPU
// (PinThread: a VP thread, whose VMCS lives on that CPU); the others run
// wherever a CPU is free. Everything here runs with interrupts off, under
// the kernel lock (smp.go), and must not allocate.

// The run queue, shared by the CPUs. runqAny counts the queued threads
// that any CPU may run; each cpu counts those bound to it (pinnedQueued);
// wokenQueued counts the queued threads that were woken (or are new)
// rather than preempted.
var (
	runq        [maxThreads]int32 // runnable threads, FIFO, from runqHead
	runqHead    int
	runqLen     int
	runqAny     int
	wokenQueued int
)

// runsOn reports whether thread t may run on CPU c.
func (t *thread) runsOn(c *cpu) bool { return t.affinity == 0 || t.affinity-1 == c.index }

// runqPush queues thread i at the back.
func runqPush(i int32) {
	runq[(runqHead+runqLen)%maxThreads] = i
	runqLen++
	t := &threads[i]
	t.queuedAt, t.starveReported = nanotime(), false
	if t.woken {
		wokenQueued++
	}
	if t.affinity == 0 {
		runqAny++
	} else {
		cpus[t.affinity-1].pinnedQueued++
	}
	thisCPU().timerDirty = true // a slice may end now
}

// runqPop takes the first queued thread that may run on c, or returns -1.
func (c *cpu) runqPop() int32 {
	if runqAny == 0 && c.pinnedQueued == 0 {
		return -1
	}
	for k := 0; k < runqLen; k++ {
		i := runq[(runqHead+k)%maxThreads]
		t := &threads[i]
		if !t.runsOn(c) {
			continue
		}
		// Close the gap: the threads ahead of it move back one place.
		for j := k; j > 0; j-- {
			runq[(runqHead+j)%maxThreads] = runq[(runqHead+j-1)%maxThreads]
		}
		runqHead = (runqHead + 1) % maxThreads
		runqLen--
		if t.woken {
			wokenQueued--
		}
		if t.affinity == 0 {
			runqAny--
		} else {
			c.pinnedQueued--
		}
		c.timerDirty = true
		return i
	}
	return -1
}

// makeRunnable queues thread i, woken from a block or new, and sees that a
// CPU that may run it looks at the queue (kick). Runs with interrupts off.
func makeRunnable(i int32) {
	t := &threads[i]
	if t.state == tsBlocked {
		cpus[t.timerCPU].forgetDeadline(t.deadline)
	}
	t.state = tsRunnable
	t.reason = blockNone
	t.deadline = 0
	t.woken = true
	runqPush(i)
	kick(t)
}

// kick makes sure a CPU that may run the queued thread t finds it soon:
// its own CPU when it is bound to one, else an idle CPU, each through a
// reschedule IPI. This CPU needs none: it schedules at the end of the
// trap; a busy CPU finds it when its running thread's slice ends.
func kick(t *thread) {
	c := thisCPU()
	if t.affinity != 0 {
		if o := &cpus[t.affinity-1]; o != c {
			o.timerDirty = true // a slice may end now
			sendResched(o)
		}
		return
	}
	if c.current == c.idle {
		return
	}
	for k := range cpuSlots {
		o := &cpus[k]
		if o != c && o.online.Load() && o.current == o.idle && !o.kicked {
			sendResched(o)
			return
		}
	}
}

// sliceEnd is when the running thread's slice ends: sliceNS after it was
// switched in, or wakeSliceNS after if a woken thread waits.
func (c *cpu) sliceEnd() int64 {
	if wokenQueued > 0 {
		return c.sliceStart + wakeSliceNS
	}
	return c.sliceStart + sliceNS
}

// block parks the current thread until it is woken or, when deadline is
// not 0, until the monotonic clock reaches deadline; the scheduler picks
// another at trap exit, and this CPU's timer is armed for the deadline.
func block(reason blockReason, deadline int64) {
	c := thisCPU()
	t := currentThread()
	t.state = tsBlocked
	t.reason = reason
	t.deadline = deadline
	t.timerCPU = c.index
	c.noteDeadline(deadline)
	c.needResched = true
}

// yield gives up this CPU at the end of the trap if another thread that
// may run here is waiting for it (sched_yield, a zero nanosleep).
func yield() {
	if c := thisCPU(); c.queued() {
		c.needResched = true
	}
}

// queued reports whether a thread that may run on c waits in the queue.
func (c *cpu) queued() bool { return runqAny > 0 || c.pinnedQueued > 0 }

// wake makes a blocked thread runnable with syscall result r in RAX. Runs
// with interrupts off.
func wake(i int32, r uint64) {
	t := &threads[i]
	t.frame.RAX = r
	makeRunnable(i)
}

// schedule runs at the end of every trap: it switches away from the current
// thread if it blocked, exited, used up its slice while another thread
// waits, is bound to another CPU, or is the idle thread and work arrived.
// The thread it switches to (the first in the run queue that may run here:
// FIFO, so nobody waits for ever) starts a new slice. Runs with interrupts
// off; must not allocate.
func schedule() {
	c := thisCPU()
	c.kicked = false
	cur := &threads[c.current]
	if cur.state == tsRunning && !cur.runsOn(c) {
		c.needResched = true // PinThread moved it: its own CPU takes it from the queue
	}
	// Has the running thread's slice ended while another waits? Once the
	// timer is armed for the slice end (timerDirty clear), its interrupt
	// tells: the clock is read only when something changed.
	if c.timerDirty && c.contended() && cur.state == tsRunning && !c.needResched && nanotime() >= c.sliceEnd() {
		c.needResched = true // slice over: to the back of the run queue
	}
	if cur.state == tsRunning && !c.needResched && !(c.current == c.idle && c.queued()) {
		return
	}
	c.needResched = false
	next := c.runqPop()
	if next < 0 {
		if cur.state == tsRunning && cur.runsOn(c) {
			return // nothing else to run
		}
		next = c.idle
	}
	c.sliceStart = nanotime()
	c.timerDirty = true
	if a := threads[next].alarm; a != 0 && a <= c.sliceStart {
		// Came due while the thread was off the CPU: it is interrupted
		// one AlarmRepeat into its slice, which it may be spending
		// entering its guest.
		threads[next].alarm = c.sliceStart + AlarmRepeat.Nanoseconds()
	}
	if next == c.current {
		cur.state = tsRunning
		return
	}
	// Save the outgoing thread if it still exists.
	if cur.state != tsFree {
		cur.frame = *entryFrame()
		cur.fx = *entryFX()
		cur.fsBase = c.entryFSBase
		if cur.state == tsRunning {
			cur.state = tsRunnable
			if c.current != c.idle {
				cur.woken = false // preempted: queued behind, cutting no slice short
				runqPush(c.current)
				if !cur.runsOn(c) {
					kick(cur)
				}
			}
		}
	}
	n := &threads[next]
	*entryFrame() = n.frame
	*entryFX() = n.fx
	c.entryFSBase = n.fsBase
	n.state = tsRunning
	c.current = next
	c.contextSwitches++
}

// wakeExpired ends the timed blocks on this CPU whose deadline has passed,
// returns how many it ended, and records the earliest deadline still
// ahead. One pass over the slots in use (threadsHigh): a handful for the
// Go runtime's Ms. Runs in the timer interrupt with interrupts off; must
// not allocate.
func wakeExpired(now int64) int {
	c := thisCPU()
	var next int64
	n := 0
	for i := firstThread; i < threadsHigh; i++ {
		t := &threads[i]
		if t.state != tsBlocked || t.deadline == 0 || t.timerCPU != c.index {
			continue
		}
		if t.deadline > now {
			if next == 0 || t.deadline < next {
				next = t.deadline
			}
			continue
		}
		switch t.reason {
		case blockFutex:
			wake(i, errno(ETIMEDOUT))
		default: // blockSleep, blockEpoll: time is up, nothing happened
			wake(i, 0)
		}
		n++
	}
	c.wakeAt, c.wakeStale, c.timerDirty = next, false, true
	return n
}
