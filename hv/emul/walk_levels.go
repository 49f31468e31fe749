package emul

import "gohv/x86"

// The three guest page-table formats, each walked from CR3 to the leaf.

// long walks 4- or 5-level paging. Exit path: allocates only the fault it
// returns; every entry is guest-controlled.
func (w *walker) long() (uint64, error) {
	levels, vbits := uint(4), uint(48)
	if w.p.CR4&x86.CR4LA57 != 0 {
		levels, vbits = 5, 57
	}
	if !canonical(w.la, vbits) {
		return 0, &Exception{Vector: x86.VectorGP, HasErrorCode: true}
	}
	amask := w.addrMask()
	// Bits 51:MAXPHYADDR are reserved everywhere; bit 63 unless NXE.
	rsvdBase := bitRange(w.m, 51)
	if !w.nxe() {
		rsvdBase |= x86.PTENX
	}
	table := w.p.CR3 & amask
	for level := int(levels); level >= 1; level-- {
		shift := 12 + 9*(level-1)
		e, err := w.read64(table + ((w.la>>shift)&0x1ff)*8)
		if err != nil {
			return 0, err
		}
		if e&x86.PTEPresent == 0 {
			return 0, w.fault(false, false)
		}
		rsvd := rsvdBase
		leaf := level == 1
		if level > 1 && e&x86.PTEPS != 0 {
			switch level {
			case 2: // 2 MiB page: bits 20:13 sit between PAT (12) and the address
				rsvd |= bitRange(13, 20)
				leaf = true
			case 3: // 1 GiB page
				rsvd |= bitRange(13, 29)
				leaf = true
			default: // PS is reserved in PML4E and PML5E
				rsvd |= x86.PTEPS
			}
		}
		if e&rsvd != 0 {
			return 0, w.fault(true, true)
		}
		w.accumulate(e, true, true)
		if leaf {
			off := uint64(1)<<shift - 1
			return w.finish(e&amask&^off | w.la&off)
		}
		table = e & amask
	}
	return 0, errWalk // not reached: the level-1 entry is always a leaf
}

// pae walks PAE paging: a 4-entry PDPT, then PD and PT. Exit path: as
// long.
func (w *walker) pae() (uint64, error) {
	amask := w.addrMask()
	pdpte, err := w.readWord(w.p.CR3&0xffffffe0 + ((w.la>>30)&3)*8) // no A flag in PDPTEs
	if err != nil {
		return 0, err
	}
	if pdpte&x86.PTEPresent == 0 {
		return 0, w.fault(false, false)
	}
	// PDPTEs carry no R/W, U/S or XD; bits 2:1, 8:5 and 63:MAXPHYADDR are
	// reserved.
	if pdpte&(bitRange(w.m, 63)|bitRange(5, 8)|bitRange(1, 2)) != 0 {
		return 0, w.fault(true, true)
	}
	rsvdBase := bitRange(w.m, 62)
	if !w.nxe() {
		rsvdBase |= x86.PTENX
	}
	table := pdpte & amask
	for level := 2; level >= 1; level-- {
		shift := 12 + 9*(level-1)
		e, err := w.read64(table + ((w.la>>shift)&0x1ff)*8)
		if err != nil {
			return 0, err
		}
		if e&x86.PTEPresent == 0 {
			return 0, w.fault(false, false)
		}
		rsvd := rsvdBase
		leaf := level == 1
		if level == 2 && e&x86.PTEPS != 0 {
			rsvd |= bitRange(13, 20)
			leaf = true
		}
		if e&rsvd != 0 {
			return 0, w.fault(true, true)
		}
		w.accumulate(e, true, true)
		if leaf {
			off := uint64(1)<<shift - 1
			return w.finish(e&amask&^off | w.la&off)
		}
		table = e & amask
	}
	return 0, errWalk // not reached
}

// legacy walks 32-bit paging with 4-byte entries. Exit path: as long.
func (w *walker) legacy() (uint64, error) {
	pde, err := w.read32(w.p.CR3&0xfffff000 + (w.la>>22)*4)
	if err != nil {
		return 0, err
	}
	if pde&x86.PTEPresent == 0 {
		return 0, w.fault(false, false)
	}
	if w.p.CR4&x86.CR4PSE != 0 && pde&x86.PTEPS != 0 {
		// 4 MiB page. Bits 20:13 hold physical-address bits 39:32
		// (PSE-36); those at or above min(MAXPHYADDR, 40) are reserved,
		// and so is bit 21.
		m := w.m
		if m > 40 {
			m = 40
		}
		rsvd := uint64(1)<<21 | bitRange(13+(m-32), 20)
		if pde&rsvd != 0 {
			return 0, w.fault(true, true)
		}
		w.accumulate(pde, true, false)
		gpa := pde&0xffc00000 | (pde>>13&0xff)<<32 | w.la&0x3fffff
		return w.finish(gpa)
	}
	w.accumulate(pde, true, false)
	pte, err := w.read32(pde&0xfffff000 + (w.la>>12&0x3ff)*4)
	if err != nil {
		return 0, err
	}
	if pte&x86.PTEPresent == 0 {
		return 0, w.fault(false, false)
	}
	w.accumulate(pte, true, false)
	return w.finish(pte&0xfffff000 | w.la&0xfff)
}

// canonical reports whether la is canonical for a vbits-wide linear
// address space (bits 63:vbits-1 all equal). Exit path: must not allocate.
func canonical(la uint64, vbits uint) bool {
	s := 64 - vbits
	return uint64(int64(la<<s)>>s) == la
}
