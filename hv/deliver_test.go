package hv

import (
	"encoding/binary"
	"testing"
	"time"

	"gohv/apic"
	"gohv/hv/vcpu"
	"gohv/x86"
)

// Local APIC register offsets in the xAPIC page (SDM Vol. 3A Table 11-1).
const (
	regTPR      = 0x80
	regEOI      = 0xb0
	regSVR      = 0xf0
	regLVTTimer = 0x320
	regTimerICR = 0x380
	regTimerDCR = 0x3e0
)

func apicWrite(t *testing.T, vp *VP, off uint64, v uint32) {
	t.Helper()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	vp.view.vp = vp
	if err := vp.view.Write(x86.APICDefaultBase+off, b[:]); err != nil {
		t.Fatal(err)
	}
}

func apicRead(t *testing.T, vp *VP, off uint64) uint32 {
	t.Helper()
	var b [4]byte
	vp.view.vp = vp
	if err := vp.view.Read(x86.APICDefaultBase+off, b[:]); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint32(b[:])
}

// enabledVP is a partition whose VP 0 has its LAPIC software-enabled.
func enabledVP(t *testing.T) (*Partition, *VP, *fakeVCPU, *testHost) {
	p, v, host, _ := newTestPartition(t, 1<<20)
	vp := p.VP(0)
	apicWrite(t, vp, regSVR, 0x1ff) // enable, spurious vector 0xff
	v.regs.RFLAGS = x86.RFLAGSIF
	return p, vp, v, host
}

// TestDeliveryFollowsPriority: IF and the shadow hold external interrupts
// back; the higher class goes first and blocks the lower until its EOI
// (SDM Vol. 3A 11.8.3).
func TestDeliveryFollowsPriority(t *testing.T) {
	_, vp, v, _ := enabledVP(t)
	vp.Interrupt(0x30)
	vp.Interrupt(0x40)
	v.regs.RFLAGS = 0
	vp.deliver()
	if !v.window || len(v.injected) != 0 {
		t.Fatalf("IF=0: window %v injected %v", v.window, v.injected)
	}
	v.regs.RFLAGS = x86.RFLAGSIF
	v.shadow = true
	vp.deliver()
	if len(v.injected) != 0 || !v.window {
		t.Fatal("injected in an interrupt shadow")
	}
	v.shadow = false
	vp.deliver()
	vp.deliver() // 0x30 is below the in-service 0x40's class
	if len(v.injected) != 1 || v.injected[0].Vector != 0x40 || v.injected[0].Type != vcpu.EventExternal || v.window {
		t.Fatalf("injected %+v window %v", v.injected, v.window)
	}
	apicWrite(t, vp, regEOI, 0)
	vp.deliver()
	if len(v.injected) != 2 || v.injected[1].Vector != 0x30 {
		t.Fatalf("after EOI: injected %+v", v.injected)
	}
}

// TestPendingEventGoesFirst: while the backend re-injects an event an exit
// cut short, the core takes no other vector (it would be lost, and the
// first one sits in ISR already).
func TestPendingEventGoesFirst(t *testing.T) {
	_, vp, v, _ := enabledVP(t)
	v.pending = true
	vp.Interrupt(0x50)
	vp.deliver()
	if len(v.injected) != 0 || !v.window {
		t.Fatalf("injected %+v over a pending event; window %v", v.injected, v.window)
	}
	v.pending = false
	vp.deliver()
	if len(v.injected) != 1 || v.injected[0].Vector != 0x50 {
		t.Fatalf("%+v", v.injected)
	}
}

// TestNMIWaitsOnlyForTheShadow: an NMI ignores IF but not an STI/MOV SS
// shadow.
func TestNMIWaitsOnlyForTheShadow(t *testing.T) {
	p, vp, v, _ := enabledVP(t)
	v.regs.RFLAGS = 0
	v.shadow = true
	apic.Deliver(&p.bus, apic.Message{Mode: apic.DeliveryNMI, Dest: 0})
	vp.deliver()
	if len(v.injected) != 0 || !v.window || !vp.nmiPending {
		t.Fatalf("in a shadow: injected %+v window %v", v.injected, v.window)
	}
	v.shadow = false
	vp.deliver()
	if len(v.injected) != 1 || v.injected[0].Type != vcpu.EventNMI || v.injected[0].Vector != x86.VectorNMI || vp.nmiPending {
		t.Fatalf("%+v", v.injected)
	}
}

// TestINITAndSIPI: INIT puts an application processor in wait-for-SIPI,
// where the VP does not enter the guest; a SIPI starts it in real mode at
// the vector's page (SDM Vol. 3A 9.4.4).
func TestINITAndSIPI(t *testing.T) {
	_, vp, v, _ := enabledVP(t)
	v.regs.RIP, v.regs.CR0 = 0x1234, x86.CR0PE
	vp.events(apic.Events{INIT: true, WaitForSIPI: true})
	if vp.deliver() {
		t.Fatal("a VP in wait-for-SIPI would enter the guest")
	}
	if v.regs.CR0 != vcpu.ResetRegs().CR0 || v.regs.RIP != 0xfff0 {
		t.Fatalf("INIT state: CR0 %#x RIP %#x", v.regs.CR0, v.regs.RIP)
	}
	vp.events(apic.Events{SIPI: true, SIPIVector: 0x9a})
	if !vp.deliver() || v.regs.CS.Selector != 0x9a00 || v.regs.CS.Base != 0x9a000 || v.regs.RIP != 0 {
		t.Fatalf("after SIPI: CS %#x base %#x RIP %#x", v.regs.CS.Selector, v.regs.CS.Base, v.regs.RIP)
	}
	// The BSP's INIT restarts it at the reset vector without a SIPI, and
	// what waited for the next entry (here an interrupt an exit had
	// preempted) is not delivered into the reset state.
	v.pending = true
	vp.events(apic.Events{INIT: true})
	if v.pending {
		t.Fatal("an event pending before INIT survived it")
	}
	if !vp.deliver() || v.regs.RIP != 0xfff0 || v.regs.CS.Base != 0xffff_0000 {
		t.Fatalf("BSP INIT: CS base %#x RIP %#x", v.regs.CS.Base, v.regs.RIP)
	}
}

// TestCR8IsTheTPR: a guest's CR8 write reaches the LAPIC's TPR and masks
// lower classes; a TPR write through the page reaches CR8.
func TestCR8IsTheTPR(t *testing.T) {
	_, vp, v, _ := enabledVP(t)
	v.regs.CR8 = 5 // as the backend stores it after a guest MOV to CR8
	// An APIC MSR exit right after the CR8 write must see the new TPR,
	// not put the old one back into CR8.
	v.regs.GPR[x86.RCX] = x86.MsrAPICBase
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitMSRRead, InstrLen: 2})
	if v.regs.CR8 != 5 || vp.lapic.TPR() != 0x50 {
		t.Fatalf("after an MSR exit: CR8 %d TPR %#x", v.regs.CR8, vp.lapic.TPR())
	}
	vp.Interrupt(0x45)
	vp.deliver()
	if got := vp.lapic.TPR(); got != 0x50 || len(v.injected) != 0 || v.threshold != 4 {
		t.Fatalf("TPR %#x, injected %+v, threshold %d: class 4 must wait below TPR 5, and the backend exit below 4", got, v.injected, v.threshold)
	}
	apicWrite(t, vp, regTPR, 0x30)
	if v.regs.CR8 != 3 {
		t.Fatalf("CR8 %d after a TPR write of 0x30", v.regs.CR8)
	}
	vp.deliver()
	if len(v.injected) != 1 || v.injected[0].Vector != 0x45 || v.threshold != 0 {
		t.Fatalf("%+v threshold %d", v.injected, v.threshold)
	}
}

// TestAPICMSRs: IA32_APIC_BASE and the x2APIC registers are served by the
// VP's LAPIC; an illegal write raises #GP; CPUID.1:EDX.APIC follows the
// global enable.
func TestAPICMSRs(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	vp := p.VP(0)
	v.regs.GPR[x86.RCX] = x86.MsrAPICBase
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitMSRRead, InstrLen: 2})
	if got := v.regs.GPR[x86.RAX]; got != x86.APICDefaultBase|x86.APICBaseEnable|x86.APICBaseBSP {
		t.Fatalf("IA32_APIC_BASE %#x", got)
	}
	// EXTD without EN is an illegal transition.
	v.regs.GPR[x86.RCX], v.regs.GPR[x86.RAX], v.regs.GPR[x86.RDX] = x86.MsrAPICBase, x86.APICDefaultBase|x86.APICBaseEXTD, 0
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitMSRWrite, InstrLen: 2})
	if n := len(v.injected); n != 1 || v.injected[0].Vector != x86.VectorGP {
		t.Fatalf("illegal IA32_APIC_BASE write: %+v", v.injected)
	}
	// Disabling the APIC hides it from CPUID and the page from MMIO.
	v.regs.GPR[x86.RAX] = x86.APICDefaultBase | x86.APICBaseBSP
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitMSRWrite, InstrLen: 2})
	v.regs.GPR[x86.RAX], v.regs.GPR[x86.RCX] = 1, 0
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2})
	if v.regs.GPR[x86.RDX]&x86.CPUID1EDXAPIC != 0 {
		t.Fatal("CPUID shows a disabled APIC")
	}
	var b [4]byte
	if err := vp.view.Read(x86.APICDefaultBase+0x30, b[:]); err != nil || b != [4]byte{0xff, 0xff, 0xff, 0xff} {
		t.Fatalf("the page of a disabled APIC: % x %v, want all ones", b, err)
	}
	// x2APIC: enable, then EXTD; the ID register reads the VP index.
	v.regs.GPR[x86.RCX], v.regs.GPR[x86.RAX], v.regs.GPR[x86.RDX] = x86.MsrAPICBase, x86.APICDefaultBase|x86.APICBaseEnable|x86.APICBaseBSP, 0
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitMSRWrite, InstrLen: 2})
	v.regs.GPR[x86.RAX] |= x86.APICBaseEXTD
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitMSRWrite, InstrLen: 2})
	v.regs.GPR[x86.RCX] = x86.MsrX2APICBase + 2 // ID
	v.regs.GPR[x86.RAX] = 0xdead
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitMSRRead, InstrLen: 2})
	if v.regs.GPR[x86.RAX] != 0 || len(v.injected) != 1 {
		t.Fatalf("x2APIC ID %#x, injected %+v", v.regs.GPR[x86.RAX], v.injected)
	}
	if err := vp.view.Read(x86.APICDefaultBase+0x30, b[:]); vp.lapic.Mode() != apic.ModeX2APIC || err != nil || b != [4]byte{0xff, 0xff, 0xff, 0xff} {
		t.Fatalf("mode %v; the page in x2APIC mode reads % x %v, want all ones", vp.lapic.Mode(), b, err)
	}
}

// TestAPICPageMovesWithTheBase: the page follows IA32_APIC_BASE; where RAM
// is, RAM wins (accesses to RAM never exit); the I/O APIC stays at its
// address.
func TestAPICPageMovesWithTheBase(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	vp := p.VP(0)
	if r := vp.mmioAt(x86.APICDefaultBase + 0x30); r == nil || r.dev != MMIODevice(vp.lapic) {
		t.Fatal("no APIC page at the default base")
	}
	if r := vp.mmioAt(IOAPICBase + 0x10); r == nil || r.dev != MMIODevice(p.ioapic) {
		t.Fatal("no I/O APIC")
	}
	const moved = 0xd000_0000
	v.regs.GPR[x86.RCX], v.regs.GPR[x86.RAX] = x86.MsrAPICBase, moved|x86.APICBaseEnable|x86.APICBaseBSP
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitMSRWrite, InstrLen: 2})
	if r := vp.mmioAt(x86.APICDefaultBase); r != nil && r.dev == MMIODevice(vp.lapic) || vp.mmioAt(moved+0x20) == nil {
		t.Fatal("the page did not move")
	}
	if r := vp.mmioAt(0x8000); r != nil {
		t.Fatal("an MMIO device over RAM")
	}
}

// TestHaltWakesForTheTimer: a VP halted with IF set sleeps until its
// LAPIC timer expires and the interrupt is deliverable.
func TestHaltWakesForTheTimer(t *testing.T) {
	_, vp, v, host := enabledVP(t)
	apicWrite(t, vp, regTimerDCR, 0xb) // divide by 1
	apicWrite(t, vp, regLVTTimer, 0x61)
	apicWrite(t, vp, regTimerICR, 1000) // 1 µs at 1 GHz
	host.now.Add(2000)                  // the clock passes the deadline; the runtime timer fires at once
	done := make(chan struct{})
	go func() { vp.halt(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the timer did not end the HLT")
	}
	vp.deliver()
	if len(v.injected) != 1 || v.injected[0].Vector != 0x61 {
		t.Fatalf("%+v", v.injected)
	}
}

// TestCOM1InterruptThroughTheIOAPIC: the UART's transmitter-empty
// interrupt, with OUT2, raises I/O APIC pin 4, which sends its vector.
func TestCOM1InterruptThroughTheIOAPIC(t *testing.T) {
	p, vp, v, _ := enabledVP(t)
	const ioregsel, iowin = IOAPICBase, IOAPICBase + 0x10
	vp.view.vp = vp
	for _, w := range []struct{ at, v uint32 }{{ioregsel, 0x10 + 2*COM1IRQ}, {iowin, 0x44}, {ioregsel, 0x11 + 2*COM1IRQ}, {iowin, 0}} {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], w.v)
		if err := vp.view.Write(uint64(w.at), b[:]); err != nil {
			t.Fatal(err)
		}
	}
	uart := p.portDevice(0x3f8)
	uart.Out(0x3f9, 1, 0x02) // IER: THR empty
	if _, ok := vp.lapic.PendingVector(); ok {
		t.Fatal("interrupt without OUT2")
	}
	uart.Out(0x3fc, 1, 0x08) // MCR: OUT2
	vp.deliver()
	if len(v.injected) != 1 || v.injected[0].Vector != 0x44 {
		t.Fatalf("%+v", v.injected)
	}
	if iir := uart.In(0x3fa, 1); iir&0x0f != 0x02 {
		t.Fatalf("IIR %#x, want THRE", iir)
	}
	if iir := uart.In(0x3fa, 1); iir&0x01 == 0 {
		t.Fatalf("IIR %#x after it was read: want no interrupt", iir)
	}
}

// TestCOM1Receive: typed bytes wait in the FIFO with LSR.DR set, raise
// the received-data interrupt (above THRE in IIR), and an overflow is an
// overrun reported once by LSR.
func TestCOM1Receive(t *testing.T) {
	p, vp, v, _ := enabledVP(t)
	vp.view.vp = vp
	for _, w := range []struct{ at, v uint32 }{{IOAPICBase, 0x10 + 2*COM1IRQ}, {IOAPICBase + 0x10, 0x45}} {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], w.v)
		vp.view.Write(uint64(w.at), b[:])
	}
	uart := p.portDevice(0x3f8).(*UART)
	uart.Out(0x3f9, 1, 0x01) // IER: received data
	uart.Out(0x3fc, 1, 0x08) // OUT2
	if n := uart.Receive([]byte("ls\n")); n != 3 {
		t.Fatalf("queued %d", n)
	}
	vp.deliver()
	if len(v.injected) != 1 || v.injected[0].Vector != 0x45 {
		t.Fatalf("%+v", v.injected)
	}
	if iir := uart.In(0x3fa, 1); iir&0x0f != 0x04 {
		t.Fatalf("IIR %#x, want received data", iir)
	}
	var got []byte
	for uart.In(0x3fd, 1)&0x01 != 0 {
		got = append(got, byte(uart.In(0x3f8, 1)))
	}
	if string(got) != "ls\n" || uart.In(0x3fa, 1)&0x01 == 0 {
		t.Fatalf("read %q; IIR after draining %#x", got, uart.In(0x3fa, 1))
	}
	big := make([]byte, rxFIFOSize+10)
	if n := uart.Receive(big); n != rxFIFOSize {
		t.Fatalf("queued %d of %d", n, len(big))
	}
	if lsr := uart.In(0x3fd, 1); lsr&0x02 == 0 {
		t.Fatalf("LSR %#x: no overrun", lsr)
	}
	if lsr := uart.In(0x3fd, 1); lsr&0x02 != 0 {
		t.Fatal("overrun reported twice")
	}
}

// TestInterruptInLostShadowCompletesHLT: an exit found the guest between
// the STI and the HLT of "sti; hlt", and the backend lost the shadow on
// the way back (QEMU 7.2's VMRUN): the interrupt is injected after the
// HLT, as if the HLT had run and this interrupt woken it. Anywhere else,
// or with the shadow still there, RIP is left alone.
func TestInterruptInLostShadowCompletesHLT(t *testing.T) {
	p, vp, v, _ := enabledVP(t)
	const at = 0x1000
	if err := p.Mem.WriteRAM(at, []byte{0xf4, 0x90}); err != nil {
		t.Fatal(err)
	}
	v.regs.CR0 &^= x86.CR0PG
	v.regs.CS.Base, v.regs.CS.Attrib = 0, v.regs.CS.Attrib&^x86.SegL
	v.regs.RIP = at

	// The shadow reported at the HLT, then gone at the same RIP.
	v.shadow = true
	vp.noteShadow(&vcpu.Exit{Shadow: v.shadow})
	vp.Interrupt(0x30)
	vp.deliver()
	if len(v.injected) != 0 {
		t.Fatal("injected in the shadow")
	}
	v.shadow = false
	vp.noteShadow(&vcpu.Exit{Shadow: v.shadow})
	vp.deliver()
	if len(v.injected) != 1 || v.regs.RIP != at+1 || vp.HaltsSkipped != 1 {
		t.Fatalf("lost shadow at a HLT: injected %+v at RIP %#x, %d skipped", v.injected, v.regs.RIP, vp.HaltsSkipped)
	}
	apicWrite(t, vp, regEOI, 0)

	// Without a shadow seen there, an interrupt before a HLT is taken
	// before it, as the processor does.
	v.regs.RIP = at
	vp.noteShadow(&vcpu.Exit{Shadow: v.shadow})
	vp.Interrupt(0x31)
	vp.deliver()
	if len(v.injected) != 2 || v.regs.RIP != at {
		t.Fatalf("no shadow seen: injected %+v at RIP %#x", v.injected, v.regs.RIP)
	}
	apicWrite(t, vp, regEOI, 0)

	// A lost shadow before anything but HLT leaves RIP alone.
	v.regs.RIP = at + 1
	v.shadow = true
	vp.noteShadow(&vcpu.Exit{Shadow: v.shadow})
	v.shadow = false
	vp.noteShadow(&vcpu.Exit{Shadow: v.shadow})
	vp.Interrupt(0x32)
	vp.deliver()
	if len(v.injected) != 3 || v.regs.RIP != at+1 || vp.HaltsSkipped != 1 {
		t.Fatalf("lost shadow at a NOP: injected %+v at RIP %#x", v.injected, v.regs.RIP)
	}
}
