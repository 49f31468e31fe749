package metal

// The scheduler: a FIFO run queue, blocking and waking, and the switch at
// the end of every trap. Everything here runs with interrupts off and must
// not allocate.

func runqPush(i int32) {
	runq[(runqHead+runqLen)%maxThreads] = i
	runqLen++
}

func runqPop() int32 {
	if runqLen == 0 {
		return -1
	}
	i := runq[runqHead]
	runqHead = (runqHead + 1) % maxThreads
	runqLen--
	return i
}

// makeRunnable queues thread i. Runs with interrupts off.
func makeRunnable(i int32) {
	t := &threads[i]
	t.state = tsRunnable
	t.reason = blockNone
	t.deadline = 0
	if i != idleThread {
		runqPush(i)
	}
}

// block parks the current thread; the scheduler picks another at trap exit.
func block(reason blockReason, deadline int64) {
	t := &threads[current]
	t.state = tsBlocked
	t.reason = reason
	t.deadline = deadline
	needResched = true
}

// wake makes a blocked thread runnable with syscall result r in RAX.
func wake(i int32, r uint64) {
	t := &threads[i]
	t.frame.RAX = r
	makeRunnable(i)
}

// schedule runs at the end of every trap: it switches away from the current
// thread if it blocked, exited, used up its slice, or is the idle thread and
// work arrived. Runs with interrupts off; must not allocate.
func schedule() {
	cur := &threads[current]
	if cur.state == tsRunning && !needResched && !(current == idleThread && runqLen > 0) {
		return
	}
	needResched = false
	next := runqPop()
	if next < 0 {
		if cur.state == tsRunning {
			return // nothing else to run
		}
		next = idleThread
	}
	if next == current {
		cur.state = tsRunning
		return
	}
	// Save the outgoing thread if it still exists.
	if cur.state != tsFree {
		cur.frame = *entryFrame()
		cur.fx = *entryFX()
		cur.fsBase = entryFSBase
		if cur.state == tsRunning {
			if current == idleThread {
				cur.state = tsRunnable
			} else {
				makeRunnable(current)
			}
		}
	}
	n := &threads[next]
	*entryFrame() = n.frame
	*entryFX() = n.fx
	entryFSBase = n.fsBase
	n.state = tsRunning
	current = next
	contextSwitches++
}

var contextSwitches uint64

// preempt is called from the timer: the current thread goes to the back of
// the run queue if anyone is waiting.
func preempt() {
	if runqLen > 0 && current != idleThread {
		needResched = true
	}
}

// wakeExpired ends timed blocks whose deadline has passed.
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
