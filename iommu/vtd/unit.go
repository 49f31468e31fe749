package vtd

import (
	"errors"
	"fmt"

	"gohv/iommu"
)

// Pages gives a unit its table memory: physical, 4 KiB aligned pages the
// unit reads by DMA, and the caller's view of them. The image passes
// metal's page allocator and physical map; the tests a fake.
type Pages interface {
	// AllocPage returns the physical address of a zeroed page.
	AllocPage() (uint64, error)
	// Page is the page at physical address pa, as the CPU writes it.
	Page(pa uint64) *[4096]byte
	// FreePage returns a page AllocPage gave (a domain's table page
	// that is no longer used).
	FreePage(pa uint64)
	// Flush writes the page back from the CPU's caches to memory, for a
	// unit that does not snoop them (ECAP_REG.C clear).
	Flush(pa uint64)
}

// ErrTimeout is wrapped by every error of an operation the hardware did
// not complete in maxPolls register reads.
var ErrTimeout = errors.New("the unit did not complete the operation")

// maxPolls bounds every wait for the hardware: at the order of a
// microsecond per uncached register read, about a second on real
// hardware; the spec gives no completion time.
const maxPolls = 1 << 20

// Unit is one VT-d DMA remapping unit (a DMAR table's DRHD).
type Unit struct {
	Base uint64 // the register base the DRHD names
	Ver  uint32 // VER_REG
	Cap  Cap
	ECap ECap

	// CompatPasses, when set, says why the unit is known to pass
	// compatibility-format interrupts whatever GSTS_REG.CFIS says:
	// QEMU 7.2's intel-iommu, whose vtd_interrupt_remap_msi delivers them
	// untranslated and never reads GCMD_REG.CFI.
	CompatPasses string

	// Overflows counts the times the unit reported a primary fault
	// overflow (FSTS_REG.PFO): faults after a full set of records were
	// dropped unrecorded.
	Overflows int

	regs  Regs
	pages Pages
	root  uint64 // the root table's physical address, once allocated

	// Scope says which requester IDs the unit translates (its DRHD's
	// device scope); nil is every one (INCLUDE_PCI_ALL).
	Scope func(source uint16) bool

	contexts map[uint8]uint64   // bus → its context table, once a device on it is attached
	dids     map[uint16]bool    // domain IDs in use
	attached map[uint16]*Domain // requester ID → its domain
	router   iommu.FaultRouter
	q        *queue // the invalidation queue, once enabled (queue.go)
	irt      *irt   // the interrupt remapping table, once enabled (intremap.go)
}

var _ iommu.Unit = (*Unit)(nil)

// New reads the unit's version and capabilities. base is the DRHD's
// register base (for names and errors); regs its register file.
func New(base uint64, regs Regs, pages Pages) (*Unit, error) {
	u := &Unit{Base: base, regs: regs, pages: pages, Ver: regs.Read32(VER_REG)}
	if u.Ver == ^uint32(0) || u.Ver == 0 {
		return nil, fmt.Errorf("%s: VER_REG reads %#x: no remapping unit at its register base", u.Name(), u.Ver)
	}
	u.Cap = DecodeCap(regs.Read64(CAP_REG))
	u.ECap = DecodeECap(regs.Read64(ECAP_REG))
	if u.Cap.FROffset == 0 || u.ECap.IROOffset == 0 {
		return nil, fmt.Errorf("%s: CAP_REG %#x ECAP_REG %#x place the fault records or the IOTLB registers at offset 0", u.Name(), u.Cap.Raw, u.ECap.Raw)
	}
	return u, nil
}

// Name is the unit's name in the boot log.
func (u *Unit) Name() string { return fmt.Sprintf("vt-d unit %#x", u.Base) }

// BlockAll points the unit at a root table whose 256 entries are all
// not present and turns translation on (VT-d 10.4.4 to 10.4.8): every DMA
// request of every device behind the unit then faults with reason 1h
// before it reads or writes memory. The steps, in the spec's order:
// mask the fault event interrupt (faults are polled through Faults), set
// the root table pointer, invalidate the context cache and the IOTLB
// globally, enable translation. Invalidation is register-based (CCMD_REG,
// IOTLB_REG): two global invalidations at boot do not need the
// invalidation queue's memory and completion protocol, which device
// assignment's many page-selective invalidations will.
func (u *Unit) BlockAll() error {
	if u.regs.Read32(GSTS_REG)&GSTS_QIES != 0 && u.q == nil {
		return fmt.Errorf("%s: queued invalidation is enabled (GSTS_REG.QIES) on a queue gohv did not set up: register-based invalidation is not allowed", u.Name())
	}
	if u.root == 0 {
		pa, err := u.pages.AllocPage()
		if err != nil {
			return fmt.Errorf("%s: root table: %w", u.Name(), err)
		}
		if pa&0xfff != 0 {
			return fmt.Errorf("%s: root table page %#x is not 4 KiB aligned", u.Name(), pa)
		}
		u.root = pa
	}
	clear(u.pages.Page(u.root)[:]) // every root entry not present (9.1)
	if !u.ECap.C {
		u.pages.Flush(u.root)
	}

	// No fault event interrupt: the fault records are polled.
	u.regs.Write32(FECTL_REG, FECTL_IM)

	if u.Cap.RWBF { // the root table's writes must reach memory (6.8)
		if err := u.command("write buffer flush", GCMD_WBF, GSTS_WBFS, 0); err != nil {
			return err
		}
	}
	u.regs.Write64(RTADDR_REG, u.root&RTADDR_RTA|RTADDR_TTM_Legacy<<RTADDR_TTM_Shift)
	if err := u.command("set root table pointer", GCMD_SRTP, GSTS_RTPS, GSTS_RTPS); err != nil {
		return err
	}
	if err := u.invalidateContextCache(); err != nil {
		return err
	}
	if err := u.invalidateIOTLB(); err != nil {
		return err
	}
	if err := u.command("enable translation", GCMD_TE, GSTS_TES, GSTS_TES); err != nil {
		return err
	}
	if u.ECap.QI && u.q == nil {
		return u.enableQueue()
	}
	return nil
}

// Disable turns translation off (GCMD_REG.TE clear, GSTS_REG.TES clear).
// Interrupt remapping stays as it is.
func (u *Unit) Disable() error {
	return u.command("disable translation", 0, GSTS_TES, 0)
}

// command changes one GCMD_REG bit by 10.4.4's procedure: read GSTS_REG,
// clear its one-shot bits, set the one command bit (or, with set 0, clear
// the state bit status names), write GCMD_REG, and wait until the status
// bit reads want. Every other enable is written back as GSTS_REG reports
// it, so one command never changes another.
func (u *Unit) command(what string, set, status, want uint32) error {
	v := u.regs.Read32(GSTS_REG) &^ gcmdOneShot
	if set != 0 {
		v |= set
	} else {
		v &^= status
	}
	u.regs.Write32(GCMD_REG, v)
	var sts uint32
	for range maxPolls {
		if sts = u.regs.Read32(GSTS_REG); sts&status == want {
			return nil
		}
	}
	return fmt.Errorf("%s: %s: GSTS_REG %#x after %d reads: %w", u.Name(), what, sts, maxPolls, ErrTimeout)
}

// invalidateContextCache invalidates the whole context cache (10.4.7):
// CCMD_REG with ICC and global granularity, then wait for ICC to clear.
func (u *Unit) invalidateContextCache() error {
	return u.contextCommand("context-cache invalidation", CCMD_Global<<CCMD_CIRG_Shift)
}

// contextCommand writes a context-cache invalidation request (10.4.7;
// ICC is added) and waits, bounded, for ICC to clear and the actual
// granularity to be reported.
func (u *Unit) contextCommand(what string, cmd uint64) error {
	if u.queued() {
		return u.submitAndWait(what, contextDescriptor(cmd))
	}
	u.regs.Write64(CCMD_REG, CCMD_ICC|cmd)
	var v uint64
	for range maxPolls {
		if v = u.regs.Read64(CCMD_REG); v&CCMD_ICC == 0 {
			if v>>CCMD_CAIG_Shift&3 == 0 {
				return fmt.Errorf("%s: %s: CCMD_REG %#x reports no granularity done", u.Name(), what, v)
			}
			return nil
		}
	}
	return fmt.Errorf("%s: %s: CCMD_REG %#x after %d reads: %w", u.Name(), what, v, maxPolls, ErrTimeout)
}

// CAP_REG's drain bits (10.4.2): the unit can drain reads (DRD, bit 55)
// and writes (DWD, bit 54) on IOTLB invalidation.
const (
	capDRD = 1 << 55
	capDWD = 1 << 54
)

// invalidateIOTLB invalidates the whole IOTLB (10.4.8.1): IOTLB_REG with
// IVT and global granularity (draining reads and writes where the unit
// can), then wait for IVT to clear.
func (u *Unit) invalidateIOTLB() error {
	return u.iotlbCommand("IOTLB invalidation", IOTLB_Global<<IOTLB_IIRG_Shift, 0)
}

// iotlbCommand writes an IOTLB invalidation request (10.4.8.1; IVT and
// the drain bits the unit has are added), preceded for a page-selective
// one by the Invalidate Address Register iva (10.4.8.2), and waits,
// bounded, for IVT to clear and the actual granularity to be reported.
func (u *Unit) iotlbCommand(what string, cmd, iva uint64) error {
	off := u.ECap.IROOffset + IOTLB_REG
	cmd |= IOTLB_IVT
	if u.Cap.Raw&capDRD != 0 {
		cmd |= IOTLB_DR
	}
	if u.Cap.Raw&capDWD != 0 {
		cmd |= IOTLB_DW
	}
	if u.queued() {
		return u.submitAndWait(what, iotlbDescriptor(cmd, iva))
	}
	if cmd>>IOTLB_IIRG_Shift&3 == IOTLB_Page {
		u.regs.Write64(u.ECap.IROOffset+IVA_REG, iva)
	}
	u.regs.Write64(off, cmd)
	var v uint64
	for range maxPolls {
		if v = u.regs.Read64(off); v&IOTLB_IVT == 0 {
			if v>>IOTLB_IAIG_Shift&3 == 0 {
				return fmt.Errorf("%s: %s: IOTLB_REG %#x reports no granularity done", u.Name(), what, v)
			}
			return nil
		}
	}
	return fmt.Errorf("%s: %s: IOTLB_REG %#x after %d reads: %w", u.Name(), what, v, maxPolls, ErrTimeout)
}

// Faults reads the primary fault records (7.3.1, 10.4.9, 10.4.14): from
// FSTS_REG.FRI on, each record whose F bit is set is decoded and cleared
// (F is write-one-to-clear), wrapping at CAP_REG.NFR, until one is clear;
// then FSTS_REG's write-one-to-clear bits that were set are cleared, an
// overflow counted in Overflows.
func (u *Unit) Faults() []iommu.Fault {
	var out []iommu.Fault
	fsts := u.regs.Read32(FSTS_REG)
	if fsts&FSTS_PPF != 0 {
		i := int(fsts>>FSTS_FRI_Shift&0xff) % u.Cap.NFR
		for range u.Cap.NFR {
			off := u.Cap.FROffset + uint32(i)*frcdSize
			hi := u.regs.Read64(off + frcdHighOffset)
			f, ok := DecodeFault(u.regs.Read64(off), hi)
			if !ok {
				break
			}
			out = append(out, f)
			u.router.Route(f)
			u.regs.Write32(off+frcdFDwordOffset, uint32(FRCD_F>>32))
			i = (i + 1) % u.Cap.NFR
		}
	}
	if fsts&FSTS_PFO != 0 {
		u.Overflows++
	}
	if c := fsts & fstsClear; c != 0 {
		u.regs.Write32(FSTS_REG, c)
	}
	return out
}
