package metal

// The scheduler: a FIFO run queue, blocking and waking, and the switch at
// the end of every trap. Everything here runs with interrupts off and must
// not allocate.

func (c *cpu) runqPush(i int32) {
	c.runq[(c.runqHead+c.runqLen)%maxThreads] = i
	c.runqLen++
}

func (c *cpu) runqPop() int32 {
	if c.runqLen == 0 {
		return -1
	}
	i := c.runq[c.runqHead]
	c.runqHead = (c.runqHead + 1) % maxThreads
	c.runqLen--
	return i
}

// makeRunnable queues thread i on this CPU. Runs with interrupts off.
func makeRunnable(i int32) {
	c := thisCPU()
	t := &threads[i]
	t.state = tsRunnable
	t.reason = blockNone
	t.deadline = 0
	if i != c.idle {
		c.runqPush(i)
	}
}

// block parks the current thread; the scheduler picks another at trap exit.
func block(reason blockReason, deadline int64) {
	t := currentThread()
	t.state = tsBlocked
	t.reason = reason
	t.deadline = deadline
	thisCPU().needResched = true
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
// thread if it blocked, exited, used up its slice, or is the idle thread and
// work arrived. Runs with interrupts off; must not allocate.
func schedule() {
	c := thisCPU()
	cur := &threads[c.current]
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
			if c.current == c.idle {
				cur.state = tsRunnable
			} else {
				makeRunnable(c.current)
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

// preempt is called from the timer: the current thread goes to the back of
// the run queue if anyone is waiting.
func preempt() {
	if c := thisCPU(); c.runqLen > 0 && c.current != c.idle {
		c.needResched = true
	}
}

// wakeExpired ends timed blocks whose deadline has passed. Runs in the timer
// interrupt with interrupts off; must not allocate.
func wakeExpired(now int64) {
	for i := int32(1); i < maxThreads; i++ {
		t := &threads[i]
		if t.state != tsBlocked || t.deadline == 0 || t.deadline > now {
			continue
		}
		switch t.reason {
		case blockFutex:
			wake(i, errno(ETIMEDOUT))
		case blockSleep:
			wake(i, 0)
		case blockEpoll:
			wake(i, 0)
		}
	}
}
