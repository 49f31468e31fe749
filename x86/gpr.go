package x86

// General-purpose register numbers in the order of the instruction
// encoding (ModRM.reg/rm with REX.R/B, SDM Vol. 2A Table 2-2): the index of
// each register in a [16]uint64 register file throughout gohv.
const (
	RAX = iota
	RCX
	RDX
	RBX
	RSP
	RBP
	RSI
	RDI
	R8
	R9
	R10
	R11
	R12
	R13
	R14
	R15
)
