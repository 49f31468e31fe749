package metal

import (
	"encoding/binary"
	"strings"
	"testing"
)

func TestSyscallBasics(t *testing.T) {
	setupKernel(t)
	if r := sys(sysGetpid); r != 1 {
		t.Errorf("getpid = %d", r)
	}
	if r := sys(sysGettid); r != uint64(threads[thisCPU().current].tid) {
		t.Errorf("gettid = %d", r)
	}
	ts := userAddr(0)
	if r := sys(sysClockGettime, 1, ts); r != 0 {
		t.Fatalf("clock_gettime = %d", int64(r))
	}
	first := *userU64(ts)*1e9 + *userU64(ts + 8)
	sys(sysClockGettime, 1, ts)
	if second := *userU64(ts)*1e9 + *userU64(ts + 8); second < first {
		t.Errorf("monotonic clock went back: %d then %d", first, second)
	}
	if r := sys(sysClockGettime, 1, 0x10); r != errno(EFAULT) {
		t.Errorf("clock_gettime to page 0 = %d, want EFAULT", int64(r))
	}
	if r := sys(sysSchedGetaffinity, 0, 8192, userAddr(64)); r != 8 || *userU64(userAddr(64)) != 1 {
		t.Errorf("sched_getaffinity = %d mask %#x", r, *userU64(userAddr(64)))
	}
	if r := sys(sysFcntl, 1, 1); r != 0 {
		t.Errorf("fcntl(1, F_GETFD) = %d", int64(r))
	}
	if r := sys(sysFcntl, 9, 1); r != errno(EBADF) {
		t.Errorf("fcntl(9) = %d, want EBADF", int64(r))
	}
	if r := sys(sysOpenat, 0, userAddr(0), 0); r != errno(ENOENT) {
		t.Errorf("openat = %d, want ENOENT", int64(r))
	}
	if r := sys(sysArchPrctl, 0x1002, 0x1234000); r != 0 || thisCPU().entryFSBase != 0x1234000 {
		t.Errorf("arch_prctl(SET_FS) = %d, fs %#x", r, thisCPU().entryFSBase)
	}
}

func TestUnknownSyscallIsENOSYSAndReported(t *testing.T) {
	setupKernel(t)
	if r := sys(999); r != errno(ENOSYS) {
		t.Fatalf("syscall 999 = %d, want -ENOSYS", int64(r))
	}
	if !strings.Contains(consoleText(), "gohv: unsupported system call 999") {
		t.Errorf("console: %q", consoleText())
	}
	if LastUnsupportedSyscall() != 999 {
		t.Errorf("LastUnsupportedSyscall = %d", LastUnsupportedSyscall())
	}
}

func TestWriteGoesToConsole(t *testing.T) {
	setupKernel(t)
	copy(userMem[100:], "hello\n")
	if r := sys(sysWrite, 2, userAddr(100), 6); r != 6 {
		t.Fatalf("write = %d", int64(r))
	}
	if consoleText() != "hello\n" {
		t.Errorf("console %q", consoleText())
	}
	if r := sys(sysWrite, 1, 0x20000, 6); r != errno(EFAULT) {
		t.Errorf("write from unmapped memory = %d, want EFAULT", int64(r))
	}
}

func TestEpollReportsEventfdWrites(t *testing.T) {
	setupKernel(t)
	ep := sys(sysEpollCreate1, 0x80000)
	ev := sys(sysEventfd2, 0, 0x80800)
	evbuf := userAddr(1024)
	*userU32(evbuf) = 1
	binary.LittleEndian.PutUint64(userMem[1028:], 0xfeedface)
	if r := sys(sysEpollCtl, ep, 1, ev, evbuf); r != 0 {
		t.Fatalf("epoll_ctl = %d", int64(r))
	}
	out := userAddr(2048)
	if r := sys(sysEpollPwait, ep, out, 128, 0); r != 0 {
		t.Fatalf("poll with nothing pending = %d", r)
	}
	waiter := thisCPU().current
	sys(sysEpollPwait, ep, out, 128, ^uint64(0)) // block forever
	if threads[waiter].state != tsBlocked {
		t.Fatal("epoll_pwait(-1) did not block")
	}
	other := newThread()
	makeRunnable(other)
	schedule()
	*userU64(userAddr(4000)) = 1
	if r := sys(sysWrite, ev, userAddr(4000), 8); r != 8 {
		t.Fatalf("eventfd write = %d", int64(r))
	}
	if threads[waiter].state != tsRunnable || threads[waiter].frame.RAX != 1 {
		t.Fatalf("waiter state %d result %d", threads[waiter].state, threads[waiter].frame.RAX)
	}
	if *userU32(out) != 1 || *userU64(out + 4) != 0xfeedface {
		t.Errorf("event %#x data %#x", *userU32(out), *userU64(out + 4))
	}
	if r := sys(sysRead, ev, userAddr(4008), 8); r != 8 || *userU64(userAddr(4008)) != 1 {
		t.Errorf("eventfd read = %d value %d", int64(r), *userU64(userAddr(4008)))
	}
	if r := sys(sysRead, ev, userAddr(4008), 8); r != errno(EAGAIN) {
		t.Errorf("empty eventfd read = %d, want EAGAIN", int64(r))
	}
}

// TestPageCallsServeTheHypervisor: metal's own calls hand out zeroed
// frames, count them, take them back once, and refuse a page that is not
// allocated or not aligned.
func TestPageCallsServeTheHypervisor(t *testing.T) {
	setupKernel(t)
	before, free := hvPages, pages.FreePages()
	pa := sys(sysMetalAllocPage)
	if int64(pa) < 0 || pa&(pageSize-1) != 0 || hvPages != before+1 || pages.FreePages() != free-1 {
		t.Fatalf("alloc = %#x, %d hypervisor pages, %d free (was %d, %d)", pa, hvPages, pages.FreePages(), before, free)
	}
	if r := sys(sysMetalFreePage, pa+8); r != errno(EINVAL) {
		t.Errorf("free of an unaligned address = %d, want EINVAL", int64(r))
	}
	if r := sys(sysMetalFreePage, pa); r != 0 || hvPages != before || pages.FreePages() != free {
		t.Fatalf("free = %d, %d hypervisor pages, %d free", int64(r), hvPages, pages.FreePages())
	}
	if r := sys(sysMetalFreePage, pa); r != errno(EINVAL) || hvPages != before {
		t.Errorf("second free = %d, want EINVAL; %d hypervisor pages", int64(r), hvPages)
	}
}
