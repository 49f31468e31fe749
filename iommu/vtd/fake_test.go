package vtd

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// QEMU 7.2's intel-iommu as the image reads it on q35 with -device
// intel-iommu (hw/i386/intel_iommu_internal.h): one fault recording
// register at 0x220, the IOTLB registers at 0xf0, 39-bit address width,
// 65536 domains, queued invalidation, interrupt remapping, pass-through,
// no page-walk coherency.
const (
	qemuCap  = 0x00d2008c22260206
	qemuECap = 0x0000000000f00f4a
	qemuVer  = 0x10
)

// fakeUnit is a remapping unit's register file that behaves as VT-d 10.4
// says: GSTS_REG follows GCMD_REG (TES follows TE, SRTP latches
// RTADDR_REG and sets RTPS), ICC and IVT clear when the invalidation is
// done and report its granularity, FSTS_REG's error bits are
// write-one-to-clear and PPF follows the fault records' F bits. It keeps
// the order of operations in log and fails the test on a GCMD_REG write
// that changes more than one bit.
type fakeUnit struct {
	t     *testing.T
	pages *fakePages

	cap, ecap uint64
	gsts      uint32
	rtaddr    uint64 // as written
	root      uint64 // as latched by SRTP
	fectl     uint32
	fsts      uint32 // error bits and FRI; PPF is computed
	frcd      [][2]uint64
	next      int // the record the next fault goes to

	ctxValid, tlbValid bool   // nothing cached since the last invalidation
	iva                uint64 // IVA_REG as written
	// The caches a unit may keep (6.2.2, 6.2.3): context entries by
	// requester ID and translations by domain and page, filled by dma and
	// dropped only by the invalidations that cover them, so a missing
	// invalidation shows as a stale translation.
	ctxCache map[uint16][2]uint64
	tlb      map[tlbKey]tlbEntry
	// The invalidation queue (6.5.2): IQA_REG, head and tail.
	iqa, iqh, iqt uint64
	noWait        bool // wait descriptors never write their status
	// Interrupt remapping (chapter 5, 9.10): IRTA_REG as written and as
	// latched by SIRTP, and the interrupt entry cache (6.2.9) by index,
	// filled by msi and dropped only by IEC invalidations.
	irtaReg, irta uint64
	iec           map[uint16][2]uint64
	stuck         uint32 // a GSTS_REG bit that never follows its command
	log           []string
}

type tlbKey struct {
	did  uint16
	page uint64
}

type tlbEntry struct {
	hpa         uint64
	read, write bool
}

func newFakeUnit(t *testing.T) *fakeUnit {
	f := &fakeUnit{t: t, pages: newFakePages(), cap: qemuCap, ecap: qemuECap,
		ctxCache: map[uint16][2]uint64{}, tlb: map[tlbKey]tlbEntry{}, iec: map[uint16][2]uint64{}}
	f.frcd = make([][2]uint64, DecodeCap(qemuCap).NFR)
	return f
}

func (f *fakeUnit) iotlb() uint32 { return DecodeECap(f.ecap).IROOffset + IOTLB_REG }
func (f *fakeUnit) fro() uint32   { return DecodeCap(f.cap).FROffset }

func (f *fakeUnit) Read32(off uint32) uint32 {
	switch off {
	case VER_REG:
		return qemuVer
	case GSTS_REG:
		return f.gsts
	case FSTS_REG:
		v := f.fsts
		for _, r := range f.frcd {
			if r[1]&FRCD_F != 0 {
				v |= FSTS_PPF
			}
		}
		return v
	case FECTL_REG:
		return f.fectl
	}
	f.t.Errorf("unexpected 32-bit read at %#x", off)
	return 0
}

func (f *fakeUnit) Read64(off uint32) uint64 {
	switch off {
	case CAP_REG:
		return f.cap
	case ECAP_REG:
		return f.ecap
	case RTADDR_REG:
		return f.rtaddr
	case CCMD_REG:
		return CCMD_Global << CCMD_CAIG_Shift
	case IQH_REG:
		return f.iqh
	case IQT_REG:
		return f.iqt
	case IQA_REG:
		return f.iqa
	case IRTA_REG:
		return f.irtaReg
	case f.iotlb():
		return IOTLB_Global << IOTLB_IAIG_Shift
	}
	if r, half, ok := f.record(off); ok {
		return f.frcd[r][half]
	}
	f.t.Errorf("unexpected 64-bit read at %#x", off)
	return 0
}

// record maps an offset into the fault recording registers to a record
// and its low (0) or high (1) qword.
func (f *fakeUnit) record(off uint32) (int, int, bool) {
	if off < f.fro() || off >= f.fro()+uint32(len(f.frcd))*frcdSize || off%8 != 0 {
		return 0, 0, false
	}
	return int(off-f.fro()) / frcdSize, int(off-f.fro()) % frcdSize / 8, true
}

func (f *fakeUnit) Write32(off uint32, v uint32) {
	switch off {
	case GCMD_REG:
		f.gcmd(v)
		return
	case FECTL_REG:
		f.fectl = v & FECTL_IM
		f.log = append(f.log, fmt.Sprintf("FECTL %#x", v))
		return
	case FSTS_REG:
		f.fsts &^= v & fstsClear
		f.log = append(f.log, fmt.Sprintf("FSTS clear %#x", v))
		return
	}
	if off >= f.fro() && (off-f.fro())%frcdSize == frcdFDwordOffset {
		if r, _, ok := f.record(off - 4); ok && v&(FRCD_F>>32) != 0 {
			f.frcd[r][1] &^= FRCD_F
			f.log = append(f.log, fmt.Sprintf("FRCD%d clear", r))
			return
		}
	}
	f.t.Errorf("unexpected 32-bit write %#x at %#x", v, off)
}

func (f *fakeUnit) Write64(off uint32, v uint64) {
	switch off {
	case RTADDR_REG:
		f.rtaddr = v
		f.log = append(f.log, fmt.Sprintf("RTADDR %#x", v))
		return
	case CCMD_REG:
		if f.gsts&GSTS_QIES != 0 {
			f.t.Errorf("register-based context-cache invalidation with queued invalidation on (6.5.2)")
		}
		f.ccmd(v)
		return
	case IQA_REG:
		if f.gsts&GSTS_QIES != 0 {
			f.t.Errorf("IQA_REG written with QIE set")
		}
		f.iqa = v
		return
	case IQT_REG:
		f.iqt = v & IQ_Offset
		f.runQueue()
		return
	case IRTA_REG:
		f.irtaReg = v
		f.log = append(f.log, fmt.Sprintf("IRTA %#x", v))
		return
	case f.iotlb() - IOTLB_REG + IVA_REG:
		f.iva = v
		return
	case f.iotlb():
		if f.gsts&GSTS_QIES != 0 {
			f.t.Errorf("register-based IOTLB invalidation with queued invalidation on (6.5.2)")
		}
		f.iotlbInvalidate(v)
		return
	}
	f.t.Errorf("unexpected 64-bit write %#x at %#x", v, off)
}

// runQueue fetches descriptors from head to tail while QIE is set (6.5.2):
// context-cache and IOTLB invalidations as their registers would do
// them, wait descriptors writing their status; anything else stops the
// queue with FSTS_REG.IQE.
func (f *fakeUnit) runQueue() {
	if f.gsts&GSTS_QIES == 0 || f.fsts&FSTS_IQE != 0 {
		return
	}
	if f.iqa&0x800 != 0 || f.iqa&7 != 0 {
		f.t.Errorf("IQA_REG %#x: want 128-bit descriptors in one page", f.iqa)
	}
	for f.iqh != f.iqt {
		pg := f.pages.Page(f.iqa &^ 0xfff)
		lo, hi := binary.LittleEndian.Uint64(pg[f.iqh:]), binary.LittleEndian.Uint64(pg[f.iqh+8:])
		switch lo & 0xf {
		case InvDesc_CC:
			if lo&0xfffc_0000_0000_f1c0 != 0 || hi != 0 { // QEMU 7.2's VTD_INV_DESC_CC_RSVD
				f.t.Errorf("context-cache descriptor with reserved bits: %#x %#x", lo, hi)
			}
			g, did, sid, fm := lo>>InvDesc_G_Shift&3, lo>>InvDesc_DID&0xffff, lo>>InvDesc_SID&0xffff, lo>>InvDesc_FM&3
			f.ccmd(CCMD_ICC | g<<CCMD_CIRG_Shift | fm<<CCMD_FM_Shift | sid<<CCMD_SID_Shift | did)
		case InvDesc_IOTLB:
			if lo&0xffff_ffff_0000_ff00 != 0 || hi&0xf80 != 0 { // VTD_INV_DESC_IOTLB_RSVD_LO, _HI
				f.t.Errorf("IOTLB descriptor with reserved bits: %#x %#x", lo, hi)
			}
			v := uint64(IOTLB_IVT) | (lo>>InvDesc_G_Shift&3)<<IOTLB_IIRG_Shift | (lo>>InvDesc_DID&0xffff)<<IOTLB_DID_Shift
			f.iva = hi
			f.iotlbInvalidate(v)
		case InvDesc_IEC:
			if lo&0xffff_0000_07ff_f1e0 != 0 || hi != 0 { // QEMU 7.2's VTD_INV_DESC_IEC_RSVD
				f.t.Errorf("interrupt entry cache descriptor with reserved bits: %#x %#x", lo, hi)
			}
			if lo&InvDesc_IEC_Index == 0 {
				clear(f.iec)
				f.log = append(f.log, "IEC global")
			} else {
				first, n := uint16(lo>>InvDesc_IEC_IIDX), uint16(1)<<(lo>>InvDesc_IEC_IM&0x1f)
				for i := range f.iec {
					if i-first < n {
						delete(f.iec, i)
					}
				}
				f.log = append(f.log, fmt.Sprintf("IEC index %d+%d", first, n))
			}
		case InvDesc_Wait:
			if lo&0xffff_f180 != 0 { // VTD_INV_DESC_WAIT_RSVD_LO
				f.t.Errorf("wait descriptor with reserved bits: %#x", lo)
			}
			if lo&InvDesc_Wait_SW != 0 && !f.noWait {
				binary.LittleEndian.PutUint32(f.pages.Page(hi &^ 0xfff)[hi&0xffc:], uint32(lo>>InvDesc_Wait_SD))
			}
			f.log = append(f.log, "QI wait")
		default:
			f.fsts |= FSTS_IQE
			return
		}
		f.iqh = (f.iqh + invDescSize) % 4096
	}
}

// ccmd performs a context-cache invalidation (10.4.7): global, domain-
// or device-selective (function mask 0).
func (f *fakeUnit) ccmd(v uint64) {
	if v&CCMD_ICC == 0 {
		f.t.Errorf("CCMD_REG %#x without ICC", v)
	}
	did, sid := uint16(v), uint16(v>>CCMD_SID_Shift)
	switch g := v >> CCMD_CIRG_Shift & 3; g {
	case CCMD_Global:
		clear(f.ctxCache)
		f.ctxValid = true
		f.log = append(f.log, "CCMD global")
	case CCMD_Domain:
		for s, e := range f.ctxCache {
			if uint16(e[1]>>ContextEntry_DIDShift) == did {
				delete(f.ctxCache, s)
			}
		}
		f.log = append(f.log, fmt.Sprintf("CCMD domain %d", did))
	case CCMD_Device:
		if v>>CCMD_FM_Shift&3 != 0 {
			f.t.Errorf("CCMD_REG %#x: function mask", v)
		}
		delete(f.ctxCache, sid)
		f.log = append(f.log, fmt.Sprintf("CCMD device %s did %d", sourceString(sid), did))
	default:
		f.t.Errorf("CCMD_REG %#x: granularity %d", v, g)
	}
}

// iotlbInvalidate performs an IOTLB invalidation (10.4.8): global,
// domain-selective, or page-selective with IVA_REG's address and mask.
func (f *fakeUnit) iotlbInvalidate(v uint64) {
	if v&IOTLB_IVT == 0 {
		f.t.Errorf("IOTLB_REG %#x without IVT", v)
	}
	did := uint16(v >> IOTLB_DID_Shift)
	switch g := v >> IOTLB_IIRG_Shift & 3; g {
	case IOTLB_Global:
		if !f.ctxValid {
			f.t.Errorf("IOTLB invalidated before the context cache (VT-d 6.5)")
		}
		clear(f.tlb)
		f.tlbValid = true
		f.log = append(f.log, "IOTLB global")
	case IOTLB_Domain:
		for k := range f.tlb {
			if k.did == did {
				delete(f.tlb, k)
			}
		}
		f.log = append(f.log, fmt.Sprintf("IOTLB domain %d", did))
	case IOTLB_Page:
		if !DecodeCap(f.cap).PSI {
			f.t.Errorf("page-selective invalidation without CAP_REG.PSI")
		}
		am := f.iva & IVA_AM_Mask
		base, n := f.iva&^0xfff, uint64(1)<<am
		if base&(n*4096-1) != 0 || am > f.cap>>capMAMVShift&capMAMVMask {
			f.t.Errorf("IVA_REG %#x: address not aligned to 2^AM pages or AM above MAMV", f.iva)
		}
		for k := range f.tlb {
			if k.did == did && k.page >= base && k.page < base+n*4096 {
				delete(f.tlb, k)
			}
		}
		f.log = append(f.log, fmt.Sprintf("IOTLB page did %d %#x+%d", did, base, n))
	default:
		f.t.Errorf("IOTLB_REG %#x: granularity %d", v, g)
	}
}

// gcmd applies a GCMD_REG write as 10.4.4 describes, after checking
// that the write changes exactly one command against GSTS_REG.
func (f *fakeUnit) gcmd(v uint32) {
	const state = GCMD_TE | GCMD_EAFL | GCMD_QIE | GCMD_IRE | GCMD_CFI
	changed := (v ^ f.gsts) & state
	shots := v & gcmdOneShot
	if n := popcount(changed) + popcount(shots); n != 1 {
		f.t.Errorf("GCMD_REG %#x with GSTS_REG %#x changes %d commands, want exactly one (VT-d 10.4.4)", v, f.gsts, n)
	}
	switch {
	case shots&GCMD_SRTP != 0:
		f.root = f.rtaddr
		f.ctxValid, f.tlbValid = false, false
		if f.stuck != GSTS_RTPS {
			f.gsts |= GSTS_RTPS
		}
		f.log = append(f.log, "SRTP")
	case shots&GCMD_WBF != 0:
		f.log = append(f.log, "WBF")
	case changed&GCMD_TE != 0:
		if v&GCMD_TE != 0 {
			if !f.ctxValid || !f.tlbValid {
				f.t.Errorf("translation enabled with the caches not invalidated since SRTP")
			}
			f.log = append(f.log, "TE on")
		} else {
			f.log = append(f.log, "TE off")
		}
		if f.stuck != GSTS_TES {
			f.gsts = f.gsts&^GSTS_TES | v&GCMD_TE
		}
	case shots&GCMD_SIRTP != 0:
		f.irta = f.irtaReg
		clear(f.iec) // a new table: nothing cached of the old one is used
		f.gsts |= GSTS_IRTPS
		f.log = append(f.log, "SIRTP")
	case changed&GCMD_IRE != 0:
		if v&GCMD_IRE != 0 && f.gsts&GSTS_IRTPS == 0 {
			f.t.Errorf("IRE set before the table pointer (10.4.4)")
		}
		if v&GCMD_IRE != 0 && len(f.log) > 0 && f.log[len(f.log)-1] == "SIRTP" {
			f.t.Errorf("IRE set right after SIRTP: the interrupt entry cache was not invalidated (6.5.2.7)")
		}
		if f.stuck != GSTS_IRES {
			f.gsts = f.gsts&^GSTS_IRES | v&GCMD_IRE
		}
		f.log = append(f.log, fmt.Sprintf("IRE %v", v&GCMD_IRE != 0))
	case changed&GCMD_QIE != 0:
		f.gsts = f.gsts&^GSTS_QIES | v&GCMD_QIE
		f.iqh = 0
		if v&GCMD_QIE != 0 {
			f.log = append(f.log, "QIE on")
		}
	default:
		f.gsts = f.gsts&^changed | v&changed
		f.log = append(f.log, fmt.Sprintf("GCMD %#x", v))
	}
}

func popcount(v uint32) int {
	n := 0
	for ; v != 0; v &= v - 1 {
		n++
	}
	return n
}

// dma is a request from source sid to addr: whether it reaches memory.
func (f *fakeUnit) dma(sid uint16, addr uint64, write bool) bool {
	_, ok := f.translate(sid, addr, write)
	return ok
}

// translate is a request from source sid to addr as VT-d 3.4 and 9.8
// describe a legacy-mode unit: with translation off it reaches addr; on,
// the root entry of its bus (1h when not present), its context entry
// (cached; 2h when not present, 3h for a translation type or address
// width the unit does not do), then the second-level walk for the
// context's domain (cached in the IOTLB; 4h beyond the address width, 5h
// or 6h where an entry denies the access). A fault is recorded as 7.3.1
// describes: into the next record if it is free, else the overflow bit.
func (f *fakeUnit) translate(sid uint16, addr uint64, write bool) (uint64, bool) {
	if f.gsts&GSTS_TES == 0 {
		return addr, true
	}
	ce, ok := f.ctxCache[sid]
	if !ok {
		root := f.pages.Page(f.root &^ 0xfff)
		re := binary.LittleEndian.Uint64(root[int(sid>>8)*rootEntrySize:])
		if re&RootEntry_P == 0 {
			return 0, f.fault(sid, addr, write, 0x1)
		}
		ctx := f.pages.Page(re & RootEntry_CTP)
		ce = [2]uint64{binary.LittleEndian.Uint64(ctx[int(sid&0xff)*contextEntrySize:]), binary.LittleEndian.Uint64(ctx[int(sid&0xff)*contextEntrySize+8:])}
		if ce[0]&ContextEntry_P == 0 {
			return 0, f.fault(sid, addr, write, 0x2)
		}
		f.ctxCache[sid] = ce
	}
	did := uint16(ce[1] >> ContextEntry_DIDShift)
	aw := ce[1] & ContextEntry_AW
	if ce[0]&ContextEntry_TT != 0 || DecodeCap(f.cap).SAGAW&(1<<aw) == 0 {
		return 0, f.fault(sid, addr, write, 0x3)
	}
	levels := int(aw) + 2
	if addr>>(12+9*levels) != 0 {
		return 0, f.fault(sid, addr, write, 0x4)
	}
	reason := uint8(0x6)
	if write {
		reason = 0x5
	}
	if e, ok := f.tlb[tlbKey{did, addr &^ 0xfff}]; ok {
		if write && !e.write || !write && !e.read {
			return 0, f.fault(sid, addr, write, reason)
		}
		return e.hpa | addr&0xfff, true
	}
	table := ce[0] & ContextEntry_SLPT
	for level := levels; level >= 1; level-- {
		pg := f.pages.Page(table)
		e := binary.LittleEndian.Uint64(pg[(addr>>(12+9*(level-1))&0x1ff)*8:])
		if write && e&2 == 0 || !write && e&1 == 0 {
			return 0, f.fault(sid, addr, write, reason)
		}
		if e&(0x7f<<52) != 0 || level > 3 && e&(1<<7) != 0 || level == 1 && e&(1<<11) != 0 && !DecodeECap(f.ecap).SC {
			return 0, f.fault(sid, addr, write, 0xc)
		}
		if level == 1 || e&(1<<7) != 0 {
			size := uint64(1) << (12 + 9*(level-1))
			hpa := e&0x000f_ffff_ffff_f000&^(size-1) + addr&(size-1)
			f.tlb[tlbKey{did, addr &^ 0xfff}] = tlbEntry{hpa: hpa &^ 0xfff, read: e&1 != 0, write: e&2 != 0}
			return hpa, true
		}
		table = e & 0x000f_ffff_ffff_f000
	}
	panic("unreachable")
}

// fault records a fault (7.3.1) and returns false.
func (f *fakeUnit) fault(sid uint16, addr uint64, write bool, reason uint8) bool {
	if f.fsts&FSTS_PFO != 0 {
		return false
	}
	if f.frcd[f.next][1]&FRCD_F != 0 {
		f.fsts |= FSTS_PFO
		return false
	}
	hi := uint64(FRCD_F) | uint64(reason)<<FRCD_FR_Shift | uint64(sid)
	if !write {
		hi |= FRCD_T
	}
	if f.Read32(FSTS_REG)&FSTS_PPF == 0 {
		f.fsts = f.fsts&^(0xff<<FSTS_FRI_Shift) | uint32(f.next)<<FSTS_FRI_Shift
	}
	f.frcd[f.next] = [2]uint64{addr &^ 0xfff, hi}
	f.next = (f.next + 1) % len(f.frcd)
	return false
}

// msiResult is what an interrupt request came to.
type msiResult struct {
	delivered bool   // it reached a local APIC
	compat    bool   // passed untranslated (remapping off, or CFIS set)
	vector    uint8  // delivered: the vector
	dest      uint32 // delivered: the APIC ID
	reason    uint8  // blocked: the fault reason
}

// msi is an interrupt request — a write of data to addr in the interrupt
// window — from source sid, as chapter 5 describes: with IRES clear it
// passes as it is; a compatibility-format request (bit 4 clear) passes
// only with CFIS set, else faults 25h; a remappable one names handle
// (bits 19:5 and 2) plus the subhandle with SHV; beyond the table faults
// 21h, an entry not present 22h, reserved bits 24h, a source-id mismatch
// 26h; else the entry (cached in the IEC) is delivered, in xAPIC form
// (EIME clear). Faults are recorded with the index in FI bits 63:48.
func (f *fakeUnit) msi(sid uint16, addr uint64, data uint32) msiResult {
	if addr>>20 != 0xfee {
		f.t.Fatalf("msi at %#x: not in the interrupt window", addr)
	}
	if f.gsts&GSTS_IRES == 0 || addr&MSI_IF == 0 && f.gsts&GSTS_CFIS != 0 {
		return msiResult{delivered: true, compat: true, vector: uint8(data), dest: uint32(addr >> 12 & 0xff)}
	}
	block := func(idx uint16, reason uint8) msiResult {
		f.irFault(sid, idx, reason)
		return msiResult{reason: reason}
	}
	if addr&MSI_IF == 0 {
		return block(0, 0x25)
	}
	idx := uint16(addr>>MSI_HandleShift&0x7fff) | uint16(addr>>2&1)<<15
	if addr&MSI_SHV != 0 {
		if data>>16 != 0 {
			return block(idx, 0x20)
		}
		idx += uint16(data)
	}
	if uint64(idx) >= 1<<(f.irta&IRTA_S_Mask+1) {
		return block(idx, 0x21)
	}
	e, ok := f.iec[idx]
	if !ok {
		pg := f.pages.Page(f.irta&IRTA_IRTA + uint64(idx)*irteSize&^0xfff)
		off := (f.irta&IRTA_IRTA + uint64(idx)*irteSize) & 0xfff
		e = [2]uint64{binary.LittleEndian.Uint64(pg[off:]), binary.LittleEndian.Uint64(pg[off+8:])}
		if e[0]&IRTE_P == 0 {
			return block(idx, 0x22)
		}
		f.iec[idx] = e
	}
	if e[0]&(0x7<<12|0xff<<24) != 0 || e[1]>>20 != 0 || e[0]&IRTE_IM != 0 {
		return block(idx, 0x24)
	}
	if svt := e[1] >> IRTE_SVT_Shift & 3; svt == IRTE_SVT_All {
		mask := [4]uint16{0xffff, 0xfffb, 0xfff9, 0xfff8}[e[1]>>IRTE_SQ_Shift&3]
		if uint16(e[1])&mask != sid&mask {
			return block(idx, 0x26)
		}
	} else if svt != 0 {
		return block(idx, 0x26)
	}
	dest := uint32(e[0] >> IRTE_DST_Shift)
	if f.irta&IRTA_EIME == 0 {
		dest = dest >> irteXAPICShift & 0xff
	}
	return msiResult{delivered: true, vector: uint8(e[0] >> IRTE_V_Shift), dest: dest}
}

// irFault records an interrupt remapping fault (7.3.1, 10.4.14).
func (f *fakeUnit) irFault(sid, idx uint16, reason uint8) {
	if f.fsts&FSTS_PFO != 0 {
		return
	}
	if f.frcd[f.next][1]&FRCD_F != 0 {
		f.fsts |= FSTS_PFO
		return
	}
	if f.Read32(FSTS_REG)&FSTS_PPF == 0 {
		f.fsts = f.fsts&^(0xff<<FSTS_FRI_Shift) | uint32(f.next)<<FSTS_FRI_Shift
	}
	f.frcd[f.next] = [2]uint64{uint64(idx) << frcdIndexShift, FRCD_F | uint64(reason)<<FRCD_FR_Shift | uint64(sid)}
	f.next = (f.next + 1) % len(f.frcd)
}

// fakePages hands out page-aligned "physical" pages.
type fakePages struct {
	flushed []uint64
	next    uint64
	pages   map[uint64]*[4096]byte
	fail    bool
}

func newFakePages() *fakePages { return &fakePages{next: 0x7f000, pages: map[uint64]*[4096]byte{}} }

func (p *fakePages) AllocPage() (uint64, error) {
	if p.fail {
		return 0, fmt.Errorf("fake: out of pages")
	}
	p.next += 4096
	p.pages[p.next] = new([4096]byte)
	for i := range p.pages[p.next] {
		p.pages[p.next][i] = 0xa5 // the unit must clear what it uses
	}
	return p.next, nil
}

func (p *fakePages) Page(pa uint64) *[4096]byte {
	pg, ok := p.pages[pa]
	if !ok {
		panic(fmt.Sprintf("fake: page %#x not allocated", pa))
	}
	return pg
}

func (p *fakePages) Flush(pa uint64) { p.flushed = append(p.flushed, pa) }

func (p *fakePages) FreePage(pa uint64) {
	if _, ok := p.pages[pa]; !ok {
		panic(fmt.Sprintf("fake: free of page %#x not allocated", pa))
	}
	delete(p.pages, pa)
}
