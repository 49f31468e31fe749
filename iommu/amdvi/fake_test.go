package amdvi

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
)

// QEMU 7.2's amd-iommu Extended Feature Register (hw/i386/amd_iommu.h
// AMDVI_EXT_FEATURES: PreFSup, PPRSup, GTSup, IASup, GASup, HESup, HATS
// and GATS 10b).
const qemuEFR = 0x29d3

// fakeUnit is an AMD-Vi IOMMU's register file over fake memory that
// behaves as the spec says: the Status Register's Run bits follow the
// Control Register, commands are fetched from the command buffer between
// head and tail while IommuEn and CmdBufEn are set (the head advancing,
// COMPLETION_WAIT storing its data), a DMA request is checked against the
// device table, and events are written to the event log at its tail,
// wrapping, with an overflow when the log is full. It keeps the order of
// operations in log.
type fakeUnit struct {
	t   *testing.T
	mem *fakePages

	efr, ctl, sts           uint64
	devTab, cmdBase, evBase uint64
	cmdHead, cmdTail        uint64
	evHead, evTail          uint64
	qemuFlags               bool // encode IO_PAGE_FAULT's access as QEMU 7.2 does
	// qemuLog is QEMU 7.2's event log (amdvi_log_event): the Tail
	// Pointer register keeps what software wrote, and the log overflows
	// once its internal tail reaches 2^EventLen bytes (16 entries).
	qemuLog   bool
	evTailReg uint64
	stuck     uint64 // a Status Run bit that never follows
	noStore   bool   // COMPLETION_WAIT never stores
	log       []string
	// The caches a unit keeps (2.2.6): device table entries by device ID
	// and translations by DomainID and page, filled by dma and dropped
	// only by the commands that cover them, so a missing invalidation
	// shows as a stale translation.
	dteCache map[uint16][2]uint64
	tlb      map[tlbKey]tlbEntry
	// Interrupt remapping's caches (2.2.5): the device table entry's
	// interrupt qword by device ID and the table entries by device and
	// index, dropped by INVALIDATE_DEVTAB_ENTRY and
	// INVALIDATE_INTERRUPT_TABLE (and INVALIDATE_IOMMU_ALL).
	intDTECache map[uint16]uint64
	irteCache   map[[2]uint16]uint32
}

type tlbKey struct {
	dom  uint16
	page uint64
}

type tlbEntry struct {
	hpa    uint64
	ir, iw bool
}

func newFakeUnit(t *testing.T) *fakeUnit {
	return &fakeUnit{t: t, mem: newFakePages(), efr: qemuEFR, dteCache: map[uint16][2]uint64{}, tlb: map[tlbKey]tlbEntry{},
		intDTECache: map[uint16]uint64{}, irteCache: map[[2]uint16]uint32{}}
}

func (f *fakeUnit) Read64(off uint32) uint64 {
	switch off {
	case MMIO_DevTableBase:
		return f.devTab
	case MMIO_CmdBufBase:
		return f.cmdBase
	case MMIO_EventLogBase:
		return f.evBase
	case MMIO_Control:
		return f.ctl
	case MMIO_ExtFeature:
		return f.efr
	case MMIO_CmdBufHead:
		return f.cmdHead
	case MMIO_CmdBufTail:
		return f.cmdTail
	case MMIO_EventLogHead:
		return f.evHead
	case MMIO_EventLogTail:
		if f.qemuLog {
			return f.evTailReg
		}
		return f.evTail
	case MMIO_Status:
		return f.sts
	}
	f.t.Errorf("unexpected read at %#x", off)
	return 0
}

func (f *fakeUnit) Write64(off uint32, v uint64) {
	on := f.ctl&Ctl_IommuEn != 0
	switch off {
	case MMIO_DevTableBase, MMIO_CmdBufBase, MMIO_EventLogBase:
		if on {
			f.t.Errorf("base register %#x written with IommuEn set", off)
		}
		switch off {
		case MMIO_DevTableBase:
			f.devTab = v
		case MMIO_CmdBufBase:
			f.cmdBase = v
		case MMIO_EventLogBase:
			f.evBase = v
		}
		f.log = append(f.log, fmt.Sprintf("base %#x = %#x", off, v))
	case MMIO_Control:
		f.control(v)
	case MMIO_CmdBufHead:
		f.cmdHead = v & mmioHeadTailOffset
	case MMIO_CmdBufTail:
		f.cmdTail = v & mmioHeadTailOffset
		f.run()
	case MMIO_EventLogHead:
		f.evHead = v & mmioHeadTailOffset
	case MMIO_EventLogTail:
		if f.ctl&Ctl_EventLogEn != 0 && on {
			f.t.Errorf("event log tail written while the log runs")
		}
		f.evTail = v & mmioHeadTailOffset
		f.evTailReg = f.evTail
	case MMIO_Status:
		f.sts &^= v & stsClear
	default:
		f.t.Errorf("unexpected write %#x at %#x", v, off)
	}
}

func (f *fakeUnit) control(v uint64) {
	was := f.ctl
	f.ctl = v
	if v&Ctl_IommuEn != 0 && was&Ctl_IommuEn == 0 {
		if v&(Ctl_CmdBufEn|Ctl_EventLogEn) != Ctl_CmdBufEn|Ctl_EventLogEn {
			f.t.Errorf("IommuEn set before CmdBufEn and EventLogEn: %#x", v)
		}
		f.log = append(f.log, "IommuEn on")
	}
	if v&Ctl_IommuEn == 0 && was&Ctl_IommuEn != 0 {
		f.log = append(f.log, "IommuEn off")
	}
	if v&(Ctl_EventIntEn|Ctl_ComWaitIntEn) != 0 {
		f.t.Errorf("an interrupt enabled: control %#x", v)
	}
	on := v&Ctl_IommuEn != 0
	for _, b := range []struct{ en, run uint64 }{{Ctl_CmdBufEn, Sts_CmdBufRun}, {Ctl_EventLogEn, Sts_EventLogRun}} {
		if f.stuck == b.run {
			continue
		}
		if on && v&b.en != 0 {
			f.sts |= b.run
		} else {
			f.sts &^= b.run
		}
	}
	f.run()
}

func (f *fakeUnit) cmdLen() uint64 { return 16 << (f.cmdBase >> BufLenShift & 0xf) }
func (f *fakeUnit) evLen() uint64  { return 16 << (f.evBase >> BufLenShift & 0xf) }

// run executes the commands from head to tail (2.4).
func (f *fakeUnit) run() {
	if f.sts&Sts_CmdBufRun == 0 {
		return
	}
	for f.cmdHead != f.cmdTail {
		pa := f.cmdBase&BufBase + f.cmdHead
		lo, hi := f.mem.read64(pa), f.mem.read64(pa+8)
		switch op := lo >> CmdOpShift; op {
		case CMD_COMPLETION_WAIT:
			if lo&CW_S != 0 && !f.noStore {
				f.mem.write64(lo&CW_StoreAddr, hi)
			}
			f.log = append(f.log, fmt.Sprintf("COMPLETION_WAIT %#x", hi))
		case CMD_INVALIDATE_DEVTAB:
			if lo>>16&(1<<44-1) != 0 || hi != 0 {
				f.t.Errorf("INVALIDATE_DEVTAB_ENTRY with reserved bits: %#x %#x", lo, hi)
			}
			delete(f.dteCache, uint16(lo))
			delete(f.intDTECache, uint16(lo))
			f.log = append(f.log, fmt.Sprintf("INVALIDATE_DEVTAB_ENTRY %#x", lo&0xffff))
		case CMD_INVALIDATE_INT_TABLE:
			if lo>>16&(1<<44-1) != 0 || hi != 0 { // QEMU 7.2's amdvi_inval_inttable
				f.t.Errorf("INVALIDATE_INTERRUPT_TABLE with reserved bits: %#x %#x", lo, hi)
			}
			for k := range f.irteCache {
				if k[0] == uint16(lo) {
					delete(f.irteCache, k)
				}
			}
			f.log = append(f.log, fmt.Sprintf("INVALIDATE_INTERRUPT_TABLE %#x", lo&0xffff))
		case CMD_INVALIDATE_IOMMU_PAGE:
			// QEMU 7.2's reserved-bit checks (amdvi_inval_pages).
			if lo>>20&0xfff != 0 || lo>>48&0xfff != 0 || hi>>3&0x1ff != 0 {
				f.t.Errorf("INVALIDATE_IOMMU_PAGES with reserved bits: %#x %#x", lo, hi)
			}
			dom := uint16(lo >> InvPages_DomainShift)
			first, n := hi&PTE_Addr, uint64(1)
			if hi&InvPages_S != 0 { // the lowest clear bit from 12 gives the size
				k := 1
				for hi>>(12+k-1)&1 == 1 && k < 52 {
					k++
				}
				n = 1 << k
				first &^= n*4096 - 1
			}
			all := n >= 1<<52
			for key := range f.tlb {
				if key.dom == dom && (all || key.page >= first && key.page-first < n*4096) {
					delete(f.tlb, key)
				}
			}
			if all {
				f.log = append(f.log, fmt.Sprintf("INVALIDATE_IOMMU_PAGES %d all", dom))
			} else {
				f.log = append(f.log, fmt.Sprintf("INVALIDATE_IOMMU_PAGES %d %#x+%d", dom, first, n))
			}
		case CMD_INVALIDATE_IOMMU_ALL:
			if f.efr&EFR_IASup == 0 {
				f.event(ILLEGAL_COMMAND_ERROR<<EventCodeShift, pa)
			}
			clear(f.dteCache)
			clear(f.tlb)
			clear(f.intDTECache)
			clear(f.irteCache)
			f.log = append(f.log, "INVALIDATE_IOMMU_ALL")
		default:
			f.event(ILLEGAL_COMMAND_ERROR<<EventCodeShift, pa)
		}
		f.cmdHead = (f.cmdHead + CmdSize) % f.cmdLen()
	}
}

// event writes one entry at the event log's tail, or sets the overflow
// bit when the log is full (2.5).
func (f *fakeUnit) event(lo, hi uint64) {
	if f.sts&Sts_EventLogRun == 0 || f.sts&Sts_EventOverflow != 0 {
		return
	}
	next := (f.evTail + EventSize) % f.evLen()
	if f.qemuLog && f.evTail >= f.evLen()/EventSize {
		f.sts |= Sts_EventOverflow
		return
	}
	if f.qemuLog {
		next = f.evTail + EventSize
	}
	if next == f.evHead {
		f.sts |= Sts_EventOverflow
		return
	}
	f.mem.write64(f.evBase&BufBase+f.evTail, lo)
	f.mem.write64(f.evBase&BufBase+f.evTail+8, hi)
	f.evTail = next
	f.sts |= Sts_EventLogInt
}

// dma is a request from device id to addr: true if it reaches memory.
func (f *fakeUnit) dma(id uint16, addr uint64, write bool) bool {
	_, ok := f.translate(id, addr, write)
	return ok
}

// translate is a request from device id to addr as 2.2 describes for
// host translation: the device table entry (cached), refused with an
// IO_PAGE_FAULT unless it and every entry of the walk from its Mode's
// level down grant the access and are present (the translation cached by
// DomainID); a PTE's page size is its level's. A DTE with V or TV clear
// would let the request through: BlockAll never writes one.
func (f *fakeUnit) translate(id uint16, addr uint64, write bool) (uint64, bool) {
	if f.ctl&Ctl_IommuEn == 0 {
		return addr, true
	}
	if entries := (f.devTab&DevTabSizeMax + 1) * 4096 / DTESize; uint64(id) >= entries {
		f.event(ILLEGAL_DEV_TABLE_ENTRY<<EventCodeShift|uint64(id), addr)
		return 0, false
	}
	dte, ok := f.dteCache[id]
	if !ok {
		pa := f.devTab&DevTabBase + uint64(id)*DTESize
		dte = [2]uint64{f.mem.read64(pa), f.mem.read64(pa + 8)}
		f.dteCache[id] = dte
	}
	if dte[0]&DTE_V == 0 || dte[0]&DTE_TV == 0 {
		f.t.Errorf("device %#x: DTE %#x lets it through", id, dte[0])
		return addr, true
	}
	perm := uint64(DTE_IR)
	if write {
		perm = DTE_IW
	}
	dom := uint16(dte[1])
	if e, ok := f.tlb[tlbKey{dom, addr &^ 0xfff}]; ok && (write && e.iw || !write && e.ir) {
		return e.hpa | addr&0xfff, true
	}
	e, level := dte[0], int(dte[0]>>DTE_ModeShift&7)
	for {
		if e&perm == 0 || level != 0 && e&PTE_PR == 0 && e != dte[0] {
			break
		}
		if level == 0 || level == 7 {
			f.t.Errorf("device %#x: walk reached Next Level %d", id, level)
			break
		}
		e = f.mem.read64(e&PTE_Addr + (addr>>(12+9*(level-1))&0x1ff)*8)
		if e&PTE_PR == 0 || e&perm == 0 {
			break
		}
		if next := int(e >> PTE_NextShift & 7); next == 0 || level == 1 {
			size := uint64(1) << (12 + 9*(level-1))
			hpa := e&PTE_Addr&^(size-1) + addr&(size-1)
			f.tlb[tlbKey{dom, addr &^ 0xfff}] = tlbEntry{hpa: hpa &^ 0xfff, ir: e&PTE_IR != 0, iw: e&PTE_IW != 0}
			return hpa, true
		} else if next != level-1 {
			f.t.Errorf("device %#x: a level-%d PDE names Next Level %d", id, level, next)
			break
		}
		level--
	}
	var flags uint64
	switch {
	case f.qemuFlags && write:
		flags = EvFlag_I | EvFlag_NX
	case f.qemuFlags:
		flags = EvFlag_I | EvFlag_GN
	case write:
		flags = EvFlag_RW
	}
	f.event(IO_PAGE_FAULT<<EventCodeShift|uint64(dom)<<EventDomainShift|flags<<EventFlagsShift|uint64(id), addr)
	return 0, false
}

// msiResult is what an interrupt request came to.
type msiResult struct {
	delivered bool   // it reached a local APIC
	passed    bool   // untranslated (IV clear, or IntCtl or a pass bit let it)
	vector    uint8  // delivered: the vector
	dest      uint32 // delivered: the APIC ID
	why       string // blocked: why
}

// msi is an interrupt request — data written to addr in the interrupt
// window — from device id, as 2.2.5 describes: untranslated with the unit
// off or IV clear; else by the message type in data bits 10:8: fixed and
// arbitrated as IntCtl says (00b target abort, 01b pass, 10b remap: the
// entry at data bits 10:0, beyond 2^IntTabLen or with RemapEn clear an
// IO_PAGE_FAULT with I set unless IG or SupIOPF, GuestMode or an IntType
// above 001b refused), NMI, INIT and ExtInt only with their pass bit, SMI
// and the rest refused. The device table entry's interrupt qword and the
// table entries are cached as the unit may (2.2.6).
func (f *fakeUnit) msi(id uint16, addr uint64, data uint32) msiResult {
	if addr < intrAddrFirst || addr > intrAddrLast {
		f.t.Fatalf("msi at %#x: not in the interrupt window", addr)
	}
	pass := msiResult{delivered: true, passed: true, vector: uint8(data), dest: uint32(addr >> 12 & 0xff)}
	if f.ctl&Ctl_IommuEn == 0 {
		return pass
	}
	q2, ok := f.intDTECache[id]
	if !ok {
		q2 = f.mem.read64(f.devTab&DevTabBase + uint64(id)*DTESize + 16)
		f.intDTECache[id] = q2
	}
	if q2&DTE2_IV == 0 {
		return pass
	}
	switch mt := data >> MsgTypeShift & 7; mt {
	case MsgFixed, MsgArbitr:
	case 4: // NMI
		if q2&DTE2_NMIPass != 0 {
			return pass
		}
		return msiResult{why: "NMI not passed"}
	case 5: // INIT
		if q2&DTE2_InitPass != 0 {
			return pass
		}
		return msiResult{why: "INIT not passed"}
	case 7: // ExtInt
		if q2&DTE2_EIntPass != 0 {
			return pass
		}
		return msiResult{why: "ExtInt not passed"}
	default:
		return msiResult{why: fmt.Sprintf("message type %d refused", mt)}
	}
	switch ctl := q2 >> DTE2_IntCtlShift & 3; ctl {
	case IntCtl_Abort:
		return msiResult{why: "IntCtl target abort"}
	case IntCtl_Pass:
		return pass
	case IntCtl_Remap:
	default:
		return msiResult{why: "IntCtl reserved"}
	}
	idx := uint16(data & 0x7ff)
	fault := func(why string) msiResult {
		if q2&DTE2_IG == 0 {
			f.event(IO_PAGE_FAULT<<EventCodeShift|uint64(EvFlag_I|EvFlag_RW)<<EventFlagsShift|uint64(id), addr)
		}
		return msiResult{why: why}
	}
	if uint64(idx) >= 1<<(q2>>DTE2_IntTabLenShft&0xf) {
		return fault("index beyond IntTabLen")
	}
	e, ok := f.irteCache[[2]uint16{id, idx}]
	if !ok {
		pa := q2&DTE2_IntTableRoot + uint64(idx)*irteSize
		e = binary.LittleEndian.Uint32(f.mem.Page(pa)[pa&0xfff:])
		f.irteCache[[2]uint16{id, idx}] = e
	}
	switch {
	case e&IRTE_RemapEn == 0 && e&IRTE_SupIOPF != 0:
		return msiResult{why: "RemapEn clear"}
	case e&IRTE_RemapEn == 0:
		return fault("RemapEn clear")
	case e&IRTE_GuestMode != 0 || e>>IRTE_IntTypeSh&7 > MsgArbitr:
		return msiResult{why: "entry refused"}
	}
	return msiResult{delivered: true, vector: uint8(e >> IRTE_VectorShft), dest: e >> IRTE_DestShift & 0xff}
}

// fakePages is physical memory handed out in contiguous runs.
type fakePages struct {
	flushed map[uint64]int
	next    uint64
	pages   map[uint64]*[4096]byte
	fail    bool
}

func newFakePages() *fakePages {
	return &fakePages{next: 0x100000, pages: map[uint64]*[4096]byte{}, flushed: map[uint64]int{}}
}

func (p *fakePages) AllocPages(n int) (uint64, error) {
	if p.fail {
		return 0, fmt.Errorf("fake: out of pages")
	}
	pa := p.next
	for i := range n {
		pg := new([4096]byte)
		for j := range pg {
			pg[j] = 0xa5 // the unit must write all it uses
		}
		p.pages[pa+uint64(i)*4096] = pg
	}
	p.next += uint64(n+1) * 4096 // a gap: runs are not adjacent
	return pa, nil
}

func (p *fakePages) Page(pa uint64) *[4096]byte {
	pg, ok := p.pages[pa&^0xfff]
	if !ok {
		panic(fmt.Sprintf("fake: page %#x not allocated", pa))
	}
	return pg
}

func (p *fakePages) Flush(pa uint64) { p.flushed[pa]++ }

func (p *fakePages) FreePage(pa uint64) {
	if _, ok := p.pages[pa]; !ok {
		panic(fmt.Sprintf("fake: free of page %#x not allocated", pa))
	}
	delete(p.pages, pa)
}

func (p *fakePages) read64(pa uint64) uint64 {
	return binary.LittleEndian.Uint64(p.Page(pa)[pa&0xfff:])
}

func (p *fakePages) write64(pa, v uint64) {
	binary.LittleEndian.PutUint64(p.Page(pa)[pa&0xfff:], v)
}

func (f *fakeUnit) commands() []string {
	return slices.DeleteFunc(slices.Clone(f.log), func(s string) bool { return s[0] == 'b' })
}
