package metal

// Threads and the process they share: clone, arch_prctl (the FS base),
// sched_getaffinity and prlimit64. Run with interrupts off; must not
// allocate.

// clone: new thread sharing everything; the child resumes after SYSCALL with
// RAX=0 on the given stack and TLS (CLONE_SETTLS).
func sysCloneImpl(f *TrapFrame, flags, stack, tls uint64) uint64 {
	const cloneVM, cloneThread, cloneSetTLS = 0x100, 0x10000, 0x80000
	if flags&cloneVM == 0 || flags&cloneThread == 0 {
		return errno(EINVAL) // no processes, only threads
	}
	i := newThread()
	if i < 0 {
		return errno(EAGAIN)
	}
	t := &threads[i]
	t.frame = *f
	t.frame.RAX = 0
	if stack != 0 {
		t.frame.RSP = stack
	}
	t.fx = *entryFX()
	t.fsBase = thisCPU().entryFSBase
	if flags&cloneSetTLS != 0 {
		t.fsBase = tls
	}
	makeRunnable(i)
	return uint64(t.tid)
}

func sysArchPrctlImpl(code, addr uint64) uint64 {
	const archSetFS, archGetFS = 0x1002, 0x1003
	switch code {
	case archSetFS:
		thisCPU().entryFSBase = addr
		return 0
	case archGetFS:
		if !userAccess(addr, 8, true) {
			return errno(EFAULT)
		}
		*userU64(addr) = thisCPU().entryFSBase
		return 0
	}
	return errno(EINVAL)
}

func sysSchedGetaffinityImpl(n, buf uint64) uint64 {
	if n < 8 || !userAccess(buf, 8, true) {
		return errno(EINVAL)
	}
	var mask uint64 // the online CPUs (maxCPUs ≤ 64)
	for k := range cpuSlots {
		if cpus[k].online.Load() {
			mask |= 1 << k
		}
	}
	*userU64(buf) = mask
	return 8
}

func sysPrlimitImpl(resource, newp, oldp uint64) uint64 {
	if oldp != 0 {
		if !userAccess(oldp, 16, true) {
			return errno(EFAULT)
		}
		*userU64(oldp) = 1024
		*userU64(oldp + 8) = 1024
	}
	if newp != 0 {
		return errno(EPERM)
	}
	return 0
}
