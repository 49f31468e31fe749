package apic

import "gohv/x86"

// This file: the LAPIC's MSRs: IA32_APIC_BASE and its mode transitions,
// IA32_TSC_DEADLINE, and the x2APIC registers at 0x800-0x8ff with their
// #GP rules (SDM Vol. 3A 11.4.4, 11.12).

// HandlesMSR reports whether ReadMSR and WriteMSR serve msr:
// IA32_APIC_BASE, IA32_TSC_DEADLINE and the x2APIC range.
func HandlesMSR(msr uint32) bool {
	return msr == x86.MsrAPICBase || msr == x86.MsrTSCDeadline ||
		(msr >= x86.MsrX2APICBase && msr <= x86.MsrX2APICLast)
}

// ReadMSR is RDMSR of a LAPIC MSR. An error wraps ErrGP: the caller
// raises #GP(0). VP thread; does not allocate.
func (l *LAPIC) ReadMSR(msr uint32) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case msr == x86.MsrAPICBase:
		return l.base, nil
	case msr == x86.MsrTSCDeadline:
		if !l.tscDeadlineOK {
			return 0, ErrNoTSCDeadline
		}
		return l.readTSCDeadlineLocked(), nil
	case msr < x86.MsrX2APICBase || msr > x86.MsrX2APICLast:
		return 0, ErrNotAPICMSR
	}
	if l.mode() != ModeX2APIC {
		return 0, ErrNotX2APIC
	}
	switch msr {
	case x86.MsrX2APICEOI, x86.MsrX2APICSelfIPI:
		return 0, ErrWriteOnly
	case x86.MsrX2APICICR:
		return uint64(l.icrHigh)<<32 | uint64(l.icrLow), nil
	}
	off := x2apicOffset(msr)
	if x2apicAbsent(off) {
		return 0, ErrNoRegister
	}
	v, ok := l.readRegLocked(off)
	if !ok {
		return 0, ErrNoRegister
	}
	return uint64(v), nil
}

// WriteMSR is WRMSR of a LAPIC MSR. An error wraps ErrGP: the caller
// raises #GP(0), and nothing changed. In x2APIC mode (SDM Vol. 3A
// 11.12.1.2-3): writes to read-only registers, to registers x2APIC mode
// lacks (DFR, ICR high, APR, RRD) or to unimplemented MSRs fault, as does
// any reserved bit set (RsvdZ: the upper 32 bits of every register but
// the ICR, a non-zero EOI or ESR write, a reserved LVT field or timer
// mode 11); the read-only delivery-status and remote-IRR bits of an LVT
// entry are ignored. VP thread; does not allocate.
func (l *LAPIC) WriteMSR(msr uint32, v uint64) error {
	l.mu.Lock()
	p, err := l.writeMSRLocked(msr, v)
	l.mu.Unlock()
	l.finish(p)
	return err
}

func (l *LAPIC) writeMSRLocked(msr uint32, v uint64) (post, error) {
	var p post
	switch {
	case msr == x86.MsrAPICBase:
		return p, l.writeBaseLocked(v)
	case msr == x86.MsrTSCDeadline:
		if !l.tscDeadlineOK {
			return p, ErrNoTSCDeadline
		}
		p.kick = l.writeTSCDeadlineLocked(v)
		return p, nil
	case msr < x86.MsrX2APICBase || msr > x86.MsrX2APICLast:
		return p, ErrNotAPICMSR
	}
	if l.mode() != ModeX2APIC {
		return p, ErrNotX2APIC
	}
	off := x2apicOffset(msr)
	if msr == x86.MsrX2APICICR {
		if v&icrX2Reserved != 0 {
			return p, ErrReservedBits
		}
		return l.writeRegLocked(LAPIC_ICRL, uint32(v), uint32(v>>32)), nil
	}
	if x2apicAbsent(off) {
		return p, ErrNoRegister
	}
	var writable uint32
	switch off {
	case LAPIC_TPR, LAPIC_SELF_IPI:
		writable = 0xff
	case LAPIC_EOI, LAPIC_ESR:
		writable = 0 // only 0 may be written (SDM Vol. 3A Table 11-6)
	case LAPIC_SVR:
		writable = 0xff | 1<<SVR_ENABLE | 1<<SVR_FOCUS
		if l.eoiSuppressOK {
			writable |= 1 << SVR_EOI_SUPPRESS
		}
	case LAPIC_TIMER_INITIAL:
		writable = 0xffff_ffff
	case LAPIC_TIMER_DIVIDE:
		writable = TIMER_DIVIDE_MASK
	default:
		i, ok := lvtIndex(off)
		if !ok {
			if _, readable := l.readRegLocked(off); readable {
				return p, ErrReadOnly
			}
			return p, ErrNoRegister
		}
		writable = l.lvtWritable(i) | lvtReadOnly(i)
		if i == lvtTimer && v>>TIMER_MODE&3 == 3 {
			return p, ErrReservedBits
		}
	}
	if v&^uint64(writable) != 0 {
		return p, ErrReservedBits
	}
	return l.writeRegLocked(off, uint32(v), 0), nil
}

// x2apicOffset is the xAPIC offset of the register at x2APIC MSR msr
// (SDM Vol. 3A 11.12.1.2: MSR = 0x800 + offset>>4).
func x2apicOffset(msr uint32) uint32 { return (msr - x86.MsrX2APICBase) << 4 }

// x2apicAbsent reports whether offset off is an xAPIC register that
// x2APIC mode does not have (SDM Vol. 3A Table 11-6).
func x2apicAbsent(off uint32) bool {
	switch off {
	case LAPIC_APR, LAPIC_RRD, LAPIC_DFR, LAPIC_ICRH:
		return true
	}
	return false
}

// writeBaseLocked is WRMSR IA32_APIC_BASE (SDM Vol. 3A 11.4.4, 11.12.5).
//
// Reserved bits (7:0, 9, those at or above MAXPHYADDR, and EXTD when
// x2APIC is not advertised) fault. The BSP bit is read-only: a write
// keeps the current value. The base address may be any page below
// MAXPHYADDR, the guest's own RAM or another device's window included;
// what the page then hides is the caller's routing decision.
//
// Mode transitions (SDM Vol. 3A Figure 11-27): disabled↔xAPIC,
// xAPIC→x2APIC and x2APIC→disabled are legal; x2APIC→xAPIC,
// disabled→x2APIC and anything into EN=0 EXTD=1 fault. Disabling resets
// the LAPIC to its power-up state (pending interrupts and events are
// lost, the timer stops); re-enabling finds it there. Entering x2APIC
// mode keeps all state but the ID, which becomes the initial x2APIC ID,
// and the LDR, which is derived from it (SDM Vol. 3A 11.12.5.1).
func (l *LAPIC) writeBaseLocked(v uint64) error {
	if v&l.baseReserved != 0 {
		return ErrBaseReserved
	}
	v = v&^x86.APICBaseBSP | l.base&x86.APICBaseBSP
	from := l.mode()
	to := ModeDisabled
	switch v & (x86.APICBaseEnable | x86.APICBaseEXTD) {
	case x86.APICBaseEnable:
		to = ModeXAPIC
	case x86.APICBaseEnable | x86.APICBaseEXTD:
		to = ModeX2APIC
	case x86.APICBaseEXTD:
		return ErrBaseTransition
	}
	if (from == ModeX2APIC && to == ModeXAPIC) || (from == ModeDisabled && to == ModeX2APIC) {
		return ErrBaseTransition
	}
	l.base = v
	switch {
	case from == to:
	case to == ModeDisabled:
		l.resetLocked(true)
		l.waitSIPI = false
	case to == ModeXAPIC:
		l.id = l.initialID & 0xff
	case to == ModeX2APIC:
		l.id = l.initialID
		l.ldr = x2apicLDR(l.id)
	}
	return nil
}
