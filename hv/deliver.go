package hv

import (
	"time"

	"gohv/apic"
	"gohv/hv/vcpu"
	"gohv/x86"
)

// deliver prepares the next entry from the VP's local APIC: it acts on
// INIT, SIPI and NMI, keeps CR8 and the TPR in step, and injects the
// highest deliverable vector when the guest can take an external interrupt
// (else asks for an interrupt-window exit). It returns false while the VP
// waits for a SIPI and must not enter the guest. VP thread; must not
// allocate.
func (vp *VP) deliver() bool {
	l, r := vp.lapic, vp.regs
	vp.syncCR8() // a CR8 write the core emulated (VMX without a TPR shadow)
	if l.Idle() && !vp.nmiPending && !vp.waitSIPI {
		// The common case: nothing for the guest. No LAPIC lock taken,
		// and no backend call unless something was asked since the last
		// time (a backend clears a window request itself, never sets one).
		if vp.asked {
			vp.cpu.RequestInterruptWindow(false)
			vp.cpu.SetTPRThreshold(0)
			vp.asked = false
		}
		return true
	}
	vp.asked = true
	// Where the guest may lower CR8 without an exit, the backend must exit
	// when it goes below what the TPR holds back.
	vp.cpu.SetTPRThreshold(l.TPRThreshold())
	if ev := l.TakeEvents(); ev != (apic.Events{}) {
		vp.events(ev)
	}
	if vp.waitSIPI {
		return false
	}
	if vp.cpu.EventPending() {
		// An event whose delivery an exit cut short goes first; ask to
		// come back once it is in.
		_, more := l.PendingVector()
		vp.cpu.RequestInterruptWindow(more || vp.nmiPending)
		return true
	}
	canTake := r.RFLAGS&x86.RFLAGSIF != 0 && !vp.cpu.InterruptShadow()
	if vp.nmiPending {
		// NMIs ignore IF; they wait only for the shadow. Blocking by NMI
		// until the handler's IRET is not modelled: a second NMI during the
		// handler is delivered at once.
		if !vp.cpu.InterruptShadow() {
			vp.cpu.Inject(vcpu.Event{Vector: x86.VectorNMI, Type: vcpu.EventNMI})
			vp.nmiPending = false
			vp.Injected++
			_, more := l.PendingVector()
			vp.cpu.RequestInterruptWindow(more)
			return true
		}
		vp.cpu.RequestInterruptWindow(true)
		return true
	}
	if _, ok := l.PendingVector(); !ok {
		vp.cpu.RequestInterruptWindow(false)
		return true
	}
	if !canTake {
		vp.cpu.RequestInterruptWindow(true)
		return true
	}
	if v, ok := l.Ack(); ok {
		vp.haltFirst()
		vp.cpu.Inject(vcpu.Event{Vector: v, Type: vcpu.EventExternal})
		vp.Injected++
		if l.AutoEOI(v) {
			vp.synic.EOI(v) // an auto-EOI SINT vector is retired as it is delivered
		}
	}
	vp.cpu.RequestInterruptWindow(false)
	return true
}

// noteShadow remembers where exit e found the guest inside an STI or MOV
// SS interrupt shadow (e.Shadow), until the guest moves on. VP thread;
// runs on every exit, so it must not allocate.
func (vp *VP) noteShadow(e *vcpu.Exit) {
	rip := vp.regs.RIP
	switch {
	case e.Shadow:
		vp.shadowRIP, vp.shadowSeen = rip, true
	case vp.shadowSeen && rip != vp.shadowRIP:
		vp.shadowSeen = false
	}
}

// haltFirst runs before an external interrupt is injected. If an exit
// found the guest in an interrupt shadow at this very RIP (the STI of the
// idiom "sti; hlt" executed, the HLT not yet), the shadow was lost on the
// way back into the guest, and the instruction there is HLT, it moves RIP
// past the HLT: the HLT ran and this interrupt woke it, which is what the
// processor does with an interrupt that arrives in the shadow. Injecting
// before the HLT instead would return from the handler onto it, and a
// guest that had checked for work with interrupts off would sleep with
// the work already there. QEMU 7.2's TCG loses the shadow this way: an
// external-interrupt exit in the shadow records it in the VMCB, but VMRUN
// does not restore it, so the pending virtual interrupt is taken before
// the HLT. On processors that keep the shadow this never matches (the HLT
// exit moves RIP). VP thread; must not allocate.
func (vp *VP) haltFirst() {
	r := vp.regs
	if !vp.shadowSeen || r.RIP != vp.shadowRIP || vp.cpu.InterruptShadow() {
		return
	}
	vp.shadowSeen = false
	vp.prepare()
	if !vp.fetchAt(1) || vp.fetch[0] != opHLT.b[0] {
		return
	}
	r.RIP++
	if r.CS.Attrib&x86.SegL == 0 {
		r.RIP &= 0xffff_ffff
	}
	vp.HaltsSkipped++
}

// events acts on what the LAPIC reports besides maskable vectors: INIT
// puts the VP in the INIT state (and an application processor in
// wait-for-SIPI), a SIPI starts a waiting VP in real mode at the vector's
// page, an NMI is latched until the guest can take it. VP thread.
func (vp *VP) events(ev apic.Events) {
	if ev.INIT {
		// SDM Vol. 3A 9.1.1: INIT gives the RESET state except for
		// the caches, MTRRs, FPU and a few MSRs, which gohv's model
		// does not carry.
		vp.SetState(vcpu.ResetRegs())
		vp.cpu.DropEvents()
		vp.synic.Reset()
		vp.cr8, vp.nmiPending = 0, false
		vp.waitSIPI = ev.WaitForSIPI
		vp.apicMoved() // the INIT reset put the page back at its default
	}
	if ev.SIPI && vp.waitSIPI {
		r := vcpu.ResetRegs()
		r.CS.Selector = uint16(ev.SIPIVector) << 8
		r.CS.Base = uint64(ev.SIPIVector) << 12
		r.RIP = 0
		vp.SetState(r)
		vp.waitSIPI = false
	}
	if ev.NMI {
		vp.nmiPending = true
	}
}

// apicMoved refreshes where this VP's APIC page answers: at
// IA32_APIC_BASE, whatever the mode. In xAPIC mode it is the register
// page; in x2APIC mode or with the APIC disabled the SDM takes the page
// away from the APIC, and gohv answers there as a bus with nothing on it
// would (the LAPIC model reads all ones and drops writes) rather than
// ending the partition. The base and the mode change only through a WRMSR
// the core handles or an INIT, so the MMIO path needs no LAPIC lock.
func (vp *VP) apicMoved() {
	vp.apicEnabled = vp.lapic.Mode() != apic.ModeDisabled
	vp.apicPage = mmioRange{vp.lapic.Base() & x86.APICBaseAddrMask, x86.PageSize, vp.lapic}
}

// syncCR8 takes a CR8 the guest wrote without an exit (SVM's V_TPR,
// VMX's TPR shadow) to the LAPIC's TPR. It runs first after every exit,
// before anything reads or writes the TPR. VP thread; must not allocate.
func (vp *VP) syncCR8() {
	if vp.regs.CR8 != vp.cr8 {
		vp.cr8ToTPR()
	}
}

// cr8ToTPR is syncCR8's work, when CR8 changed.
func (vp *VP) cr8ToTPR() {
	vp.lapic.SetTPR(uint8(vp.regs.CR8 << 4))
	vp.cr8 = vp.regs.CR8
}

// tprChanged brings CR8 in step after the guest may have written the TPR
// through the APIC page or MSR.
func (vp *VP) tprChanged() {
	vp.cr8 = uint64(vp.lapic.TPR() >> 4)
	vp.regs.CR8 = vp.cr8
}

// startable reports whether a VP in wait-for-SIPI has a SIPI (or another
// INIT) to act on.
func (vp *VP) startable() bool { return !vp.waitSIPI }

// halt sleeps the VP's thread after HLT until it has something to take:
// a deliverable vector with RFLAGS.IF set, an NMI, INIT or SIPI; or the
// partition stops. With IF clear and nothing else coming this is a sleep
// until Stop.
func (vp *VP) halt() {
	r := vp.regs
	vp.sleepHalted(func() bool {
		if vp.nmiPending || vp.waitSIPI {
			return true
		}
		_, ok := vp.lapic.PendingVector()
		return ok && r.RFLAGS&x86.RFLAGSIF != 0
	})
}

// guestIdle is a read of HV_X64_MSR_GUEST_IDLE: the VP idles until an
// interrupt is requested of it, whatever RFLAGS.IF says — a vector in
// IRR (an IPI, its timer), an NMI, INIT or SIPI — or the partition stops.
// Linux's PV spinlocks (hv_qlock_wait) read it with interrupts off while
// the lock they wait for is held, and the holder's unlock sends them an
// IPI (hv_qlock_kick): the waiter gives its host CPU up instead of
// spinning, which a holder sharing that CPU needs to run at all. A vector
// already in IRR ends the idle at once. The guest takes the interrupt
// when it sets IF again. VP thread.
func (vp *VP) guestIdle() {
	vp.GuestIdles++
	vp.sleepHalted(func() bool { return vp.nmiPending || vp.waitSIPI || !vp.lapic.Idle() })
}

// sleepHalted is sleep for a guest that stopped itself (HLT, GUEST_IDLE):
// the time counts as halted (VP runtime leaves it out) and the VP takes
// a new slice when it runs again.
func (vp *VP) sleepHalted(ready func() bool) {
	t0 := vp.p.hv.Host.Nanotime()
	vp.sleep(ready)
	vp.haltedNanos += vp.p.hv.Host.Nanotime() - t0
	vp.newSlice()
}

// sleep blocks until ready reports true (checked after each LAPIC kick and
// after acting on the LAPIC's events), an INIT or SIPI changes the VP's
// state, or the partition stops.
func (vp *VP) sleep(ready func() bool) {
	vp.setBusy(false)
	defer vp.setBusy(true)
	for !vp.p.stopping.Load() {
		if ev := vp.lapic.TakeEvents(); ev != (apic.Events{}) {
			vp.events(ev)
			if ev.INIT || ev.SIPI {
				return
			}
		}
		if ready() {
			return
		}
		vp.HLTSleeps++
		// Sleep until kicked, or until the LAPIC timer's deadline, which
		// the VP then processes itself (not waiting for the timer's
		// callback, which rides the Go runtime's millisecond timers).
		var d time.Duration
		if at := vp.nextDeadline(); at != 0 {
			d = time.Duration(max(at-vp.p.hv.Host.Nanotime(), 1))
		}
		if !vp.waiter.wait(d) {
			vp.pollTimers()
		}
	}
}
