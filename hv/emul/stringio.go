package emul

import (
	"fmt"

	"golang.org/x/arch/x86/x86asm"
)

// PortIO is the device behind an I/O port, as INS and OUTS reach it. size
// is 1, 2 or 4; In's result is used in its low size bytes, Out's v carries
// only those. Called on the exit path: must not allocate.
type PortIO interface {
	In(port uint16, size int) uint32
	Out(port uint16, size int, v uint32)
}

// PortString is an INS or OUTS as the I/O exit reports it. The exit is
// the authority for these; the instruction bytes supply the rest.
type PortString struct {
	Port uint16
	Size int  // operand size in bytes: 1, 2 or 4
	In   bool // INS: port to ES:[rDI]; else OUTS: [DS:rSI] to port
	Rep  bool // a REP prefix: repeat rCX times
}

// StringIO performs the INS or OUTS, with or without REP, that an I/O exit
// at CS:RIP reported, moving data between the port's device dev and guest
// memory through mem. dev nil means no device: reads return all ones,
// writes go nowhere.
//
// The exit supplies the port, size, direction and REP; the instruction at
// CS:RIP, fetched and decoded as Emulate does, supplies what exits do not
// reliably carry: the address size (mode and 0x67 prefix), which masks
// rSI, rDI and rCX, and an OUTS segment override. Each iteration is a
// MOVS-like step (the loop and stepping are shared with MOVS/STOS/LODS):
// DF sets the direction, ES:rDI and seg:rSI get their segment bases, an
// operand that straddles a page is split at the boundary, and the pages are
// translated before the device is touched. At most State.RepLimit
// iterations run per call.
//
// StringIO does not move RIP or change RFLAGS. On success, if
// Result.Incomplete is false the instruction is done and the caller
// advances RIP past it (by the length the exit reported, else Result.Len);
// if Incomplete is set, rSI/rDI/rCX hold the progress and re-entering the
// guest at the same RIP resumes it. Errors are as Emulate's: *PageFault or
// *Exception (inject; the registers keep the completed iterations),
// *UnsupportedError, or whatever mem returned.
//
// Exit path: allocates only what x86asm.Decode does; s, the instruction
// bytes and memory are guest-controlled, io comes from the hardware.
func StringIO(s *State, mem Memory, dev PortIO, io PortString) (Result, error) {
	si := strInst{kind: strOUTS, width: io.Size, srcSeg: SegDS, rep: io.Rep, port: io.Port}
	if io.In {
		si.kind = strINS
	}
	switch {
	case io.Size == 1 && io.In:
		si.op = x86asm.INSB
	case io.Size == 2 && io.In:
		si.op = x86asm.INSW
	case io.Size == 4 && io.In:
		si.op = x86asm.INSD
	case io.Size == 1:
		si.op = x86asm.OUTSB
	case io.Size == 2:
		si.op = x86asm.OUTSW
	case io.Size == 4:
		si.op = x86asm.OUTSD
	default:
		return Result{}, fmt.Errorf("emul: string I/O of %d bytes", io.Size)
	}
	var e emu
	if err := e.begin(s, mem); err != nil {
		return Result{}, err
	}
	e.ports = dev
	si.as = e.inst.AddrSize
	switch e.inst.Op {
	case x86asm.OUTSB, x86asm.OUTSW, x86asm.OUTSD:
		if seg, ok := e.srcSegment(1); ok {
			si.srcSeg = seg
		}
	}
	done, err := e.repeat(&si)
	res := e.result()
	res.Op, res.Incomplete = si.op, err == nil && !done
	return res, err
}

// portIn reads the device, or all ones where there is none. Exit path: must
// not allocate.
func (e *emu) portIn(port uint16, size int) uint32 {
	if e.ports == nil {
		return 0xffff_ffff
	}
	return e.ports.In(port, size)
}

// portOut writes v's low size bytes to the device, if there is one. Exit
// path: must not allocate.
func (e *emu) portOut(port uint16, size int, v uint32) {
	if e.ports != nil {
		e.ports.Out(port, size, v&(0xffff_ffff>>(32-8*size)))
	}
}
