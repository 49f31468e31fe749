package x86

// CR0 bits (SDM Vol. 3A 2.5).
const (
	CR0PE = 1 << 0  // protection enable
	CR0MP = 1 << 1  // monitor coprocessor
	CR0EM = 1 << 2  // emulation
	CR0TS = 1 << 3  // task switched
	CR0ET = 1 << 4  // extension type
	CR0NE = 1 << 5  // numeric error
	CR0WP = 1 << 16 // write protect
	CR0AM = 1 << 18 // alignment mask
	CR0NW = 1 << 29 // not write-through
	CR0CD = 1 << 30 // cache disable
	CR0PG = 1 << 31 // paging
)

// CR4 bits (SDM Vol. 3A 2.5).
const (
	CR4VME        = 1 << 0
	CR4PVI        = 1 << 1
	CR4TSD        = 1 << 2
	CR4DE         = 1 << 3
	CR4PSE        = 1 << 4
	CR4PAE        = 1 << 5
	CR4MCE        = 1 << 6
	CR4PGE        = 1 << 7
	CR4PCE        = 1 << 8
	CR4OSFXSR     = 1 << 9
	CR4OSXMMEXCPT = 1 << 10
	CR4UMIP       = 1 << 11
	CR4LA57       = 1 << 12
	CR4VMXE       = 1 << 13
	CR4SMXE       = 1 << 14
	CR4FSGSBASE   = 1 << 16
	CR4PCIDE      = 1 << 17
	CR4OSXSAVE    = 1 << 18
	CR4KL         = 1 << 19
	CR4SMEP       = 1 << 20
	CR4SMAP       = 1 << 21
	CR4PKE        = 1 << 22
	CR4CET        = 1 << 23
	CR4PKS        = 1 << 24
)

// IA32_EFER bits (SDM Vol. 3A 2.2.1; APM Vol. 2 3.1.7).
const (
	EFERSCE   = 1 << 0  // SYSCALL enable
	EFERLME   = 1 << 8  // long mode enable
	EFERLMA   = 1 << 10 // long mode active (read-only)
	EFERNXE   = 1 << 11 // no-execute enable
	EFERSVME  = 1 << 12 // SVM enable (AMD)
	EFERLMSLE = 1 << 13 // long mode segment limit enable (AMD)
	EFERFFXSR = 1 << 14 // fast FXSAVE/FXRSTOR (AMD)
	EFERTCE   = 1 << 15 // translation cache extension (AMD)
)

// RFLAGS bits (SDM Vol. 1 3.4.3).
const (
	RFLAGSCF    = 1 << 0
	RFLAGSFixed = 1 << 1 // reserved, always 1
	RFLAGSPF    = 1 << 2
	RFLAGSAF    = 1 << 4
	RFLAGSZF    = 1 << 6
	RFLAGSSF    = 1 << 7
	RFLAGSTF    = 1 << 8
	RFLAGSIF    = 1 << 9
	RFLAGSDF    = 1 << 10
	RFLAGSOF    = 1 << 11
	RFLAGSIOPL  = 3 << 12
	RFLAGSNT    = 1 << 14
	RFLAGSRF    = 1 << 16
	RFLAGSVM    = 1 << 17
	RFLAGSAC    = 1 << 18
	RFLAGSVIF   = 1 << 19
	RFLAGSVIP   = 1 << 20
	RFLAGSID    = 1 << 21
)

// Reset values of DR6 and DR7 (SDM Vol. 3B 18.2).
const (
	DR6Reset = 0xffff_0ff0
	DR7Reset = 0x400
)

// FXSAVE area reset state (SDM Vol. 1 10.5.1): the x87 control word and
// MXCSR after FNINIT/reset, at their offsets in the 512-byte area.
const (
	FXSaveFCWOffset   = 0
	FXSaveMXCSROffset = 24
	FCWReset          = 0x037f
	MXCSRReset        = 0x1f80
	FXSaveAreaSize    = 512
)
