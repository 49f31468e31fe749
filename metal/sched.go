package metal

// The scheduler: a FIFO run queue, blocking and waking, and the switch at
// the end of every trap. Everything here runs with interrupts off and must
// not allocate.

// runqPush queues thread i at the back; wokenQueued counts the queued
// threads that were woken (or are new) rather than preempted.
func (c *cpu) runqPush(i int32) {
	c.runq[(c.runqHead+c.runqLen)%maxThreads] = i
	c.runqLen++
	if threads[i].woken {
		c.wokenQueued++
	}
	c.timerDirty = true // a slice may end now
}

func (c *cpu) runqPop() int32 {
	if c.runqLen == 0 {
		return -1
	}
	i := c.runq[c.runqHead]
	c.runqHead = (c.runqHead + 1) % maxThreads
	c.runqLen--
	if threads[i].woken {
		c.wokenQueued--
	}
	c.timerDirty = true
	return i
}

// makeRunnable queues thread i on this CPU, woken from a block or new.
// Runs with interrupts off.
func makeRunnable(i int32) {
	c := thisCPU()
	t := &threads[i]
	if t.state == tsBlocked {
		c.forgetDeadline(t.deadline)
	}
	t.state = tsRunnable
	t.reason = blockNone
	t.deadline = 0
	t.woken = true
	if i != c.idle {
		c.runqPush(i)
	}
}

// sliceEnd is when the running thread's slice ends: sliceNS after it was
// switched in, or wakeSliceNS after if a woken thread waits.
func (c *cpu) sliceEnd() int64 {
	if c.wokenQueued > 0 {
		return c.sliceStart + wakeSliceNS
	}
	return c.sliceStart + sliceNS
}

// block parks the current thread until it is woken or, when deadline is
// not 0, until the monotonic clock reaches deadline; the scheduler picks
// another at trap exit, and the timer is armed for the deadline.
func block(reason blockReason, deadline int64) {
	c := thisCPU()
	t := currentThread()
	t.state = tsBlocked
	t.reason = reason
	t.deadline = deadline
	c.noteDeadline(deadline)
	c.needResched = true
}

// yield gives up this CPU at the end of the trap if another thread is
// waiting for it (sched_yield, a zero nanosleep).
func yield() {
	if c := thisCPU(); c.runqLen > 0 {
		c.needResched = true
	}
}

// wake makes a blocked thread runnable with syscall result r in RAX. Runs
// with interrupts off.
func wake(i int32, r uint64) {
	t := &threads[i]
	t.frame.RAX = r
	makeRunnable(i)
}

// schedule runs at the end of every trap: it switches away from the current
// thread if it blocked, exited, used up its slice while another thread
// waits, or is the idle thread and work arrived. The thread it switches to
// (the run queue's head: FIFO, so nobody waits for ever) starts a new
// slice. Runs with interrupts off; must not allocate.
func schedule() {
	c := thisCPU()
	cur := &threads[c.current]
	// Has the running thread's slice ended while another waits? Once the
	// timer is armed for the slice end (timerDirty clear), its interrupt
	// tells: the clock is read only when something changed.
	if c.timerDirty && c.contended() && cur.state == tsRunning && !c.needResched && nanotime() >= c.sliceEnd() {
		c.needResched = true // slice over: to the back of the run queue
	}
	if cur.state == tsRunning && !c.needResched && !(c.current == c.idle && c.runqLen > 0) {
		return
	}
	c.needResched = false
	next := c.runqPop()
	if next < 0 {
		if cur.state == tsRunning {
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
				c.runqPush(c.current)
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

// wakeExpired ends the timed blocks whose deadline has passed, returns how
// many it ended, and records the earliest deadline still ahead. One pass
// over the slots in use (threadsHigh): a handful for the Go runtime's Ms.
// Runs in the timer interrupt with interrupts off; must not allocate.
func wakeExpired(now int64) int {
	c := thisCPU()
	var next int64
	n := 0
	for i := int32(1); i < threadsHigh; i++ {
		t := &threads[i]
		if t.state != tsBlocked || t.deadline == 0 {
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
