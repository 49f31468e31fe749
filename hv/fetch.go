package hv

import (
	"encoding/binary"

	"gohv/hv/emul"
	"gohv/x86"
)

// This file: reading the instruction an exit stopped at, fast. When the
// hardware gives no instruction length (QEMU's SVM has no NRIP-save), the
// core reads the bytes at RIP to know how far to skip, on every CPUID,
// MSR, HLT and hypercall exit: the emulator's full page walk (every
// permission and reserved bit checked, errors built with context) cost
// about 1,000 instructions of a 2,300-instruction CPUID round trip.

// readU64 reads the aligned quadword at gpa if it is RAM. Exit path: must
// not allocate; gpa is guest-controlled.
func (m *GuestMemory) readU64(gpa uint64) (uint64, bool) {
	pg := m.page(gpa &^ 7)
	if pg == nil {
		return 0, false
	}
	return binary.LittleEndian.Uint64(pg[gpa&(x86.PageSize-1)&^7:]), true
}

// fetchGPA translates the linear address of an instruction the guest has
// just executed — the one the exit reported — for reading its bytes: the
// 4- and 5-level long-mode walks in line. It checks no permission and sets
// no accessed flag: the CPU fetched the instruction under that very
// translation a moment ago and set the flags then. Anything else (paging
// off is trivial; 32-bit and PAE paging, an entry not present because
// another VP changed it since) answers false, and the caller takes the
// emulator's full walk, which reports faults properly. A translation that
// changed since the fetch can only make the core read the partition's own
// RAM elsewhere: never outside it. Exit path: must not allocate; the page
// tables are guest-controlled.
func (vp *VP) fetchGPA(la uint64) (uint64, bool) {
	pg := &vp.view.paging
	return vp.codeGPA(la, pg.CR0, pg.CR3, pg.CR4, pg.EFER, pg.FrameMask())
}

// codeGPA is fetchGPA over the paging registers given, with frame mask
// addr (emul.Paging.FrameMask). Exit path: must not allocate.
func (vp *VP) codeGPA(la, cr0, cr3, cr4, efer, addr uint64) (uint64, bool) {
	if cr0&x86.CR0PG == 0 {
		if efer&x86.EFERLMA == 0 {
			la &= 0xffff_ffff
		}
		return la, true
	}
	if efer&x86.EFERLMA == 0 || cr4&x86.CR4PAE == 0 {
		return 0, false
	}
	levels := 4
	if cr4&x86.CR4LA57 != 0 {
		levels = 5
	}
	table := cr3 & addr
	for level := levels; level >= 1; level-- {
		shift := uint(12 + 9*(level-1))
		e, ok := vp.p.Mem.readU64(table + (la>>shift&511)*8)
		if !ok || e&x86.PTEPresent == 0 {
			return 0, false
		}
		if (level == 2 || level == 3) && e&x86.PTEPS != 0 {
			off := uint64(1)<<shift - 1
			return e&addr&^off | la&off, true
		}
		table = e & addr
	}
	return table | la&(x86.PageSize-1), true
}

// fetchOpcode reports whether the bytes at CS:RIP are op, reading them
// straight from the registers (no emulator state filled, the frame mask
// computed once per VP): decodeLength's first try, on every NRIP-less
// exit. It answers false wherever fetchAt could still read the bytes
// (32-bit or PAE paging, a page boundary) and the caller takes that path.
// Exit path: must not allocate.
func (vp *VP) fetchOpcode(op opcode) bool {
	r := vp.regs
	la := r.CS.Base + r.RIP
	if r.EFER&x86.EFERLMA == 0 || r.CS.Attrib&x86.SegL == 0 {
		la &= 0xffff_ffff // outside 64-bit mode, as fetchAt
	}
	if int(la%x86.PageSize)+op.n > x86.PageSize {
		return false
	}
	gpa, ok := vp.codeGPA(la, r.CR0, r.CR3, r.CR4, r.EFER, vp.frameMask)
	if !ok {
		return false
	}
	pg := vp.codePageOf(gpa)
	if pg == nil {
		return false
	}
	off := gpa % x86.PageSize
	for i := range op.n { // compared in place: no copy, no memequal call
		if pg[off+uint64(i)] != op.b[i] {
			return false
		}
	}
	return true
}

// prepareFetch fills what fetchAt needs of the emulator state: RIP, the
// code segment's base and mode, the paging registers. Cheaper than
// prepare: no segment other than CS, no GPRs. Exit path: must not
// allocate.
func (vp *VP) prepareFetch() {
	r := vp.regs
	s := &vp.emuState
	s.RIP = r.RIP
	s.SegBase[emul.SegCS] = r.CS.Base
	s.Mode = emul.ModeFromCS(r.EFER&x86.EFERLMA != 0, r.CS.Attrib&x86.SegL != 0, r.CS.Attrib&x86.SegDB != 0)
	s.LA57 = r.CR4&x86.CR4LA57 != 0
	vp.view.paging = emul.Paging{CR0: r.CR0, CR3: r.CR3, CR4: r.CR4, EFER: r.EFER, MaxPhysAddr: vp.p.hv.Model.PhysAddrBits()}
}

// readCode copies instruction bytes at gpa (within one page) into b,
// through the host page of the last code page read: a partition's RAM
// does not move while it runs, so the page stays the guest's page gpa
// names. Exit path: must not allocate; gpa is guest-controlled.
func (vp *VP) readCode(gpa uint64, b []byte) bool {
	pg := vp.codePageOf(gpa)
	if pg == nil {
		return false
	}
	copy(b, pg[gpa%x86.PageSize:])
	return true
}

// codePageOf is the host view of the guest page holding gpa, through the
// cache of the last code page; nil when gpa is not RAM. Exit path: must
// not allocate; gpa is guest-controlled.
func (vp *VP) codePageOf(gpa uint64) *[x86.PageSize]byte {
	pfn := gpa / x86.PageSize
	if vp.codePage == nil || pfn != vp.codePFN {
		pg := vp.p.Mem.page(gpa)
		if pg == nil {
			return nil
		}
		vp.codePage, vp.codePFN = pg, pfn
	}
	return vp.codePage
}
