package x86

// Exception vectors (SDM Vol. 3A 6.3.1, Table 6-1).
const (
	VectorDE  = 0  // divide error
	VectorDB  = 1  // debug
	VectorNMI = 2  // non-maskable interrupt
	VectorBP  = 3  // breakpoint
	VectorOF  = 4  // overflow
	VectorBR  = 5  // BOUND range exceeded
	VectorUD  = 6  // invalid opcode
	VectorNM  = 7  // device not available
	VectorDF  = 8  // double fault
	VectorTS  = 10 // invalid TSS
	VectorNP  = 11 // segment not present
	VectorSS  = 12 // stack-segment fault
	VectorGP  = 13 // general protection
	VectorPF  = 14 // page fault
	VectorMF  = 16 // x87 floating-point error
	VectorAC  = 17 // alignment check
	VectorMC  = 18 // machine check
	VectorXM  = 19 // SIMD floating-point
	VectorVE  = 20 // virtualization exception
	VectorCP  = 21 // control protection

	// FirstExternalVector is the lowest vector outside the reserved range.
	FirstExternalVector = 32
)

// ExceptionHasErrorCode reports whether the CPU pushes an error code when
// it delivers exception vector v (SDM Vol. 3A Table 6-1).
func ExceptionHasErrorCode(v uint8) bool {
	switch v {
	case VectorDF, VectorTS, VectorNP, VectorSS, VectorGP, VectorPF, VectorAC, VectorCP:
		return true
	}
	return false
}

// Page-fault error code bits (SDM Vol. 3A 4.7).
const (
	PFErrPresent = 1 << 0
	PFErrWrite   = 1 << 1
	PFErrUser    = 1 << 2
	PFErrRsvd    = 1 << 3
	PFErrFetch   = 1 << 4
	PFErrPK      = 1 << 5
)
