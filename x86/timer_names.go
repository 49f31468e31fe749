package x86

// The local APIC timer (SDM Vol. 3A 11.5.4), as host code programs it in
// xAPIC mode. The timer's LVT modes (one-shot, periodic, TSC-deadline) and
// the LVT register itself are named by tamago's amd64/lapic
// (LAPIC_LVT_TIMER, TIMER_MODE, TIMER_MODE_ONE_SHOT, TIMER_MODE_PERIODIC,
// TIMER_MODE_TSC_DEADLINE); what it does not name is here, by the SDM's
// names. IA32_TSC_DEADLINE is MsrTSCDeadline, its CPUID bit
// CPUID1ECXTSCDeadline.

// Byte offsets of the timer's registers in the xAPIC page (SDM Vol. 3A
// Table 11-1).
const (
	LAPICTimerInitialCount = 0x380 // Initial Count Register (for Timer)
	LAPICTimerCurrentCount = 0x390 // Current Count Register (for Timer), read-only
	LAPICTimerDivideConfig = 0x3e0 // Divide Configuration Register (for Timer)
)

// Divide Configuration Register values: bits 3, 1 and 0 select how the
// bus (or core crystal) clock is divided before it decrements the count
// (SDM Vol. 3A Figure 11-10).
const (
	LAPICTimerDivideBy1   = 0b1011
	LAPICTimerDivideBy2   = 0b0000
	LAPICTimerDivideBy4   = 0b0001
	LAPICTimerDivideBy8   = 0b0010
	LAPICTimerDivideBy16  = 0b0011
	LAPICTimerDivideBy32  = 0b1000
	LAPICTimerDivideBy64  = 0b1001
	LAPICTimerDivideBy128 = 0b1010
)

const (
	// LAPICLVTMask is the bit position of every LVT entry's Mask flag: a
	// masked entry delivers nothing (SDM Vol. 3A Figure 11-8). A bit
	// position, as tamago writes its LVT fields (TIMER_MODE).
	LAPICLVTMask = 16

	// LAPICTimerMaxCount is the largest one-shot count: the Initial Count
	// Register is 32 bits wide (SDM Vol. 3A 11.5.4). A longer wait is
	// armed in pieces.
	LAPICTimerMaxCount = 0xffff_ffff

	// TSCDeadlineDisarm written to IA32_TSC_DEADLINE disarms the timer; a
	// nonzero value arms it to fire once the TSC reaches it, at once if it
	// already has (SDM Vol. 3A 11.5.4.1).
	TSCDeadlineDisarm = 0
)
