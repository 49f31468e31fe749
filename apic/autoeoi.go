package apic

// This file: auto-EOI vectors, the one hook the Hyper-V SynIC needs in the
// local APIC. A SINTx register with its AutoEOI bit set asks the
// hypervisor to perform "an implicit EOI ... when an interrupt is
// delivered to the virtual processor" and to clear the vector's bit in
// the virtual APIC's ISR (TLFS "SINTx Registers"): the guest's
// handler then writes no EOI. A real local APIC has no such mode; the
// SynIC tells the LAPIC which vectors it wants treated that way, and Ack
// consults the set.
//
// Only edge-triggered deliveries are retired at once: a vector that
// arrived level-triggered (its TMR bit set) still enters ISR, so its EOI
// reaches the I/O APIC and clears the remote IRR there (SDM Vol. 3A
// 11.8.5). The set is hypervisor configuration, not architectural state:
// INIT and power-up resets leave it as it is; its owner keeps it in step
// with the SINT registers.

// SetAutoEOI marks vector as auto-EOI (on) or not. Ack then moves an
// edge-triggered vector so marked from IRR straight to the VP, without
// setting its ISR bit, so it raises the processor priority of nothing and
// needs no EOI. Vectors below 16 are ignored: they never reach IRR. Any
// goroutine; does not allocate.
func (l *LAPIC) SetAutoEOI(vector uint8, on bool) {
	if vector < firstLegalVector {
		return
	}
	l.mu.Lock()
	if on {
		setBit(&l.autoEOI, vector)
	} else {
		clearBit(&l.autoEOI, vector)
	}
	l.mu.Unlock()
}

// AutoEOI reports whether vector is marked auto-EOI: after Ack returns such a
// vector the caller treats it as EOId (the SynIC rescans its message queues
// on an EOI of a SINT vector, TLFS "SynIC Messages"). Any goroutine; does not
// allocate.
func (l *LAPIC) AutoEOI(vector uint8) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return testBit(&l.autoEOI, vector)
}

// autoEOILocked reports whether Ack retires v at once: marked auto-EOI
// and delivered edge-triggered.
func (l *LAPIC) autoEOILocked(v uint8) bool {
	return testBit(&l.autoEOI, v) && !testBit(&l.tmr, v)
}
