package tlfs

// Further SynIC and synthetic-timer names the SynIC's implementation
// checks against (TLFS 11, "SynIC MSRs"; TLFS 12, "Synthetic Timers").
const (
	// SINTMinVector is the lowest vector a SINTx register may name: the
	// TLFS gives 16-255 as the valid vectors and a write of another one
	// raises #GP (TLFS "SINTx Registers").
	SINTMinVector = 16

	// SINTReservedP are the SINTx bits the TLFS marks RsvdP (15:8 and
	// 63:19): a guest writes back what it read, and they have no effect.
	SINTReservedP = 0xff00 | ^uint64(1<<19-1)

	// STimerReserved are the HV_X64_MSR_STIMERx_CONFIG bits the TLFS marks
	// RsvdZ: 15:13 and 63:20 (TLFS "Synthetic Timer Configuration
	// Register").
	STimerReserved = 0x7<<13 | ^uint64(1<<20-1)

	// OverlayReservedP are the RsvdP bits 11:1 of HV_X64_MSR_SIMP and
	// HV_X64_MSR_SIEFP (TLFS "SIMP Register").
	OverlayReservedP = 0xffe
)
