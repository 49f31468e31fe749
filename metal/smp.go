package metal

import (
	"sync/atomic"

	"github.com/usbarmory/tamago/amd64/lapic"

	"gohv/x86"
)

// Several processors: the kernel lock, the IPIs the CPUs send each other,
// TLB shootdowns, and starting the application processors (APs).
//
// Kernel code runs on any CPU, one CPU at a time: every trap takes the
// kernel lock after its entry and gives it back before its return; the
// exported functions that change kernel state do it through system calls
// of metal's own (AllocPage, PinThread, SetAlarm, StartCPUs). A CPU that waits for the lock spins with interrupts off,
// answering shootdown requests meanwhile, which is what lets the CPU that
// holds it wait for every other CPU's TLB flush. The one trap that does not
// take the lock is the shootdown IPI itself.

// Vectors of the IPIs metal sends between its CPUs.
const (
	vecResched   = 0x21 // look at the run queue: a thread was queued for this CPU, or it is idle and work arrived
	vecShootdown = 0x22 // flush the TLB: the kernel's page tables lost a mapping
)

// klock is the kernel lock: a test-and-set lock on the holder's CPU
// (1 + its index; 0: free). Not a ticket lock: under an emulator whose
// virtual CPUs outnumber the host's cores (QEMU TCG -smp 4 on 2 cores,
// and every vCPU in one thread under -icount), the CPU whose ticket comes
// next is often not running, and every other CPU waited for it: selftest
// took minutes instead of seconds. Kernel code holds it for microseconds.
var klock struct {
	owner atomic.Int32
}

// cpuSlots is how many of cpus have been handed out: the boot CPU's and one
// for every AP StartCPUs tried (an AP that did not answer keeps its slot,
// never online). Written under the kernel lock; the loops over the CPUs
// stop here and skip those not online.
var cpuSlots int32 = 1

// lockKernel takes the kernel lock on CPU c (this CPU), interrupts off.
// Only kernel code takes it (a trap's, on the kernel stack): exported
// functions change kernel state through metal's system calls instead,
// since Go code on a goroutine's stack may fault or grow its stack, which
// takes the runtime's locks and so makes system calls.
//
//go:nosplit
func (c *cpu) lockKernel() {
	if klock.owner.Load() == c.index+1 {
		fatal("kernel lock: taken again by the CPU that holds it")
	}
	for klock.owner.Load() != 0 || !klock.owner.CompareAndSwap(0, c.index+1) {
		c.serviceShootdown()
		x86.Pause()
	}
}

// unlockKernel gives the kernel lock back.
//
//go:nosplit
func unlockKernel() {
	c := thisCPU()
	if klock.owner.Load() != c.index+1 {
		fatal("kernel lock: released by a CPU that does not hold it")
	}
	klock.owner.Store(0)
}

// hostIPIs counts the IPIs the host tests would have sent, by vector.
var hostIPIs [256]uint64

// sendIPI sends a fixed interrupt of vector vec to CPU o. Interrupts off.
func sendIPI(o *cpu, vec uint8) {
	ipisSent++
	if hostTest {
		hostIPIs[vec]++
		return
	}
	localAPIC.IPI(int(o.apicID), int(vec), lapic.ICR_DLV_IRQ|1<<lapic.ICR_INIT) // fixed, edge, level asserted
}

// sendResched sends CPU o a reschedule IPI unless one is on its way.
func sendResched(o *cpu) {
	if o.kicked {
		return
	}
	o.kicked = true
	sendIPI(o, vecResched)
}

var (
	ipisSent   uint64
	shootdowns uint64
)

// shootdown makes every other online CPU flush its TLB and waits until each
// has: the kernel's page tables lost mappings (releaseFrames), and their
// frames may not be reused while any CPU could still reach them through a
// cached translation. Runs with the kernel lock held and interrupts off.
// The CPUs it waits for take the IPI, or answer while they wait for the
// lock (lockKernel); one in guest mode exits on the interrupt.
func shootdown() {
	if cpuSlots == 1 {
		return
	}
	c := thisCPU()
	sent := false
	for k := range cpuSlots {
		if o := &cpus[k]; o != c && o.online.Load() {
			o.shootdownReq.Store(true)
			sendIPI(o, vecShootdown)
			sent = true
		}
	}
	if !sent {
		return
	}
	shootdowns++
	for k := range cpuSlots {
		o := &cpus[k]
		for o.shootdownReq.Load() && !hostTest {
			x86.Pause()
		}
	}
}

// serviceShootdown flushes this CPU's TLB if another CPU asked it to (the
// kernel's mappings are not global: a CR3 reload drops every one).
//
//go:nosplit
func (c *cpu) serviceShootdown() {
	if c.shootdownReq.Load() {
		if !hostTest {
			x86.WriteCR3(x86.ReadCR3())
		}
		c.shootdownReq.Store(false)
	}
}
