package amdvi

import (
	"encoding/binary"
	"fmt"

	"gohv/iommu"
)

// Interrupt remapping (AMD IOMMU specification 2.2.5): a device's
// interrupt request — a write into 0xFEE00000-0xFEEFFFFF — is checked
// against its device table entry's interrupt fields (2.2.2.1, the third
// qword): with IV clear it passes untranslated; with IV set, a fixed or
// arbitrated interrupt (MSI data bits 10:8 000b or 001b) is handled as
// IntCtl says — 00b target abort, 01b pass, 10b remapped through the
// device's own interrupt remapping table, whose entry is the MSI data's
// bits 10:0 — and the other message types (SMI, NMI, INIT, ExtInt, the
// LINT pins) pass only where the entry's pass bits allow.
//
// Once remapping is on (EnableInterruptRemapping), every device table
// entry has IV set: a device that holds no interrupt has IntCtl 00b and
// every pass bit clear, so each of its interrupt requests is aborted; a
// device given interrupts (AllocInterrupt) has IntCtl 10b over a table of
// 2048 entries (IntTabLen 1011b, the largest, 8 KiB, two contiguous
// pages) in which only its allocated entries are RemapEn. The table spans
// every index the data's eleven bits can name, so a device's request
// never reads past it — which matters on QEMU 7.2, whose amd-iommu does
// not check the index against IntTabLen. Entries are the 32-bit format
// (GAEn stays clear): RemapEn, fixed delivery, physical destination, the
// APIC ID and the vector. Only indices 0-255 are handed out (data bits
// 10:8 zero: a fixed message), and the device is programmed with address
// 0xFEE00000 and data = index.
//
// Every change of an entry is followed by INVALIDATE_INTERRUPT_TABLE for
// the device (2.4.5) and, where the device table entry changed,
// INVALIDATE_DEVTAB_ENTRY, then a COMPLETION_WAIT that is awaited.
//
// Whether a unit remaps is not in its registers: remapping is part of
// every AMD-Vi IOMMU, but the platform must route the I/O APIC's
// interrupts through it, which the IVHD says with a special device entry
// naming the I/O APIC (Config.InterruptRemapping; Linux turns remapping
// off without one). QEMU 7.2's amd-iommu writes that entry only when its
// remapping is on (intremap=on, or the default auto under TCG), and with
// it off refuses every request of a device whose entry has IV set.

// Device table entry, the third qword (bits 191:128; 2.2.2.1).
const (
	DTE2_IV            = 1 << 0                // interrupt map valid
	DTE2_IntTabLenShft = 1                     // IntTabLen, bits 4:1: 2^IntTabLen entries
	DTE2_IG            = 1 << 5                // ignore unmapped interrupts (no IO_PAGE_FAULT)
	DTE2_IntTableRoot  = 0x000f_ffff_ffff_ffc0 // Interrupt Table Root Pointer, bits 51:6 (128-byte aligned)
	DTE2_InitPass      = 1 << 56
	DTE2_EIntPass      = 1 << 57
	DTE2_NMIPass       = 1 << 58
	DTE2_IntCtlShift   = 60 // IntCtl, bits 61:60
	DTE2_Lint0Pass     = 1 << 62
	DTE2_Lint1Pass     = 1 << 63
	IntCtl_Abort       = 0
	IntCtl_Pass        = 1
	IntCtl_Remap       = 2

	intTabLen     = 11 // 2048 entries
	intTabEntries = 1 << intTabLen
	irteSize      = 4
	intTabPages   = intTabEntries * irteSize / 4096
	intAllocLimit = 256 // data bits 10:8 stay 000b: a fixed message
)

// Interrupt remapping table entry, 32-bit format (2.2.5.1, Table
// "Interrupt Remapping Table Entry Format", GuestMode 0).
const (
	IRTE_RemapEn    = 1 << 0
	IRTE_SupIOPF    = 1 << 1
	IRTE_IntTypeSh  = 2 // IntType, bits 4:2: 000b fixed, 001b arbitrated
	IRTE_RqEoi      = 1 << 5
	IRTE_DM         = 1 << 6 // destination mode: 1 logical
	IRTE_GuestMode  = 1 << 7
	IRTE_DestShift  = 8  // Destination, bits 15:8
	IRTE_VectorShft = 16 // Vector, bits 23:16

	// MSI data bits 10:8: the message type (delivery mode).
	MsgTypeShift = 8
	MsgFixed     = 0
	MsgArbitr    = 1
)

// intTable is one device's interrupt remapping table.
type intTable struct {
	base  uint64
	inUse [intAllocLimit]bool
	n     int
}

var _ iommu.Remapper = (*Unit)(nil)

// InterruptRemapping says whether remapping is on.
func (u *Unit) InterruptRemapping() (bool, string) {
	switch {
	case !u.Config.InterruptRemapping:
		return false, "the IVHD names no I/O APIC (QEMU: amd-iommu with intremap=off)"
	case !u.intRemap:
		return false, "not enabled"
	}
	return true, ""
}

// EnableInterruptRemapping sets IV (IntCtl 00b, nothing passed) in every
// device table entry and invalidates the unit's caches. BlockAll must
// have run.
func (u *Unit) EnableInterruptRemapping() error {
	if !u.Config.InterruptRemapping {
		_, why := u.InterruptRemapping()
		return fmt.Errorf("%s: interrupt remapping: %s: %w", u.Name(), why, iommu.ErrNoRemapping)
	}
	if u.devTab == 0 {
		return fmt.Errorf("%s: interrupt remapping: BlockAll has not run", u.Name())
	}
	u.intRemap = true
	for p := range u.devTabPages {
		pg := u.pages.Page(u.devTab + p*4096)
		for off := 0; off < len(pg); off += DTESize {
			id := uint16((p*4096 + uint64(off)) / DTESize)
			binary.LittleEndian.PutUint64(pg[off+16:], u.intDTE(id))
		}
		u.flush(u.devTab + p*4096)
	}
	if err := u.invalidateAll(); err != nil {
		u.intRemap = false
		return err
	}
	return nil
}

// intDTE is the third qword of device id's table entry: zero with
// remapping off; IV with IntCtl 00b for a device without a table; IV,
// IntCtl 10b and its table for one with.
func (u *Unit) intDTE(id uint16) uint64 {
	if !u.intRemap {
		return 0
	}
	t := u.intTables[id]
	if t == nil {
		return DTE2_IV | IntCtl_Abort<<DTE2_IntCtlShift
	}
	return DTE2_IV | intTabLen<<DTE2_IntTabLenShft | t.base&DTE2_IntTableRoot | IntCtl_Remap<<DTE2_IntCtlShift
}

// AllocInterrupt gives device source an entry of its table (made on its
// first interrupt) delivering t.
func (u *Unit) AllocInterrupt(source uint16, t iommu.Target) (iommu.Interrupt, error) {
	if on, why := u.InterruptRemapping(); !on {
		return iommu.Interrupt{}, fmt.Errorf("%s: interrupt for %s: %s: %w", u.Name(), sourceString(source), why, iommu.ErrNoRemapping)
	}
	if err := iommu.CheckTarget(t); err != nil {
		return iommu.Interrupt{}, fmt.Errorf("%s: interrupt for %s: %w", u.Name(), sourceString(source), err)
	}
	if !u.Covers(source) {
		return iommu.Interrupt{}, fmt.Errorf("%s: interrupt for %s: %w", u.Name(), sourceString(source), iommu.ErrOutside)
	}
	tbl, fresh := u.intTables[source], false
	if tbl == nil {
		base, err := u.pages.AllocPages(intTabPages)
		if err != nil {
			return iommu.Interrupt{}, fmt.Errorf("%s: interrupt table of %s: %w", u.Name(), sourceString(source), err)
		}
		if base&0xfff != 0 {
			return iommu.Interrupt{}, fmt.Errorf("%s: interrupt table page %#x is not 4 KiB aligned", u.Name(), base)
		}
		for p := range uint64(intTabPages) {
			clear(u.pages.Page(base + p*4096)[:])
			u.flush(base + p*4096)
		}
		tbl, fresh = &intTable{base: base}, true
	}
	idx := -1
	for i, used := range tbl.inUse {
		if !used {
			idx = i
			break
		}
	}
	if idx < 0 {
		return iommu.Interrupt{}, fmt.Errorf("%s: interrupt for %s: %d entries: %w", u.Name(), sourceString(source), intAllocLimit, iommu.ErrNoEntry)
	}
	u.writeIRTE(tbl, idx, IRTE(t))
	if fresh {
		if u.intTables == nil {
			u.intTables = map[uint16]*intTable{}
		}
		u.intTables[source] = tbl
		u.writeIntDTE(source)
	}
	if err := u.invalidateInterrupts(source, fresh); err != nil {
		u.writeIRTE(tbl, idx, 0)
		if fresh {
			delete(u.intTables, source)
			u.writeIntDTE(source)
		}
		return iommu.Interrupt{}, fmt.Errorf("interrupt for %s: %w", sourceString(source), err)
	}
	tbl.inUse[idx] = true
	tbl.n++
	return iommu.Interrupt{Source: source, Index: idx, Target: t, Address: MSIAddress, Data: uint32(idx)}, nil
}

// MSIAddress is the address a device with remapped interrupts sends to:
// the entry is in the data, and the destination fields are the entry's.
const MSIAddress = 0xfee0_0000

// FreeInterrupt clears the entry; the device's last one takes its table
// away (IntCtl 00b again).
func (u *Unit) FreeInterrupt(in iommu.Interrupt) error {
	tbl := u.intTables[in.Source]
	if tbl == nil || in.Index < 0 || in.Index >= intAllocLimit || !tbl.inUse[in.Index] {
		return fmt.Errorf("%s: free interrupt %d of %s: %w", u.Name(), in.Index, sourceString(in.Source), iommu.ErrNotAllocated)
	}
	u.writeIRTE(tbl, in.Index, 0)
	tbl.inUse[in.Index] = false
	tbl.n--
	last := tbl.n == 0
	if last {
		delete(u.intTables, in.Source)
		u.writeIntDTE(in.Source)
	}
	err := u.invalidateInterrupts(in.Source, last)
	if last && err == nil {
		for p := range uint64(intTabPages) {
			u.pages.FreePage(tbl.base + p*4096)
		}
	}
	if err != nil {
		return fmt.Errorf("free interrupt %d of %s: %w", in.Index, sourceString(in.Source), err)
	}
	return nil
}

// IRTE is the 32-bit entry delivering t: RemapEn, fixed, physical.
func IRTE(t iommu.Target) uint32 {
	return IRTE_RemapEn | uint32(t.APICID&0xff)<<IRTE_DestShift | uint32(t.Vector)<<IRTE_VectorShft
}

func (u *Unit) writeIRTE(t *intTable, i int, v uint32) {
	pa := t.base + uint64(i)*irteSize
	binary.LittleEndian.PutUint32(u.pages.Page(pa &^ 0xfff)[pa&0xfff:], v)
	u.flush(pa &^ 0xfff)
}

// writeIntDTE rewrites the third qword of a device's table entry.
func (u *Unit) writeIntDTE(id uint16) {
	pa := u.devTab + uint64(id)*DTESize
	binary.LittleEndian.PutUint64(u.pages.Page(pa &^ 0xfff)[pa&0xfff+16:], u.intDTE(id))
	u.flush(pa &^ 0xfff)
}

// invalidateInterrupts drops what the unit cached of the device's
// interrupt table (and of its table entry, when dte) and waits.
func (u *Unit) invalidateInterrupts(id uint16, dte bool) error {
	if dte {
		if err := u.submit("INVALIDATE_DEVTAB_ENTRY", CMD_INVALIDATE_DEVTAB<<CmdOpShift|uint64(id), 0); err != nil {
			return err
		}
	}
	if err := u.submit("INVALIDATE_INTERRUPT_TABLE", CMD_INVALIDATE_INT_TABLE<<CmdOpShift|uint64(id), 0); err != nil {
		return err
	}
	return u.completionWait()
}
