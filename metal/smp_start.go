package metal

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/usbarmory/tamago/amd64/lapic"

	"gohv/x86"
)

// Starting the application processors, and what the hypervisor's Go code
// may ask about the CPUs: how many run, which one runs the caller, and
// binding a thread to one.

// trampolinePA is the page below 1 MiB that the APs start in
// (smp_trampoline.go), chosen from the boot loader's memory map by
// initMemory; 0 when there is none.
var trampolinePA uint64

// chooseTrampolinePage picks the highest usable page in [nullGuard, 1 MiB)
// of the boot memory map (before the first MiB is reserved). Boot, with
// interrupts off.
func chooseTrampolinePage() {
	for i := 0; i < boot.ram.Len(); i++ {
		r := boot.ram.At(i)
		lo := max((r.Start+pageSize-1)&^(pageSize-1), nullGuard)
		hi := min(r.End, 1<<20) &^ (pageSize - 1)
		if hi >= lo+pageSize && hi-pageSize > trampolinePA {
			trampolinePA = hi - pageSize
		}
	}
}

// CPUStart is what became of one processor StartCPUs was asked to start.
type CPUStart struct {
	APICID uint32
	CPU    int   // its index (CurrentCPU, PinThread), or -1
	Err    error // why it did not start, or why it was not asked to
}

// ErrCPULimit is a CPU not started because of maxCPUs or the kernel
// command-line word cpus=N.
var ErrCPULimit = errors.New("beyond the CPU limit")

// How long the start of one AP may take: INIT, the wait the MP
// initialization protocol asks before the first SIPI, and the wait for the
// AP to report in after each SIPI.
const (
	apINITWait   = 10 * time.Millisecond
	apSIPIWait   = 200 * time.Microsecond
	apOnlineWait = 500 * time.Millisecond
)

// StartCPUs starts the processors whose local APIC IDs are listed (the
// MADT's enabled ones; the boot CPU's is skipped), one at a time: INIT,
// then SIPIs to the trampoline, then a wait for the processor to report
// in. A processor that does not answer is put back in its wait-for-SIPI
// state with INIT and skipped. Processors beyond maxCPUs, or beyond the
// kernel command-line word cpus=N, are not started. Call it once, from an
// ordinary thread (it sleeps); afterwards the scheduler runs threads on
// every CPU that started, and the caller should set GOMAXPROCS to
// CPUCount.
func StartCPUs(apicIDs []uint32) []CPUStart {
	limit := min(cmdlineCPUs(boot.cmdlineBytes()), maxCPUs)
	out := make([]CPUStart, 0, len(apicIDs))
	for _, id := range apicIDs {
		if id == cpus[0].apicID {
			continue
		}
		s := CPUStart{APICID: id, CPU: -1}
		switch {
		case CPUCount() >= limit:
			s.Err = fmt.Errorf("%w of %d", ErrCPULimit, limit)
		case int(cpuSlots) >= maxCPUs:
			s.Err = fmt.Errorf("%w: no slot left of %d", ErrCPULimit, maxCPUs)
		default:
			s.CPU, s.Err = startCPU(id)
		}
		out = append(out, s)
	}
	return out
}

// cmdlineCPUs is N of the command-line word cpus=N, from 1 to maxCPUs;
// maxCPUs without the word or with a value that is not a number. Pure.
func cmdlineCPUs(cmdline []byte) int {
	for _, w := range fields(cmdline) {
		if len(w) > 5 && string(w[:5]) == "cpus=" {
			n := 0
			for _, b := range w[5:] {
				if b < '0' || b > '9' || n > maxCPUs {
					return maxCPUs
				}
				n = n*10 + int(b-'0')
			}
			return min(max(n, 1), maxCPUs)
		}
	}
	return maxCPUs
}

// startCPU starts the processor with local APIC ID id in the next slot.
func startCPU(id uint32) (int, error) {
	if trampolinePA == 0 {
		return -1, errors.New("no usable page below 1 MiB for the start-up code")
	}
	if kpt.Root >= identityEnd {
		return -1, fmt.Errorf("the kernel's page tables at %#x are beyond the start-up code's 32-bit reach", kpt.Root)
	}
	r, _, _ := syscall.RawSyscall(sysMetalPrepareCPU, uintptr(id), 0, 0)
	if int64(r) < 0 {
		return -1, fmt.Errorf("no slot left of %d", maxCPUs)
	}
	k := int32(r)
	o := &cpus[k]

	// The MP initialization protocol (SDM Vol. 3A 9.4.4.1): INIT, a
	// wait, then a SIPI and another if the first is not answered.
	ipi(id, lapic.ICR_DLV_INIT|1<<lapic.ICR_INIT)
	time.Sleep(apINITWait)
	sipi := lapic.ICR_DLV_SIPI | 1<<lapic.ICR_INIT | int(trampolinePA>>12)
	for try := 0; try < 2; try++ {
		ipi(id, sipi)
		if waitOnline(o, apSIPIWait) {
			return int(k), nil
		}
	}
	if waitOnline(o, apOnlineWait) {
		return int(k), nil
	}
	ipi(id, lapic.ICR_DLV_INIT|1<<lapic.ICR_INIT) // back to wait-for-SIPI: it never runs with this slot
	return -1, fmt.Errorf("did not answer its SIPIs within %v", apOnlineWait)
}

// sysMetalPrepareCPU takes the next CPU slot for the processor with local
// APIC ID a0 and writes the trampoline for it; returns the slot.
const sysMetalPrepareCPU = 0x6d74_0005

// sysPrepareCPUImpl serves startCPU. Kernel stack, interrupts off; must
// not allocate.
func sysPrepareCPUImpl(id uint64) uint64 {
	k := cpuSlots
	if k >= maxCPUs {
		return errno(EAGAIN)
	}
	o := &cpus[k]
	o.index, o.apicID = k, uint32(id)
	o.initEntryState()
	o.buildGDT()
	efer := uint32(x86.EFERLME)
	if hasNX {
		efer |= x86.EFERNXE
	}
	writeTrampoline(physBytes(trampolinePA, pageSize), trampolineData{
		page: uint32(trampolinePA), cr3: uint32(kpt.Root), efer: efer,
		entry: uint64(apEntry64Addr()), cpu: uint64(o.self),
	})
	cpuSlots++
	return uint64(k)
}

// ipi writes the local APIC's ICR: the low word icr (delivery mode, level,
// vector) to the processor with local APIC ID id.
func ipi(id uint32, icr int) {
	f := x86.CLI()
	localAPIC.IPI(int(id), icr&0xff, icr&^0xff)
	x86.RestoreFlags(f)
}

// waitOnline waits up to d for CPU o to come online.
func waitOnline(o *cpu, d time.Duration) bool {
	deadline := nanotime() + d.Nanoseconds()
	for !o.online.Load() {
		if nanotime() >= deadline {
			return false
		}
		time.Sleep(20 * time.Microsecond)
	}
	return true
}

// apMain is an AP's first Go code (from apEntry64), on its kernel stack
// with interrupts off: it loads its descriptor tables, routes SYSCALL,
// enables its local APIC and timer, takes its idle thread and goes
// online, then lets the scheduler give it work: its first interrupt (a
// reschedule IPI when a thread is queued) switches to it. Must not
// allocate; never returns.
func apMain(c *cpu) {
	c.loadDescriptorTables()
	enableSyscall()
	x86.LDMXCSR(x86.MXCSRReset)
	initLocalAPIC()
	c.lockKernel()
	startLocalTimer()
	c.setupIdleThread(c.index)
	c.current = c.idle
	threads[c.idle].state = tsRunning
	*entryFrame() = threads[c.idle].frame
	*entryFX() = threads[c.idle].fx
	c.entryFSBase = 0
	c.sliceStart = nanotime()
	c.online.Store(true)
	unlockKernel()
	resume()
}

// CPUCount is the number of CPUs running threads: the boot CPU and the APs
// StartCPUs started.
func CPUCount() int {
	n := 0
	for k := range cpuSlots {
		if cpus[k].online.Load() {
			n++
		}
	}
	return n
}

// CPUOnline reports whether CPU i runs threads.
func CPUOnline(i int) bool { return i >= 0 && i < int(cpuSlots) && cpus[i].online.Load() }

// CurrentCPU is the index of the CPU running the caller. Without PinThread
// the answer may be stale as soon as it is returned.
func CurrentCPU() int {
	f := x86.CLI()
	i := thisCPU().index
	x86.RestoreFlags(f)
	return int(i)
}

// PinThread binds the calling thread to CPU cpu (-1: any CPU again) and
// returns once it runs there. Meaningful for a goroutine locked to its
// thread (runtime.LockOSThread), such as a VP's, whose VMCS or host save
// area belongs to one CPU.
func PinThread(cpu int) error {
	if cpu != -1 && !CPUOnline(cpu) {
		return fmt.Errorf("metal: pin to CPU %d: not an online CPU (%d online)", cpu, CPUCount())
	}
	if _, _, e := syscall.Syscall(sysMetalPin, uintptr(cpu+1), 0, 0); e != 0 {
		return fmt.Errorf("metal: pin to CPU %d: %w", cpu, e)
	}
	return nil
}

// sysMetalPin binds the current thread: a = 1 + CPU index, 0 for any.
const sysMetalPin = 0x6d74_0003

// sysPinImpl serves PinThread; a is the caller's, checked. If the thread
// runs on another CPU, schedule moves it at the end of the trap. Kernel
// stack, interrupts off; must not allocate.
func sysPinImpl(a uint64) uint64 {
	if a > uint64(cpuSlots) || (a != 0 && !cpus[a-1].online.Load()) {
		return errno(EINVAL)
	}
	t := currentThread()
	t.affinity = int32(a)
	if c := thisCPU(); !t.runsOn(c) {
		c.needResched = true
	}
	return 0
}

// KickCPU interrupts CPU i (a reschedule IPI), unless it is the caller's
// or not online: a thread of it in guest mode exits to the host. For the
// hypervisor, whose VPs on other CPUs must see an interrupt or a TLB flush
// now. Never blocks; must not allocate.
func KickCPU(i int) {
	if !CPUOnline(i) {
		return
	}
	f := x86.CLI()
	if int(thisCPU().index) != i {
		localAPIC.IPI(int(cpus[i].apicID), vecResched, lapic.ICR_DLV_IRQ|1<<lapic.ICR_INIT)
	}
	x86.RestoreFlags(f)
}
