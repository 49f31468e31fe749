package vtd

import (
	"encoding/binary"
	"fmt"

	"gohv/iommu"
)

// Interrupt remapping (VT-d chapter 5, 9.10, 10.4.29, 6.5.2.7): the unit
// takes every interrupt request — a DMA write into 0xFEE00000-0xFEEFFFFF —
// through the interrupt remapping table gohv owns. A request in the
// remappable format (address bit 4 set) names an entry by its handle; the
// entry, if present and if its source-id check passes, says what is
// delivered. With GSTS_REG.CFIS clear, which gohv keeps, a request in the
// compatibility format is blocked (fault 25h), so a device can raise only
// the interrupts the root gave it an entry for.
//
// The table is one page of 256 entries (IRTA_REG.S = 7), all not present
// until AllocInterrupt writes one; its entries are in the remapped format
// (IRTE Mode 0: not posted), fixed delivery, edge triggered, physical
// destination in xAPIC form (IRTA_REG.EIME clear: the destination is bits
// 15:8 of DST), and verify the requester ID exactly (SVT 01b, SQ 00b). A
// device is programmed with the entry's handle and SHV set, data 0
// (subhandle 0): index = handle.
//
// Entry changes are followed by an interrupt entry cache invalidation
// through the invalidation queue, whose wait is awaited (6.5.2.7; the
// register interface has no such invalidation, and a unit with ECAP_REG.IR
// has the queue, 10.4.3).

// IRTA_REG (10.4.29) and its fields.
const (
	IRTA_REG    = 0xb8
	IRTA_IRTA   = ^uint64(0xfff) // Interrupt Remapping Table Address, bits 63:12
	IRTA_EIME   = 1 << 11        // Extended Interrupt Mode Enable: 32-bit x2APIC destinations
	IRTA_S_Mask = 0xf            // Size: 2^(S+1) entries

	irtSizeS   = 7 // gohv's table: 256 entries
	irtEntries = 1 << (irtSizeS + 1)
	irteSize   = 16
)

// Interrupt Remapping Table Entry, remapped format (9.10): the low and
// high qwords.
const (
	IRTE_P         = 1 << 0  // Present
	IRTE_FPD       = 1 << 1  // Fault Processing Disable
	IRTE_DM        = 1 << 2  // Destination Mode: 1 logical
	IRTE_RH        = 1 << 3  // Redirection Hint
	IRTE_TM        = 1 << 4  // Trigger Mode: 1 level
	IRTE_DLM_Shift = 5       // Delivery Mode, bits 7:5: 000b fixed
	IRTE_IM        = 1 << 15 // IRTE Mode: 1 posted
	IRTE_V_Shift   = 16      // Vector, bits 23:16
	IRTE_DST_Shift = 32      // Destination ID, bits 63:32; xAPIC: the APIC ID in DST bits 15:8
	irteXAPICShift = 8

	// High qword.
	IRTE_SID_Mask  = 0xffff // Source Identifier, bits 79:64
	IRTE_SQ_Shift  = 16     // Source-id Qualifier, bits 81:80
	IRTE_SVT_Shift = 18     // Source Validation Type, bits 83:82
	IRTE_SVT_All   = 1      // verify the requester ID against SID under SQ's mask
)

// The remappable MSI address format (5.1.5.2, Figure 5-2): bits 31:20
// 0xFEE, the handle's bits 14:0 in 19:5, Interrupt Format (bit 4) set,
// SubHandle Valid (bit 3), the handle's bit 15 in bit 2.
const (
	MSI_Base        = 0xfee0_0000
	MSI_IF          = 1 << 4
	MSI_SHV         = 1 << 3
	MSI_HandleShift = 5
	MSI_Handle15    = 1 << 2
)

// The interrupt entry cache invalidate descriptor (6.5.2.7).
const (
	InvDesc_IEC        = 0x4
	InvDesc_IEC_Index  = 1 << 4 // granularity: index-selective (else global)
	InvDesc_IEC_IM     = 27     // Index Mask, bits 31:27: 2^IM entries from IIDX
	InvDesc_IEC_IIDX   = 32     // Interrupt Index, bits 47:32
	faultReasonIRFirst = 0x20   // fault reasons 20h-26h are interrupt remapping's (Appendix A)
	faultReasonIRLast  = 0x26
	frcdIndexShift     = 48 // an interrupt fault's FI: the interrupt index in bits 63:48 (10.4.14)
)

var _ iommu.Remapper = (*Unit)(nil)

// irt is the unit's interrupt remapping table once enabled.
type irt struct {
	base  uint64
	owner [irtEntries]int32 // requester ID + 1 of each allocated entry; 0 free
}

// CompatibilityFormatPasses says whether the unit is known to deliver
// compatibility-format interrupt requests untranslated even with
// GSTS_REG.CFIS clear, against 5.1.2.1 — and why (Unit.CompatPasses, set
// by the caller that recognises the unit).
func (u *Unit) CompatibilityFormatPasses() (bool, string) {
	return u.CompatPasses != "", u.CompatPasses
}

// InterruptRemapping says whether remapping is on.
func (u *Unit) InterruptRemapping() (bool, string) {
	switch {
	case !u.ECap.IR:
		return false, "ECAP_REG.IR clear: the unit does not remap interrupts"
	case !u.ECap.QI:
		return false, "ECAP_REG.QI clear: no invalidation queue for the interrupt entry cache"
	case u.irt == nil || u.regs.Read32(GSTS_REG)&GSTS_IRES == 0:
		return false, "not enabled"
	}
	return true, ""
}

// EnableInterruptRemapping points the unit at an empty table and turns
// remapping on (10.4.4, 10.4.29, 6.5.2.7): IRTA_REG, SIRTP, a global
// interrupt entry cache invalidation, CFI clear, IRE. BlockAll must have
// run (the invalidation queue is on). Called again, it re-enables with
// the entries allocated so far.
func (u *Unit) EnableInterruptRemapping() error {
	if !u.ECap.IR || !u.ECap.QI {
		_, why := u.InterruptRemapping()
		return fmt.Errorf("%s: interrupt remapping: %s: %w", u.Name(), why, iommu.ErrNoRemapping)
	}
	if !u.queued() {
		return fmt.Errorf("%s: interrupt remapping: the invalidation queue is not on (BlockAll first)", u.Name())
	}
	if u.irt == nil {
		pa, err := u.pages.AllocPage()
		if err != nil {
			return fmt.Errorf("%s: interrupt remapping table: %w", u.Name(), err)
		}
		if pa&0xfff != 0 {
			u.pages.FreePage(pa)
			return fmt.Errorf("%s: interrupt remapping table page %#x is not 4 KiB aligned", u.Name(), pa)
		}
		u.irt = &irt{base: pa}
		clear(u.pages.Page(pa)[:]) // every entry not present
		u.flushPage(pa)
	}
	u.regs.Write64(IRTA_REG, u.irt.base&IRTA_IRTA|irtSizeS) // EIME clear: xAPIC destinations
	if err := u.command("set interrupt remap table pointer", GCMD_SIRTP, GSTS_IRTPS, GSTS_IRTPS); err != nil {
		return err
	}
	if err := u.submitAndWait("global interrupt entry cache invalidation", [2]uint64{InvDesc_IEC, 0}); err != nil {
		return err
	}
	if u.regs.Read32(GSTS_REG)&GSTS_CFIS != 0 { // firmware's: compatibility format would pass
		if err := u.command("block compatibility-format interrupts", 0, GSTS_CFIS, 0); err != nil {
			return err
		}
	}
	if u.regs.Read32(GSTS_REG)&GSTS_IRES != 0 { // on already: the new pointer is in use (10.4.4 SIRTP)
		return nil
	}
	return u.command("enable interrupt remapping", GCMD_IRE, GSTS_IRES, GSTS_IRES)
}

// AllocInterrupt writes the lowest free entry for source delivering t and
// invalidates it in the interrupt entry cache.
func (u *Unit) AllocInterrupt(source uint16, t iommu.Target) (iommu.Interrupt, error) {
	if on, why := u.InterruptRemapping(); !on {
		return iommu.Interrupt{}, fmt.Errorf("%s: interrupt for %s: %s: %w", u.Name(), sourceString(source), why, iommu.ErrNoRemapping)
	}
	if err := iommu.CheckTarget(t); err != nil {
		return iommu.Interrupt{}, fmt.Errorf("%s: interrupt for %s: %w", u.Name(), sourceString(source), err)
	}
	idx := -1
	for i, o := range u.irt.owner {
		if o == 0 {
			idx = i
			break
		}
	}
	if idx < 0 {
		return iommu.Interrupt{}, fmt.Errorf("%s: interrupt for %s: %d entries: %w", u.Name(), sourceString(source), irtEntries, iommu.ErrNoEntry)
	}
	lo, hi := IRTE(source, t)
	u.writeIRTE(idx, lo, hi)
	if err := u.invalidateIRTE(idx); err != nil {
		u.writeIRTE(idx, 0, 0)
		return iommu.Interrupt{}, fmt.Errorf("interrupt for %s: %w", sourceString(source), err)
	}
	u.irt.owner[idx] = int32(source) + 1
	addr, data := RemappableMSI(uint16(idx))
	return iommu.Interrupt{Source: source, Index: idx, Target: t, Address: addr, Data: data}, nil
}

// FreeInterrupt clears the entry (not present) and invalidates it.
func (u *Unit) FreeInterrupt(in iommu.Interrupt) error {
	if u.irt == nil || in.Index < 0 || in.Index >= irtEntries || u.irt.owner[in.Index] != int32(in.Source)+1 {
		return fmt.Errorf("%s: free interrupt %d of %s: %w", u.Name(), in.Index, sourceString(in.Source), iommu.ErrNotAllocated)
	}
	u.writeIRTE(in.Index, 0, 0)
	u.irt.owner[in.Index] = 0
	if err := u.invalidateIRTE(in.Index); err != nil {
		return fmt.Errorf("free interrupt %d of %s: %w", in.Index, sourceString(in.Source), err)
	}
	return nil
}

// IRTE is the remapped-format entry (9.10) that delivers t for source:
// present, fixed, edge, physical destination in xAPIC form, the requester
// ID verified exactly.
func IRTE(source uint16, t iommu.Target) (lo, hi uint64) {
	lo = IRTE_P | uint64(t.Vector)<<IRTE_V_Shift | uint64(t.APICID&0xff)<<(IRTE_DST_Shift+irteXAPICShift)
	hi = uint64(source) | IRTE_SVT_All<<IRTE_SVT_Shift // SQ 00b: all 16 bits compared
	return lo, hi
}

// RemappableMSI is the message naming entry handle (5.1.5.2): the handle
// in the address, SHV set, subhandle 0 in the data.
func RemappableMSI(handle uint16) (addr uint64, data uint32) {
	addr = MSI_Base | uint64(handle&0x7fff)<<MSI_HandleShift | MSI_IF | MSI_SHV
	if handle&0x8000 != 0 {
		addr |= MSI_Handle15
	}
	return addr, 0
}

// writeIRTE writes entry i: the high qword first when it becomes present,
// the low (holding P) first when it goes.
func (u *Unit) writeIRTE(i int, lo, hi uint64) {
	pg := u.pages.Page(u.irt.base)
	e := pg[i*irteSize:]
	if lo&IRTE_P != 0 {
		binary.LittleEndian.PutUint64(e[8:], hi)
		binary.LittleEndian.PutUint64(e, lo)
	} else {
		binary.LittleEndian.PutUint64(e, lo)
		binary.LittleEndian.PutUint64(e[8:], hi)
	}
	u.flushPage(u.irt.base)
}

// invalidateIRTE drops entry i from the interrupt entry cache
// (index-selective, IM 0) and waits.
func (u *Unit) invalidateIRTE(i int) error {
	return u.submitAndWait(fmt.Sprintf("interrupt entry cache invalidation of entry %d", i),
		[2]uint64{InvDesc_IEC | InvDesc_IEC_Index | uint64(i)<<InvDesc_IEC_IIDX, 0})
}
