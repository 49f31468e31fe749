package hv

import (
	"fmt"
	"runtime"
	"time"

	"gohv/apic"
	"gohv/apic/ioapic"
	"gohv/x86"
)

// A partition's interrupt controllers: one local APIC per VP and an I/O
// APIC, on an APIC bus that lists the LAPICs. This file is the one place
// where a device, the root or (soon) the SynIC raises an interrupt for a
// partition; the root's own physical interrupts stay metal's.

// Guest-physical addresses and wiring of the interrupt controllers, as on a
// PC (and as a guest's ACPI MADT will describe them).
const (
	IOAPICBase = 0xfec0_0000
	// IOAPICID is the I/O APIC's ID: above every LAPIC's.
	IOAPICID = 0xf
	// COM1IRQ is the I/O APIC pin the emulated COM1 drives (ISA IRQ 4,
	// edge, active high).
	COM1IRQ = 4
	// interruptWindowTop is where the interrupt-controller window ends;
	// partition RAM must stay below IOAPICBase.
	interruptWindowTop = x86.APICDefaultBase + x86.PageSize
)

// newInterruptControllers gives the partition its I/O APIC (routed at
// IOAPICBase); the VPs' LAPICs join its bus as they are made.
func (p *Partition) newInterruptControllers() error {
	p.ioapic = ioapic.New(&p.bus, IOAPICID)
	return p.AddMMIO(IOAPICBase, ioapic.Size, p.ioapic)
}

// newLAPIC makes VP i's local APIC: APIC ID i, VP 0 the BSP, x2APIC and
// the TSC-deadline timer advertised (CPUID follows the model), level EOIs
// to the I/O APIC.
func (p *Partition) newLAPIC(vp *VP) (*apic.LAPIC, error) {
	l, err := apic.New(apic.Config{
		ID:                   uint32(vp.index),
		BSP:                  vp.index == 0,
		X2APIC:               true,
		TSCDeadline:          true,
		SuppressEOIBroadcast: true,
		PhysAddrBits:         p.hv.Model.PhysAddrBits(),
		TimerHz:              LAPICTimerHz,
		Clock:                guestClock{p.hv.Host},
		Bus:                  &p.bus,
		Sink:                 vp,
		EOI:                  p.ioapic,
	})
	if err != nil {
		return nil, fmt.Errorf("vp %d: local APIC: %w", vp.index, err)
	}
	p.bus.Add(l)
	return l, nil
}

// SetIRQ drives I/O APIC pin (a GSI) to asserted or not. Safe from any
// goroutine; a pin outside 0-23 is ignored.
func (p *Partition) SetIRQ(pin int, asserted bool) { p.ioapic.SetIRQ(pin, asserted) }

// SignalMSI delivers a message-signalled interrupt: the address and data a
// device writes (SDM Vol. 3A 11.11). A write that is not a valid MSI is
// dropped and reported. Safe from any goroutine.
func (p *Partition) SignalMSI(addr uint64, data uint32) error {
	m, ok := apic.DecodeMSI(addr, data)
	if !ok {
		return fmt.Errorf("hv: partition %s: MSI address %#x data %#x is not a valid message", p.Name, addr, data)
	}
	apic.Deliver(&p.bus, m)
	return nil
}

// Interrupt sends fixed interrupt vector to this VP's local APIC, as a
// device's MSI addressed to it would: the guest takes it once its LAPIC is
// software-enabled and RFLAGS.IF, the TPR and the interrupts in service
// allow. Safe from any goroutine.
func (vp *VP) Interrupt(vector uint8) {
	apic.Deliver(&vp.p.bus, apic.Message{Vector: vector, Mode: apic.DeliveryFixed, Dest: vp.lapic.ID(), X2APIC: true})
}

// LAPIC is the VP's local APIC (for reports and checks).
func (vp *VP) LAPIC() *apic.LAPIC { return vp.lapic }

// IOAPIC is the partition's I/O APIC (for reports and checks).
func (p *Partition) IOAPIC() *ioapic.IOAPIC { return p.ioapic }

// Kick is the LAPIC's apic.Sink: the VP has something to act on. A halted
// VP is woken; one in guest mode on another host CPU is made to exit by
// an interrupt to that CPU, and takes the interrupt at its next entry.
// One whose thread is between its delivery check and the entry does not
// enter (vcpu.ExitRequester) and looks again; with a backend that cannot
// call an entry off it would take the interrupt at its next exit, within
// its time slice. Never blocks; any goroutine.
func (vp *VP) Kick() {
	// The request first: a halted VP woken by the wake clears it before
	// its next look at the LAPIC, so its entry is not called off for
	// nothing, and it is not in guest mode, so no host interrupt is sent.
	vp.requestExit()
	vp.waiter.wake()
}

// requestExit makes a VP in guest mode, or on its way in, leave it: the
// backend's entry is called off (vcpu.ExitRequester) and the host CPU
// the VP runs on gets an interrupt, which makes it exit if it has
// entered. Never blocks; any goroutine; must not allocate.
func (vp *VP) requestExit() {
	if vp.exitReq != nil {
		vp.exitReq.RequestExit()
	}
	if vp.inRun.Load() {
		if c := vp.hostCPU.Load(); c >= 0 {
			vp.p.hv.Host.KickCPU(int(c))
		}
	}
}

// syncExit returns once vp has left guest mode at least once since the
// call (or is not in it): kicked out through its host CPU. The caller has
// asked vp for something its next entry does (a TLB flush), and the TLFS
// wants it done when the hypercall returns. caller is the VP asking: a VP
// on the caller's own host CPU cannot be in guest mode now. The wait
// spins for syncSpin first: the kick's IPI makes vp exit within
// microseconds, and a yield on the caller's locked thread is a hand-off
// through another thread of the Go runtime that costs far more. Must not
// allocate.
func (vp *VP) syncExit(caller *VP) {
	c := vp.hostCPU.Load()
	if vp == caller || c < 0 || c == caller.hostCPU.Load() || !vp.inRun.Load() {
		return
	}
	seq := vp.runs.Load()
	host := vp.p.hv.Host
	vp.requestExit() // an entry on its way is called off, one made is interrupted
	spinUntil := host.Nanotime() + int64(syncSpin)
	for vp.inRun.Load() && vp.runs.Load() == seq {
		if host.Nanotime() < spinUntil {
			x86.Pause()
			continue
		}
		runtime.Gosched()
	}
}

// syncSpin is how long syncExit spins for its target's exit before it
// yields between looks: the longest an IPI and a #VMEXIT take, with room.
const syncSpin = 200 * time.Microsecond
