package amdvi

import (
	"encoding/binary"
	"errors"
	"fmt"

	"gohv/iommu"
)

// Pages gives a unit its table memory: physical, 4 KiB aligned, zeroed
// pages the unit reads and writes by DMA, and the caller's view of them.
// The image passes metal's page allocator and physical map; the tests a
// fake.
type Pages interface {
	// AllocPages returns the physical address of n physically
	// contiguous zeroed pages.
	AllocPages(n int) (uint64, error)
	// Page is the page at physical address pa, as the CPU reads and
	// writes it.
	Page(pa uint64) *[4096]byte
	// FreePage returns one page AllocPages gave (a domain's table page
	// that is no longer used).
	FreePage(pa uint64)
	// Flush writes the page back from the CPU's caches to memory and
	// drops it from them, for a unit whose accesses do not snoop them.
	Flush(pa uint64)
}

// ErrTimeout is wrapped by every error of an operation the hardware did
// not complete in maxPolls reads.
var ErrTimeout = errors.New("the unit did not complete the operation")

// maxPolls bounds every wait for the hardware: at the order of a
// microsecond per uncached read, about a second on real hardware; the
// spec gives no completion time.
const maxPolls = 1 << 20

// Config is what the IVRS's IVHD says of a unit.
type Config struct {
	Base     uint64 // IOMMU Base Address: the MMIO registers
	DeviceID uint16 // the IOMMU's own PCI function
	Segment  uint16
	// LastDeviceID is the highest device ID the IVHD names (its device
	// entries, the unit's own ID): the device table covers every device
	// ID up to the end of its bus.
	LastDeviceID uint16
	// Coherent is the IVHD's Coherent flag: the unit's accesses to its
	// tables snoop the CPU's caches. Without it the tables are flushed
	// after writing and before reading.
	Coherent bool
	// NoEventLog says the unit is known to write no events: QEMU 7.2's
	// amd-iommu, whose amdvi_log_event returns before writing any
	// (amdvi_test_mask ORs the Status Register with EventOverflow and
	// tests the result, which is never zero). Its requests are refused
	// all the same; Faults just has nothing to read.
	NoEventLog bool
	// InterruptRemapping says the platform routes interrupts through the
	// unit: the IVHD names the I/O APIC as a special device (intremap.go).
	InterruptRemapping bool
}

// The command buffer and the event log are one 4 KiB page each: 256
// entries of 16 bytes (ComLen = EventLen = 1000b, the smallest). gohv
// issues a handful of commands at a time and polls the log.
const (
	bufEntries = 1 << BufLenMin
	bufBytes   = bufEntries * CmdSize
)

// Unit is one AMD-Vi IOMMU.
type Unit struct {
	Config
	EFR uint64 // the Extended Feature Register

	// Overflows counts the times the event log overflowed
	// (Sts_EventOverflow): events after a full log were dropped.
	Overflows int
	// StaleTail is set once the unit was seen writing an event without
	// advancing the Event Log Tail Pointer (QEMU 7.2); see Faults.
	StaleTail bool

	regs  Regs
	pages Pages

	devTab, devTabPages uint64 // the device table and its size in pages
	ptRoot              uint64 // the empty page-table root every entry names
	cmdBuf, eventLog    uint64
	sem                 uint64 // COMPLETION_WAIT's store target
	cmdTail             uint64 // byte offset of the next command
	waits               uint64 // COMPLETION_WAIT sequence number

	intRemap  bool                 // EnableInterruptRemapping ran (intremap.go)
	intTables map[uint16]*intTable // device ID → its interrupt remapping table

	dids     map[uint16]bool    // DomainIDs in use
	attached map[uint16]*Domain // device ID → its domain
	router   iommu.FaultRouter
}

var _ iommu.Unit = (*Unit)(nil)

// New reads the unit's Extended Feature Register and checks that a unit
// answers at its base.
func New(c Config, regs Regs, pages Pages) (*Unit, error) {
	u := &Unit{Config: c, regs: regs, pages: pages}
	if ctl := regs.Read64(MMIO_Control); ctl == ^uint64(0) {
		return nil, fmt.Errorf("%s: IOMMU Control Register reads %#x: no IOMMU at its base address", u.Name(), ctl)
	}
	u.EFR = regs.Read64(MMIO_ExtFeature)
	return u, nil
}

// RecordsFaults says whether Faults can report the unit's faults, and if
// not, why.
func (u *Unit) RecordsFaults() (bool, string) {
	if u.NoEventLog {
		return false, "QEMU 7.2's amd-iommu writes no event log entries"
	}
	return true, ""
}

// Name is the unit's name in the boot log.
func (u *Unit) Name() string { return fmt.Sprintf("amd-vi unit %#x", u.Base) }

// DeviceTableEntries is the number of device table entries BlockAll
// writes: every device ID up to the end of LastDeviceID's bus.
func (u *Unit) DeviceTableEntries() int {
	return (int(u.LastDeviceID>>8) + 1) * devicesPerBus
}

// BlockAll writes a device table whose every entry denies all DMA, points
// the unit at it and at a command buffer and an event log, enables
// EventLogEn and CmdBufEn and then IommuEn, and invalidates the unit's
// caches, waiting for a COMPLETION_WAIT's store (see the package
// invariants). The table is allocated once and kept for the unit's life.
func (u *Unit) BlockAll() error {
	if err := u.stop(); err != nil {
		return err
	}
	if err := u.alloc(); err != nil {
		return err
	}
	dte := uint64(DTE_V|DTE_TV|dteBlockMode<<DTE_ModeShift) | u.ptRoot&DTE_PtRoot // IR = IW = 0
	for p := range u.devTabPages {
		pg := u.pages.Page(u.devTab + p*4096)
		clear(pg[:])
		for off := 0; off < len(pg); off += DTESize {
			binary.LittleEndian.PutUint64(pg[off:], dte)
			binary.LittleEndian.PutUint64(pg[off+16:], u.intDTE(uint16((p*4096+uint64(off))/DTESize)))
		}
		u.flush(u.devTab + p*4096)
	}
	clear(u.pages.Page(u.ptRoot)[:])
	u.flush(u.ptRoot)
	clear(u.pages.Page(u.eventLog)[:])
	u.flush(u.eventLog)

	u.regs.Write64(MMIO_DevTableBase, u.devTab&DevTabBase|(u.devTabPages-1))
	u.regs.Write64(MMIO_CmdBufBase, u.cmdBuf&BufBase|BufLenMin<<BufLenShift)
	u.regs.Write64(MMIO_EventLogBase, u.eventLog&BufBase|BufLenMin<<BufLenShift)
	u.regs.Write64(MMIO_CmdBufHead, 0)
	u.regs.Write64(MMIO_CmdBufTail, 0)
	u.regs.Write64(MMIO_EventLogHead, 0)
	u.regs.Write64(MMIO_EventLogTail, 0)
	u.cmdTail = 0
	u.regs.Write64(MMIO_Status, stsClear)

	ctl := u.regs.Read64(MMIO_Control) &^ (Ctl_EventIntEn | Ctl_ComWaitIntEn | Ctl_PPRIntEn)
	ctl |= Ctl_EventLogEn | Ctl_CmdBufEn
	u.regs.Write64(MMIO_Control, ctl)
	u.regs.Write64(MMIO_Control, ctl|Ctl_IommuEn)
	if err := u.waitStatus("enable the command buffer and the event log", Sts_CmdBufRun|Sts_EventLogRun, Sts_CmdBufRun|Sts_EventLogRun); err != nil {
		return err
	}
	return u.invalidateAll()
}

// Disable turns the unit off (IommuEn, CmdBufEn, EventLogEn clear) and
// waits until the command buffer and the event log stop: devices reach
// memory untranslated. The events already logged stay for Faults.
func (u *Unit) Disable() error { return u.stop() }

func (u *Unit) stop() error {
	ctl := u.regs.Read64(MMIO_Control)
	const on = Ctl_IommuEn | Ctl_CmdBufEn | Ctl_EventLogEn
	if ctl&on == 0 {
		return nil
	}
	u.regs.Write64(MMIO_Control, ctl&^on)
	return u.waitStatus("disable", Sts_CmdBufRun|Sts_EventLogRun, 0)
}

// alloc allocates the tables on the first BlockAll.
func (u *Unit) alloc() error {
	if u.devTab != 0 {
		return nil
	}
	n := uint64(u.DeviceTableEntries()) * DTESize / 4096
	if n == 0 || n-1 > DevTabSizeMax {
		return fmt.Errorf("%s: device table of %d pages does not fit the Size field", u.Name(), n)
	}
	var err error
	one := func(what string) uint64 {
		if err != nil {
			return 0
		}
		var pa uint64
		if pa, err = u.pages.AllocPages(1); err != nil {
			err = fmt.Errorf("%s: %s: %w", u.Name(), what, err)
		}
		return pa
	}
	devTab, err := u.pages.AllocPages(int(n))
	if err != nil {
		return fmt.Errorf("%s: device table of %d contiguous pages: %w", u.Name(), n, err)
	}
	u.ptRoot = one("page-table root")
	u.cmdBuf = one("command buffer")
	u.eventLog = one("event log")
	u.sem = one("completion-wait store")
	if err != nil {
		return err
	}
	for _, pa := range []uint64{devTab, u.ptRoot, u.cmdBuf, u.eventLog, u.sem} {
		if pa&0xfff != 0 {
			return fmt.Errorf("%s: table page %#x is not 4 KiB aligned", u.Name(), pa)
		}
	}
	u.devTab, u.devTabPages = devTab, n
	return nil
}

func (u *Unit) flush(pa uint64) {
	if !u.Coherent {
		u.pages.Flush(pa)
	}
}

// waitStatus waits until the Status Register's mask bits read want.
func (u *Unit) waitStatus(what string, mask, want uint64) error {
	var sts uint64
	for range maxPolls {
		if sts = u.regs.Read64(MMIO_Status); sts&mask == want {
			return nil
		}
	}
	return fmt.Errorf("%s: %s: IOMMU Status Register %#x after %d reads: %w", u.Name(), what, sts, maxPolls, ErrTimeout)
}

// invalidateAll drops everything the unit may have cached of the device
// table: INVALIDATE_IOMMU_ALL where EFR.IASup says the unit has it, else
// INVALIDATE_DEVTAB_ENTRY for each device ID of the table; then a
// COMPLETION_WAIT, waited for.
func (u *Unit) invalidateAll() error {
	if u.EFR&EFR_IASup != 0 {
		if err := u.submit("INVALIDATE_IOMMU_ALL", CMD_INVALIDATE_IOMMU_ALL<<CmdOpShift, 0); err != nil {
			return err
		}
	} else {
		for id := range u.DeviceTableEntries() {
			if err := u.submit("INVALIDATE_DEVTAB_ENTRY", CMD_INVALIDATE_DEVTAB<<CmdOpShift|uint64(id), 0); err != nil {
				return err
			}
		}
	}
	return u.completionWait()
}

// submit writes one command at the tail of the command buffer, waiting
// (bounded) while the buffer is full, and advances the Command Buffer
// Tail Pointer Register (2.4: the unit fetches commands from head to
// tail and advances the head).
func (u *Unit) submit(what string, lo, hi uint64) error {
	next := (u.cmdTail + CmdSize) % bufBytes
	var head uint64
	for i := 0; ; i++ {
		head = u.regs.Read64(MMIO_CmdBufHead) & mmioHeadTailOffset % bufBytes
		if head != next {
			break
		}
		if i == maxPolls {
			return fmt.Errorf("%s: %s: command buffer full (head %#x, tail %#x) after %d reads: %w", u.Name(), what, head, u.cmdTail, maxPolls, ErrTimeout)
		}
	}
	pg := u.pages.Page(u.cmdBuf)
	binary.LittleEndian.PutUint64(pg[u.cmdTail:], lo)
	binary.LittleEndian.PutUint64(pg[u.cmdTail+8:], hi)
	u.flush(u.cmdBuf)
	u.cmdTail = next
	u.regs.Write64(MMIO_CmdBufTail, u.cmdTail)
	return nil
}

// completionWait issues a COMPLETION_WAIT (2.4.1) with S set, storing a
// new sequence number to the completion page once every earlier command
// is done, and waits for the store.
func (u *Unit) completionWait() error {
	u.waits++
	pg := u.pages.Page(u.sem)
	binary.LittleEndian.PutUint64(pg[:], 0)
	u.flush(u.sem)
	if err := u.submit("COMPLETION_WAIT", CMD_COMPLETION_WAIT<<CmdOpShift|u.sem&CW_StoreAddr|CW_S, u.waits); err != nil {
		return err
	}
	var got uint64
	for range maxPolls {
		u.flush(u.sem)
		if got = binary.LittleEndian.Uint64(pg[:]); got == u.waits {
			return nil
		}
	}
	return fmt.Errorf("%s: COMPLETION_WAIT: the store reads %#x, want %#x, after %d reads (command head %#x, tail %#x, status %#x): %w",
		u.Name(), got, u.waits, maxPolls, u.regs.Read64(MMIO_CmdBufHead), u.cmdTail, u.regs.Read64(MMIO_Status), ErrTimeout)
}

// Faults reads the event log from the Event Log Head Pointer to the Tail
// Pointer (2.5), decodes each entry, zeroes it and advances the head past
// it. After an overflow (Sts_EventOverflow), counted in Overflows, the log
// is restarted as the spec says: EventLogEn clear, EventLogRun awaited,
// head and tail set to zero, the overflow cleared, EventLogEn set.
//
// A unit that writes entries without advancing the Tail Pointer (QEMU
// 7.2: amdvi_log_event moves its internal tail and never the register) is
// recognised when the entry at the head is not zero (the log starts
// zeroed and every entry read is zeroed) while the tail pointer stays at
// the head for tailPolls reads, which a unit that updates it does right
// after the write; from then on (StaleTail) the entries are read while
// they are not zero.
func (u *Unit) Faults() []iommu.Fault {
	if u.eventLog == 0 {
		return nil
	}
	var out []iommu.Fault
	head := u.regs.Read64(MMIO_EventLogHead) & mmioHeadTailOffset % bufBytes
	tail := u.regs.Read64(MMIO_EventLogTail) & mmioHeadTailOffset % bufBytes
	pg := u.pages.Page(u.eventLog)
	u.flush(u.eventLog)
	entry := func(at uint64) (uint64, uint64) {
		return binary.LittleEndian.Uint64(pg[at:]), binary.LittleEndian.Uint64(pg[at+8:])
	}
	if lo, _ := entry(head); head == tail && lo != 0 && !u.StaleTail {
		u.StaleTail = true
		for range tailPolls {
			if t := u.regs.Read64(MMIO_EventLogTail) & mmioHeadTailOffset % bufBytes; t != head {
				u.StaleTail, tail = false, t
				break
			}
		}
	}
	for n := 0; n < bufEntries; n++ {
		lo, hi := entry(head)
		if u.StaleTail && lo == 0 || !u.StaleTail && head == tail {
			break
		}
		if e, ok := DecodeEvent(lo, hi); ok {
			out = append(out, e.Fault())
			u.router.Route(e.Fault())
		}
		clear(pg[head : head+EventSize])
		head = (head + EventSize) % bufBytes
	}
	u.flush(u.eventLog)
	u.regs.Write64(MMIO_EventLogHead, head)
	sts := u.regs.Read64(MMIO_Status)
	if sts&Sts_EventOverflow != 0 {
		u.Overflows++
		u.restartEventLog()
	}
	if c := sts & (Sts_EventLogInt | Sts_ComWaitInt); c != 0 {
		u.regs.Write64(MMIO_Status, c)
	}
	return out
}

// tailPolls bounds the wait for a tail pointer that lags its entry.
const tailPolls = 1000

// restartEventLog restarts an overflowed event log; on a unit that does
// not stop it, the log is left as it is and the overflow bit cleared.
func (u *Unit) restartEventLog() {
	ctl := u.regs.Read64(MMIO_Control)
	if ctl&Ctl_EventLogEn != 0 {
		u.regs.Write64(MMIO_Control, ctl&^Ctl_EventLogEn)
		if u.waitStatus("stop the event log", Sts_EventLogRun, 0) != nil {
			u.regs.Write64(MMIO_Status, Sts_EventOverflow)
			return
		}
	}
	clear(u.pages.Page(u.eventLog)[:])
	u.flush(u.eventLog)
	u.regs.Write64(MMIO_EventLogHead, 0)
	u.regs.Write64(MMIO_EventLogTail, 0)
	u.regs.Write64(MMIO_Status, Sts_EventOverflow)
	if ctl&Ctl_EventLogEn != 0 {
		u.regs.Write64(MMIO_Control, ctl)
	}
}
