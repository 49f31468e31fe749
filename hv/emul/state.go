package emul

import (
	"golang.org/x/arch/x86/x86asm"
)

// Mode is the default operand/address size of the code segment: the
// processor mode Emulate decodes in.
type Mode uint8

const (
	Mode16 Mode = 16 // real mode, or protected mode with CS.D=0
	Mode32 Mode = 32 // protected or compatibility mode with CS.D=1
	Mode64 Mode = 64 // 64-bit mode: EFER.LMA=1 and CS.L=1
)

// ModeFromCS derives the code mode from EFER.LMA and the code segment's
// L and D/B attribute bits. Exit path: must not allocate.
func ModeFromCS(lma, csL, csDB bool) Mode {
	switch {
	case lma && csL:
		return Mode64
	case csDB:
		return Mode32
	}
	return Mode16
}

// Seg indexes State.SegBase; the order is the x86 segment-register order.
type Seg uint8

const (
	SegES Seg = iota
	SegCS
	SegSS
	SegDS
	SegFS
	SegGS
)

// DefaultRepLimit is the number of REP iterations one Emulate or StringIO
// call performs when State.RepLimit is 0: the per-exit cap that bounds how
// long one exit can keep the VP's thread.
const DefaultRepLimit = 4096

// State is the guest register state Emulate and StringIO read and update.
// The caller copies it from and back to the VMCB/VMCS around the call; keep
// one State per virtual processor (it holds scratch space, so the emulator
// does not allocate for it). Every field but RepLimit is guest-controlled.
type State struct {
	GPR    [16]uint64 // indexed by x86.RAX … x86.R15, as vcpu.Regs.GPR
	RIP    uint64
	RFLAGS uint64
	Mode   Mode
	CPL    uint8 // 3 makes every access a user-mode access
	// SegBase holds the segment bases, indexed by Seg. In 64-bit mode
	// only FS and GS are used; elsewhere all are added to the effective
	// address. Segment limits and attributes are not checked.
	SegBase [6]uint64
	// LA57 is CR4.LA57: 57-bit instead of 48-bit canonical checks.
	LA57 bool
	// RepLimit caps the iterations of a REP string instruction per call;
	// 0 means DefaultRepLimit.
	RepLimit int

	buf [32]byte // [0:15] instruction bytes, [16:32] operand data
}

// Memory is the caller's view of the guest. Emulate and StringIO make every
// access to guest memory through it. Its methods are called on the exit
// path: they must not allocate except for the errors they return.
//
//   - Translate maps a linear address to a guest-physical one, normally by
//     Paging.Walk over the guest's current CR0/CR3/CR4/EFER, and returns
//     *PageFault (or *Exception) for the caller to inject. The returned GPA
//     must keep la's offset within the 4 KiB page.
//   - Read and Write move bytes at a GPA; the caller routes them to RAM or
//     to an emulated device.
//
// Every data Read/Write has the exact operand width (1, 2, 4 or 8 bytes)
// and lies within one 4 KiB page, so an MMIO access reaches the device in
// one call. The one exception is an operand that straddles a page
// boundary: it is split at the boundary into two calls, one per page, as
// the CPU itself does. Instruction fetches are Reads of up to 15 bytes,
// also never crossing a page; a caller should refuse fetches from MMIO.
// Every page an instruction touches is translated before the first data
// Read or Write, so a page fault leaves the device untouched (a REP string
// instruction checks per iteration, as the CPU does).
type Memory interface {
	Translate(la uint64, acc Access) (gpa uint64, err error)
	Read(gpa uint64, b []byte) error
	Write(gpa uint64, b []byte) error
}

// Result describes one Emulate or StringIO call.
type Result struct {
	Op         x86asm.Op // the instruction's mnemonic (StringIO: the INS/OUTS form the exit named)
	Len        int       // length of the instruction decoded at CS:RIP, in bytes
	Accesses   int       // data Read/Write calls made (fetches not counted)
	Iterations int       // string-instruction iterations performed
	// Incomplete is set when a REP string instruction stopped at
	// State.RepLimit with count remaining: RIP is unchanged, x86.RSI/x86.RDI/x86.RCX
	// reflect the iterations done, and re-entering the guest resumes it.
	Incomplete bool
}
