package apic

// Local APIC register offsets in the xAPIC page (SDM Vol. 3A 11.4.1, Table
// 11-1). Each register is 32 bits at the start of a 16-byte slot. The
// names are tamago's (amd64/lapic) where it has them.
const (
	LAPIC_ID            = 0x020 // local APIC ID
	LAPIC_VER           = 0x030 // version, read-only
	LAPIC_TPR           = 0x080 // task priority
	LAPIC_APR           = 0x090 // arbitration priority, read-only (xAPIC only)
	LAPIC_PPR           = 0x0a0 // processor priority, read-only
	LAPIC_EOI           = 0x0b0 // end of interrupt, write-only
	LAPIC_RRD           = 0x0c0 // remote read, read-only (xAPIC only)
	LAPIC_LDR           = 0x0d0 // logical destination
	LAPIC_DFR           = 0x0e0 // destination format (xAPIC only)
	LAPIC_SVR           = 0x0f0 // spurious interrupt vector
	LAPIC_ISR           = 0x100 // in-service, eight registers to 0x170, read-only
	LAPIC_TMR           = 0x180 // trigger mode, eight registers to 0x1f0, read-only
	LAPIC_IRR           = 0x200 // interrupt request, eight registers to 0x270, read-only
	LAPIC_ESR           = 0x280 // error status
	LAPIC_LVT_CMCI      = 0x2f0 // LVT corrected machine-check interrupt
	LAPIC_ICRL          = 0x300 // interrupt command, bits 31:0
	LAPIC_ICRH          = 0x310 // interrupt command, bits 63:32 (xAPIC only)
	LAPIC_LVT_TIMER     = 0x320 // LVT timer
	LAPIC_LVT_THERMAL   = 0x330 // LVT thermal sensor
	LAPIC_LVT_PERF      = 0x340 // LVT performance monitoring counters
	LAPIC_LVT_LINT0     = 0x350 // LVT LINT0
	LAPIC_LVT_LINT1     = 0x360 // LVT LINT1
	LAPIC_LVT_ERROR     = 0x370 // LVT error
	LAPIC_TIMER_INITIAL = 0x380 // timer initial count
	LAPIC_TIMER_CURRENT = 0x390 // timer current count, read-only
	LAPIC_TIMER_DIVIDE  = 0x3e0 // timer divide configuration
	LAPIC_SELF_IPI      = 0x3f0 // self IPI, write-only (x2APIC only: MSR 0x83f)

	// PageSize is the xAPIC register page's size.
	PageSize = 0x1000
)

// Register fields. As in tamago, a bare name is a bit position and a
// name with a value suffix (ICR_DLV_INIT) is the field's value in place.
const (
	// ID: the xAPIC ID is bits 31:24 (SDM Vol. 3A 11.4.6).
	ID = 24

	// VER (SDM Vol. 3A 11.4.8): version in 7:0, the number of LVT
	// entries minus one in 23:16, EOI-broadcast suppression in 24.
	VER_ENTRIES      = 16
	VER_EOI_SUPPRESS = 24
	// VER_VERSION is an integrated APIC's version (0x1X, SDM Vol. 3A
	// Figure 11-7).
	VER_VERSION = 0x14

	// SVR (SDM Vol. 3A 11.9): spurious vector 7:0.
	SVR_ENABLE       = 8  // APIC software enable
	SVR_FOCUS        = 9  // focus processor checking disabled when set
	SVR_EOI_SUPPRESS = 12 // suppress EOI broadcasts

	// ICR (SDM Vol. 3A 11.6.1): vector 7:0.
	ICR_DLV        = 8  // delivery mode, 3 bits
	ICR_DEST_MODE  = 11 // 1: logical destination
	ICR_DLV_STATUS = 12 // send pending (xAPIC; reserved in x2APIC)
	ICR_INIT       = 14 // level: 1 assert, 0 de-assert
	ICR_TRIGGER    = 15 // 1: level
	ICR_DST        = 18 // destination shorthand, 2 bits
	ICR_DEST       = 56 // xAPIC destination: bits 63:56 (31:24 of ICR high)
	ICR_X2_DEST    = 32 // x2APIC destination: bits 63:32

	ICR_DLV_IRQ  = 0b000 << ICR_DLV // fixed
	ICR_DLV_LOW  = 0b001 << ICR_DLV // lowest priority
	ICR_DLV_SMI  = 0b010 << ICR_DLV
	ICR_DLV_NMI  = 0b100 << ICR_DLV
	ICR_DLV_INIT = 0b101 << ICR_DLV
	ICR_DLV_SIPI = 0b110 << ICR_DLV

	ICR_DST_SELF = 0b01 << ICR_DST
	ICR_DST_ALL  = 0b10 << ICR_DST // all including self
	ICR_DST_REST = 0b11 << ICR_DST // all excluding self

	// LVT entries (SDM Vol. 3A 11.5.1, Figure 11-8): vector 7:0.
	LVT_DLV        = 8  // delivery mode, 3 bits (not timer, not error)
	LVT_DLV_STATUS = 12 // send pending, read-only
	LVT_POLARITY   = 13 // LINT only: 1 active low
	LVT_REMOTE_IRR = 14 // LINT only, read-only
	LVT_TRIGGER    = 15 // LINT only: 1 level
	LVT_MASK       = 16
	TIMER_IRQ      = 0
	TIMER_MODE     = 17 // timer only, 2 bits

	TIMER_MODE_ONE_SHOT     = 0b00
	TIMER_MODE_PERIODIC     = 0b01
	TIMER_MODE_TSC_DEADLINE = 0b10

	// ESR bits (SDM Vol. 3A 11.5.3). Bits 0-3 exist only on P6 and
	// Pentium processors and are never set here.
	ESR_REDIRECTABLE_IPI = 4
	ESR_SEND_ILLEGAL_VEC = 5
	ESR_RECV_ILLEGAL_VEC = 6
	ESR_ILLEGAL_REG_ADDR = 7

	// DFR (SDM Vol. 3A 11.6.2.2): the model in bits 31:28, the rest
	// reads as ones.
	DFR_MODEL         = 28
	DFR_MODEL_FLAT    = 0b1111
	DFR_MODEL_CLUSTER = 0b0000

	// TIMER_DIVIDE_MASK: the divide configuration's bits 0, 1 and 3
	// (SDM Vol. 3A Figure 11-10).
	TIMER_DIVIDE_MASK = 0b1011
)

const (
	firstLegalVector = 16 // vectors 0-15 are illegal (SDM Vol. 3A 11.5.2)
	lvtMasked        = 1 << LVT_MASK
	svrReset         = 0xff        // SDM Vol. 3A 11.4.7.1
	dfrReset         = 0xffff_ffff // flat model
	icrLowWritable   = 0xff | 7<<ICR_DLV | 1<<ICR_DEST_MODE | 1<<ICR_INIT | 1<<ICR_TRIGGER | 3<<ICR_DST
	// icrX2Reserved: bits of the x2APIC ICR that must be zero (SDM Vol. 3A
	// Figure 11-28): delivery status, 13, 17:16 and 31:20.
	icrX2Reserved uint64 = 1<<ICR_DLV_STATUS | 1<<13 | 3<<16 | 0xfff<<20
)

// LVT entries by index; lvtOffsets gives each one's offset.
const (
	lvtCMCI = iota
	lvtTimer
	lvtThermal
	lvtPerf
	lvtLINT0
	lvtLINT1
	lvtError
	numLVT
)

var lvtOffsets = [numLVT]uint32{
	lvtCMCI:    LAPIC_LVT_CMCI,
	lvtTimer:   LAPIC_LVT_TIMER,
	lvtThermal: LAPIC_LVT_THERMAL,
	lvtPerf:    LAPIC_LVT_PERF,
	lvtLINT0:   LAPIC_LVT_LINT0,
	lvtLINT1:   LAPIC_LVT_LINT1,
	lvtError:   LAPIC_LVT_ERROR,
}

// lvtIndex returns the LVT entry at offset off.
func lvtIndex(off uint32) (int, bool) {
	switch off {
	case LAPIC_LVT_CMCI:
		return lvtCMCI, true
	case LAPIC_LVT_TIMER, LAPIC_LVT_THERMAL, LAPIC_LVT_PERF, LAPIC_LVT_LINT0, LAPIC_LVT_LINT1, LAPIC_LVT_ERROR:
		return int(off-LAPIC_LVT_TIMER)>>4 + lvtTimer, true
	}
	return 0, false
}

// lvtWritable is the set of bits software can change in LVT entry i
// (SDM Vol. 3A Figure 11-8): delivery status and remote IRR are
// read-only, and the timer and error entries have no delivery mode.
func (l *LAPIC) lvtWritable(i int) uint32 {
	switch i {
	case lvtTimer:
		if l.tscDeadlineOK {
			return 0xff | lvtMasked | 3<<TIMER_MODE
		}
		return 0xff | lvtMasked | 1<<TIMER_MODE
	case lvtError:
		return 0xff | lvtMasked
	case lvtLINT0, lvtLINT1:
		return 0xff | 7<<LVT_DLV | 1<<LVT_POLARITY | 1<<LVT_TRIGGER | lvtMasked
	}
	return 0xff | 7<<LVT_DLV | lvtMasked
}

// lvtReadOnly is the set of bits in LVT entry i that software cannot
// write but that are not reserved: writing them is ignored even in x2APIC
// mode.
func lvtReadOnly(i int) uint32 {
	if i == lvtLINT0 || i == lvtLINT1 {
		return 1<<LVT_DLV_STATUS | 1<<LVT_REMOTE_IRR
	}
	return 1 << LVT_DLV_STATUS
}

// divideBy returns the divisor a divide configuration selects (SDM Vol.
// 3A Figure 11-10): bits 3,1:0 = 000 → 2, 001 → 4, ... 110 → 128, 111 → 1.
func divideBy(dcr uint32) uint64 {
	v := (dcr>>1)&4 | dcr&3
	if v == 7 {
		return 1
	}
	return 2 << v
}
