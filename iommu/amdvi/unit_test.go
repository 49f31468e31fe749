package amdvi

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"gohv/iommu"
)

// qemuConfig is QEMU 7.2's unit on q35 with -device amd-iommu -device edu:
// registers at 0xfed80000, the IVHD naming devices on bus 0 only.
var qemuConfig = Config{Base: 0xfed80000, DeviceID: 0x0018, LastDeviceID: 0x00fb}

func newUnit(t *testing.T, f *fakeUnit, c Config) *Unit {
	t.Helper()
	u, err := New(c, f, f.mem)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestBlockAllOrder: the bases with the unit off, EventLogEn and CmdBufEn
// before IommuEn, then INVALIDATE_IOMMU_ALL (QEMU has IASup) and a
// COMPLETION_WAIT whose store BlockAll waited for; a two-page device
// table for bus 0, every entry V, TV, Mode 4 over an empty root, IR and
// IW clear.
func TestBlockAllOrder(t *testing.T) {
	f := newFakeUnit(t)
	u := newUnit(t, f, qemuConfig)
	if err := u.BlockAll(); err != nil {
		t.Fatal(err)
	}
	want := []string{"IommuEn on", "INVALIDATE_IOMMU_ALL", "COMPLETION_WAIT 0x1"}
	if got := f.commands(); !slices.Equal(got, want) {
		t.Fatalf("operations:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if u.DeviceTableEntries() != 256 || f.devTab&DevTabSizeMax != 1 {
		t.Fatalf("%d entries, Device Table Base %#x: want 256 entries, Size 1", u.DeviceTableEntries(), f.devTab)
	}
	if f.cmdBase>>BufLenShift != BufLenMin || f.evBase>>BufLenShift != BufLenMin {
		t.Fatalf("command buffer %#x, event log %#x: want ComLen and EventLen 8", f.cmdBase, f.evBase)
	}
	want0 := uint64(DTE_V|DTE_TV|4<<DTE_ModeShift) | u.ptRoot
	for id := range 256 {
		pa := f.devTab&DevTabBase + uint64(id)*DTESize
		if q := [4]uint64{f.mem.read64(pa), f.mem.read64(pa + 8), f.mem.read64(pa + 16), f.mem.read64(pa + 24)}; q != [4]uint64{want0} {
			t.Fatalf("DTE %#x = %#x, want %#x 0 0 0", id, q, want0)
		}
	}
	for i, b := range f.mem.Page(u.ptRoot) {
		if b != 0 {
			t.Fatalf("page-table root byte %d = %#x", i, b)
		}
	}
	if f.mem.flushed[f.devTab&DevTabBase] == 0 || f.mem.flushed[f.devTab&DevTabBase+4096] == 0 || f.mem.flushed[u.ptRoot] == 0 {
		t.Fatal("tables not flushed for a unit without the Coherent flag")
	}
	if f.sts&(Sts_CmdBufRun|Sts_EventLogRun) != Sts_CmdBufRun|Sts_EventLogRun {
		t.Fatalf("status %#x", f.sts)
	}
}

// TestInvalidateEachEntryWithoutIASup: without INVALIDATE_IOMMU_ALL, one
// INVALIDATE_DEVTAB_ENTRY per device ID of a two-bus table (512
// commands through a 256-entry buffer), then the COMPLETION_WAIT.
func TestInvalidateEachEntryWithoutIASup(t *testing.T) {
	f := newFakeUnit(t)
	f.efr = 0
	c := qemuConfig
	c.LastDeviceID = 0x0100
	c.Coherent = true
	if err := newUnit(t, f, c).BlockAll(); err != nil {
		t.Fatal(err)
	}
	got := f.commands()
	if len(got) != 1+512+1 || got[1] != "INVALIDATE_DEVTAB_ENTRY 0x0" || got[512] != "INVALIDATE_DEVTAB_ENTRY 0x1ff" || got[513] != "COMPLETION_WAIT 0x1" {
		t.Fatalf("%d operations: %q ... %q", len(got), got[:3], got[len(got)-2:])
	}
	if len(f.mem.flushed) != 0 {
		t.Fatalf("a coherent unit's tables flushed: %v", f.mem.flushed)
	}
}

// TestBlockedDMAFaults: after BlockAll a device's write is refused and
// logged as IO_PAGE_FAULT, which Faults reports once, decoded; after
// Disable DMA reaches memory; BlockAll again blocks again with the same
// table, and a device beyond it is refused too.
func TestBlockedDMAFaults(t *testing.T) {
	for _, qemu := range []bool{false, true} {
		f := newFakeUnit(t)
		f.qemuFlags, f.qemuLog = qemu, qemu
		u := newUnit(t, f, qemuConfig)
		if !f.dma(0x0020, 0x1ec123, true) {
			t.Fatal("DMA blocked before BlockAll")
		}
		if err := u.BlockAll(); err != nil {
			t.Fatal(err)
		}
		if f.dma(0x0020, 0x1ec123, true) {
			t.Fatal("DMA reached memory after BlockAll")
		}
		got := u.Faults()
		reason := "IO_PAGE_FAULT (0x2) flags 0x20 domain 0"
		if qemu {
			reason = "IO_PAGE_FAULT (0x2) flags 0xa domain 0 (QEMU 7.2 flags encoding)"
		}
		if want := []iommu.Fault{{Source: 0x20, Addr: 0x1ec000, Write: true, Reason: reason}}; !slices.Equal(got, want) {
			t.Fatalf("qemu %v: faults %+v, want %+v", qemu, got, want)
		}
		if got := u.Faults(); len(got) != 0 {
			t.Fatalf("faults read twice: %+v", got)
		}
		tab := f.devTab
		if err := u.Disable(); err != nil {
			t.Fatal(err)
		}
		if !f.dma(0x0020, 0x1ec123, true) {
			t.Fatal("DMA blocked after Disable")
		}
		if err := u.BlockAll(); err != nil {
			t.Fatal(err)
		}
		if f.devTab != tab || f.dma(0x00f8, 0x5000, false) || f.dma(0x0300, 0x6000, true) {
			t.Fatalf("second BlockAll: table %#x (was %#x)", f.devTab, tab)
		}
		got = u.Faults()
		if len(got) != 2 || got[0].Source != 0xf8 || got[0].Write || got[0].Addr != 0x5000 ||
			got[1].Source != 0x300 || got[1].Reason != "ILLEGAL_DEV_TABLE_ENTRY (0x1)" {
			t.Fatalf("qemu %v: %+v", qemu, got)
		}
		if u.StaleTail != qemu {
			t.Fatalf("qemu %v: StaleTail %v", qemu, u.StaleTail)
		}
	}
}

// TestQEMUEventLog: QEMU 7.2's log, whose Tail Pointer register never
// moves and which overflows after 16 entries: Faults reads the entries
// while they are not zero, and after the overflow restarts the log, so
// faults keep being reported.
func TestQEMUEventLog(t *testing.T) {
	f := newFakeUnit(t)
	f.qemuFlags, f.qemuLog = true, true
	u := newUnit(t, f, qemuConfig)
	if err := u.BlockAll(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for round := range 5 {
		for i := range 7 {
			f.dma(uint16(i), uint64(round)<<12, true)
		}
		got := u.Faults()
		total += len(got)
		for _, g := range got {
			if !g.Write || g.Addr != uint64(round)<<12 {
				t.Fatalf("round %d: %+v", round, g)
			}
		}
	}
	// 7+7 fit, the third round's third entry overflows (16 entries, the
	// rest dropped), the log restarts, and so on.
	if total != 7+7+2+7+7 || u.Overflows != 1 || !u.StaleTail {
		t.Fatalf("%d faults, %d overflows, StaleTail %v", total, u.Overflows, u.StaleTail)
	}
}

// TestEventLogWrapsAndOverflows: the head follows the tail around the
// 256-entry log; a full log overflows, Faults counts it and restarts the
// log, and events are logged again.
func TestEventLogWrapsAndOverflows(t *testing.T) {
	f := newFakeUnit(t)
	u := newUnit(t, f, qemuConfig)
	if err := u.BlockAll(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for round := range 3 {
		for i := range 200 {
			f.dma(uint16(i), uint64(round)<<12, false)
		}
		got := u.Faults()
		if len(got) != 200 || got[0].Source != 0 || got[199].Source != 199 {
			t.Fatalf("round %d: %d faults", round, len(got))
		}
		n += len(got)
	}
	for i := range 300 {
		f.dma(uint16(i&0xff), 0, true)
	}
	if got := u.Faults(); len(got) != 255 || u.Overflows != 1 {
		t.Fatalf("full log: %d faults, %d overflows", len(got), u.Overflows)
	}
	if f.sts&Sts_EventOverflow != 0 || f.evHead != 0 || f.evTail != 0 || f.ctl&Ctl_EventLogEn == 0 {
		t.Fatalf("log not restarted: status %#x head %#x tail %#x control %#x", f.sts, f.evHead, f.evTail, f.ctl)
	}
	f.dma(0x42, 0x9000, true)
	if got := u.Faults(); len(got) != 1 || got[0].Source != 0x42 {
		t.Fatalf("after the restart: %+v", got)
	}
}

// TestTimeouts: a unit whose status never follows, or whose
// COMPLETION_WAIT never stores, names the step and wraps ErrTimeout.
func TestTimeouts(t *testing.T) {
	for _, c := range []struct {
		stuck   uint64
		noStore bool
		step    string
	}{{Sts_CmdBufRun, false, "enable the command buffer"}, {0, true, "COMPLETION_WAIT"}} {
		f := newFakeUnit(t)
		f.stuck, f.noStore = c.stuck, c.noStore
		err := newUnit(t, f, qemuConfig).BlockAll()
		if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), c.step) || !strings.Contains(err.Error(), "amd-vi unit 0xfed80000") {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// TestRefusals: no unit behind the registers, no pages for the tables.
func TestRefusals(t *testing.T) {
	if _, err := New(qemuConfig, absent{}, newFakePages()); err == nil || !strings.Contains(err.Error(), "Control Register") {
		t.Errorf("absent unit: %v", err)
	}
	f := newFakeUnit(t)
	f.mem.fail = true
	if err := newUnit(t, f, qemuConfig).BlockAll(); err == nil || !strings.Contains(err.Error(), "device table of 2 contiguous pages") {
		t.Errorf("no pages: %v", err)
	}
}

// TestFirmwareLeftItOn: a unit found enabled is stopped before its base
// registers are written.
func TestFirmwareLeftItOn(t *testing.T) {
	f := newFakeUnit(t)
	f.control(Ctl_IommuEn | Ctl_CmdBufEn | Ctl_EventLogEn)
	f.log = nil
	if err := newUnit(t, f, qemuConfig).BlockAll(); err != nil {
		t.Fatal(err)
	}
	if f.log[0] != "IommuEn off" {
		t.Fatalf("operations %q", f.log)
	}
}

// absent reads all ones, as an unclaimed MMIO address does.
type absent struct{}

func (absent) Read64(uint32) uint64   { return ^uint64(0) }
func (absent) Write64(uint32, uint64) {}

func TestDecodeEvent(t *testing.T) {
	if _, ok := DecodeEvent(0, 0x1234); ok {
		t.Fatal("an empty entry decoded")
	}
	// What QEMU 7.2 logs for a write by 00:04.0 to 0x1ec000 refused by
	// the DTE's IW: info = I | IOPF | PERM_WRITE at bits 63:48.
	e, ok := DecodeEvent(0x2<<60|0x00a<<48|0x0020, 0x1ec000)
	if !ok || e != (Event{Code: IO_PAGE_FAULT, Device: 0x20, Flags: 0xa, Addr: 0x1ec000, Write: true, QEMU: true}) {
		t.Fatalf("%+v", e)
	}
	// The spec's encoding: RW for a write, I clear.
	e, _ = DecodeEvent(0x2<<60|0x020<<48|7<<32|0x0100, 0xfedc_b123)
	if e != (Event{Code: IO_PAGE_FAULT, Device: 0x100, Flags: 0x20, Domain: 7, Addr: 0xfedcb123, Write: true}) {
		t.Fatalf("%+v", e)
	}
	if f := e.Fault(); f.Addr != 0xfedcb000 || f.SourceString() != "01:00.0" {
		t.Fatalf("%+v", f)
	}
	// An interrupt request's fault: I set, the address in the MSI window.
	if e, _ := DecodeEvent(0x2<<60|0x008<<48, 0xfee00000); e.QEMU || e.Write {
		t.Fatalf("%+v", e)
	}
	if e, _ := DecodeEvent(0xf<<60|0xffff, 0); e.Fault().Reason != "event code 0xf" || e.Write {
		t.Fatalf("%+v", e)
	}
}

// FuzzDecodeEvent: any entry the hardware writes decodes without
// panicking, to a device, a page and a reason that agree with its bits.
func FuzzDecodeEvent(f *testing.F) {
	f.Add(uint64(0x2<<60|0x00a<<48|0x0020), uint64(0x1ec000))
	f.Add(uint64(0x5<<60), uint64(0x7f000))
	f.Add(uint64(0), uint64(0))
	f.Add(uint64(0x2<<60|0x008<<48|0x0020), uint64(0xfee00000)) // a refused interrupt request
	f.Fuzz(func(t *testing.T, lo, hi uint64) {
		e, ok := DecodeEvent(lo, hi)
		if ok != (lo>>60 != 0) {
			t.Fatalf("ok %v for %#x", ok, lo)
		}
		if !ok {
			return
		}
		fl := e.Fault()
		if fl.Interrupt {
			if e.Code != IO_PAGE_FAULT || e.Flags&EvFlag_I == 0 || hi < intrAddrFirst || hi > intrAddrLast || fl.Addr != hi || !fl.Write {
				t.Fatalf("interrupt fault %#x %#x: %+v %+v", lo, hi, e, fl)
			}
			return
		}
		if fl.Source != uint16(lo) || fl.Addr != hi&^0xfff || fl.Reason == "" || (e.Write && e.Code != IO_PAGE_FAULT) {
			t.Fatalf("%#x %#x: %+v %+v", lo, hi, e, fl)
		}
	})
}
