package amdvi

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"gohv/iommu"
)

// qemuRemapConfig is qemuConfig with the IVHD's I/O APIC entry (QEMU 7.2
// with amd-iommu,intremap=on).
var qemuRemapConfig = func() Config { c := qemuConfig; c.InterruptRemapping = true; return c }()

func remappingUnit(t *testing.T) (*fakeUnit, *Unit) {
	t.Helper()
	f := newFakeUnit(t)
	u := newUnit(t, f, qemuRemapConfig)
	if err := u.BlockAll(); err != nil {
		t.Fatal(err)
	}
	if err := u.EnableInterruptRemapping(); err != nil {
		t.Fatal(err)
	}
	f.log = nil
	return f, u
}

// TestInterruptRemappingNumbers pins the device table entry's interrupt
// fields (2.2.2.1), the 32-bit remapping table entry (2.2.5.1) and
// INVALIDATE_INTERRUPT_TABLE (2.4.5).
func TestInterruptRemappingNumbers(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"DTE IV (bit 128)", DTE2_IV, 1},
		{"DTE IntTabLen (132:129)", DTE2_IntTabLenShft + 128, 129},
		{"DTE IG (bit 133)", DTE2_IG, 1 << 5},
		{"DTE IntTableRootPtr (179:134)", DTE2_IntTableRoot, 0x000f_ffff_ffff_ffc0},
		{"DTE InitPass (bit 184)", DTE2_InitPass, 1 << 56},
		{"DTE EIntPass (bit 185)", DTE2_EIntPass, 1 << 57},
		{"DTE NMIPass (bit 186)", DTE2_NMIPass, 1 << 58},
		{"DTE IntCtl (189:188)", DTE2_IntCtlShift + 128, 188},
		{"DTE Lint0Pass (bit 190)", DTE2_Lint0Pass, 1 << 62},
		{"DTE Lint1Pass (bit 191)", DTE2_Lint1Pass, 1 << 63},
		{"IntCtl abort", IntCtl_Abort, 0},
		{"IntCtl pass", IntCtl_Pass, 1},
		{"IntCtl remap", IntCtl_Remap, 2},
		{"IRTE RemapEn", IRTE_RemapEn, 1},
		{"IRTE SupIOPF", IRTE_SupIOPF, 2},
		{"IRTE IntType (4:2)", IRTE_IntTypeSh, 2},
		{"IRTE RqEoi", IRTE_RqEoi, 1 << 5},
		{"IRTE DM", IRTE_DM, 1 << 6},
		{"IRTE GuestMode", IRTE_GuestMode, 1 << 7},
		{"IRTE Destination (15:8)", IRTE_DestShift, 8},
		{"IRTE Vector (23:16)", IRTE_VectorShft, 16},
		{"INVALIDATE_INTERRUPT_TABLE", CMD_INVALIDATE_INT_TABLE, 5},
		{"table entries (IntTabLen 1011b)", intTabEntries, 2048},
		{"table pages", intTabPages, 2},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	if e := IRTE(iommu.Target{APICID: 3, Vector: 0x40}); e != 0x0040_0301 {
		t.Errorf("IRTE %#x", e)
	}
}

// TestEnableInterruptRemapping: every device table entry gets IV with
// IntCtl 00b, the caches are invalidated and awaited; then a device's
// fixed interrupts are aborted and its NMI, INIT and ExtInt messages too
// (no pass bit) — before, they passed. A unit whose IVHD names no I/O
// APIC refuses.
func TestEnableInterruptRemapping(t *testing.T) {
	f := newFakeUnit(t)
	u := newUnit(t, f, qemuRemapConfig)
	if err := u.BlockAll(); err != nil {
		t.Fatal(err)
	}
	if on, why := u.InterruptRemapping(); on || why != "not enabled" {
		t.Fatalf("before: %v %s", on, why)
	}
	if r := f.msi(0x20, 0xfee0_0000, 0x41); !r.delivered || !r.passed {
		t.Fatalf("before: %+v", r)
	}
	f.log = nil
	if err := u.EnableInterruptRemapping(); err != nil {
		t.Fatal(err)
	}
	if got, want := f.commands(), []string{"INVALIDATE_IOMMU_ALL", "COMPLETION_WAIT 0x2"}; !slices.Equal(got, want) {
		t.Fatalf("commands %q, want %q", got, want)
	}
	if on, _ := u.InterruptRemapping(); !on {
		t.Fatal("not on")
	}
	for id := range u.DeviceTableEntries() {
		if q2 := f.mem.read64(u.devTab + uint64(id)*DTESize + 16); q2 != DTE2_IV {
			t.Fatalf("device %#x: interrupt qword %#x, want IV with IntCtl 00b", id, q2)
		}
	}
	for _, data := range []uint32{0x41, 0x141, 0x441, 0x541, 0x741, 0x241} {
		if r := f.msi(0x20, 0xfee0_0000, data); r.delivered {
			t.Errorf("data %#x delivered: %+v", data, r)
		}
	}
	f2 := newFakeUnit(t)
	u2 := newUnit(t, f2, qemuConfig)
	if err := u2.BlockAll(); err != nil {
		t.Fatal(err)
	}
	if err := u2.EnableInterruptRemapping(); !errors.Is(err, iommu.ErrNoRemapping) {
		t.Fatalf("without the I/O APIC entry: %v", err)
	}
	if on, why := u2.InterruptRemapping(); on || !strings.Contains(why, "names no I/O APIC") {
		t.Fatalf("without the I/O APIC entry: %v %s", on, why)
	}
	if _, err := u2.AllocInterrupt(0x20, iommu.Target{Vector: 0x30}); !errors.Is(err, iommu.ErrNoRemapping) {
		t.Fatalf("alloc without remapping: %v", err)
	}
}

// TestAllocInterruptDelivers: the first interrupt gives the device a
// table (IntCtl 10b, IntTabLen 1011b) and an entry delivering its vector
// to its APIC ID; other indices of the device's table, other devices and
// other message types stay blocked; after the last free the device is
// back to IntCtl 00b, which the fake's caches show only if the
// invalidations happened.
func TestAllocInterruptDelivers(t *testing.T) {
	f, u := remappingUnit(t)
	in, err := u.AllocInterrupt(0x20, iommu.Target{APICID: 2, Vector: 0x23})
	if err != nil {
		t.Fatal(err)
	}
	if in.Index != 0 || in.Address != 0xfee0_0000 || in.Data != 0 {
		t.Fatalf("interrupt %+v", in)
	}
	if got, want := f.commands(), []string{"INVALIDATE_DEVTAB_ENTRY 0x20", "INVALIDATE_INTERRUPT_TABLE 0x20", "COMPLETION_WAIT 0x3"}; !slices.Equal(got, want) {
		t.Fatalf("commands %q, want %q", got, want)
	}
	q2 := f.mem.read64(u.devTab + 0x20*DTESize + 16)
	if q2&^DTE2_IntTableRoot != DTE2_IV|11<<1|2<<60 || q2&DTE2_IntTableRoot == 0 {
		t.Fatalf("interrupt qword %#x", q2)
	}
	if r := f.msi(0x20, in.Address, in.Data); !r.delivered || r.passed || r.vector != 0x23 || r.dest != 2 {
		t.Fatalf("own message: %+v", r)
	}
	for _, c := range []struct {
		id   uint16
		data uint32
	}{{0x20, 1}, {0x20, 0x7ff}, {0x20, 0x500}, {0x20, 0x400}, {0x18, 0}} {
		if r := f.msi(c.id, 0xfee0_0000, c.data); r.delivered {
			t.Errorf("device %#x data %#x delivered: %+v", c.id, c.data, r)
		}
	}
	// Index 1 (RemapEn clear) is an IO_PAGE_FAULT with I set.
	var intr []iommu.Fault
	for _, fl := range u.Faults() {
		if fl.Interrupt {
			intr = append(intr, fl)
		}
	}
	if len(intr) == 0 || intr[0].Source != 0x20 || intr[0].Addr != 0xfee0_0000 {
		t.Fatalf("interrupt faults %+v", intr)
	}
	second, err := u.AllocInterrupt(0x20, iommu.Target{APICID: 0, Vector: 0x24})
	if err != nil || second.Index != 1 || second.Data != 1 {
		t.Fatalf("second: %+v %v", second, err)
	}
	if r := f.msi(0x20, second.Address, second.Data); !r.delivered || r.vector != 0x24 {
		t.Fatalf("second message (the cached RemapEn-clear entry must have been invalidated): %+v", r)
	}
	if err := u.FreeInterrupt(in); err != nil {
		t.Fatal(err)
	}
	if r := f.msi(0x20, in.Address, in.Data); r.delivered {
		t.Fatalf("freed entry delivered: %+v", r)
	}
	pages := len(f.mem.pages)
	if err := u.FreeInterrupt(second); err != nil {
		t.Fatal(err)
	}
	if len(f.mem.pages) != pages-intTabPages {
		t.Fatalf("pages %d -> %d: the table was not freed", pages, len(f.mem.pages))
	}
	if q2 := f.mem.read64(u.devTab + 0x20*DTESize + 16); q2 != DTE2_IV {
		t.Fatalf("interrupt qword after the last free %#x", q2)
	}
	if r := f.msi(0x20, second.Address, second.Data); r.delivered || r.why != "IntCtl target abort" {
		t.Fatalf("after the last free: %+v", r)
	}
	if err := u.FreeInterrupt(second); !errors.Is(err, iommu.ErrNotAllocated) {
		t.Fatalf("double free: %v", err)
	}
}

// TestDomainKeepsInterrupts: attaching and detaching a device with an
// interrupt rewrites its table entry with the interrupt qword kept.
func TestDomainKeepsInterrupts(t *testing.T) {
	f, u := remappingUnit(t)
	in, err := u.AllocInterrupt(0x20, iommu.Target{Vector: 0x23})
	if err != nil {
		t.Fatal(err)
	}
	d, err := u.NewDomain()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Attach(0x20); err != nil {
		t.Fatal(err)
	}
	if r := f.msi(0x20, in.Address, in.Data); !r.delivered || r.vector != 0x23 {
		t.Fatalf("after Attach: %+v", r)
	}
	if err := d.Detach(0x20); err != nil {
		t.Fatal(err)
	}
	if r := f.msi(0x20, in.Address, in.Data); !r.delivered || r.vector != 0x23 {
		t.Fatalf("after Detach: %+v", r)
	}
	// BlockAll again (after Disable) keeps remapping and the entry.
	if err := u.Disable(); err != nil {
		t.Fatal(err)
	}
	if err := u.BlockAll(); err != nil {
		t.Fatal(err)
	}
	if r := f.msi(0x20, in.Address, in.Data); !r.delivered || r.vector != 0x23 {
		t.Fatalf("after BlockAll: %+v", r)
	}
	if r := f.msi(0x18, 0xfee0_0000, 0x41); r.delivered {
		t.Fatalf("another device after BlockAll: %+v", r)
	}
}

// TestAllocInterruptRefusals: a reserved vector, a wide destination, a
// device outside the table, a full table (256 entries: data bits 10:8
// stay a fixed message), a unit whose table allocation fails.
func TestAllocInterruptRefusals(t *testing.T) {
	f, u := remappingUnit(t)
	for _, tg := range []iommu.Target{{Vector: 15}, {APICID: 256, Vector: 0x30}} {
		if _, err := u.AllocInterrupt(0x20, tg); err == nil {
			t.Errorf("target %+v accepted", tg)
		}
	}
	if _, err := u.AllocInterrupt(0x100, iommu.Target{Vector: 0x30}); !errors.Is(err, iommu.ErrOutside) {
		t.Errorf("device beyond the table: %v", err)
	}
	for range intAllocLimit {
		if _, err := u.AllocInterrupt(0x20, iommu.Target{Vector: 0x30}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := u.AllocInterrupt(0x20, iommu.Target{Vector: 0x30}); !errors.Is(err, iommu.ErrNoEntry) {
		t.Fatalf("full table: %v", err)
	}
	f.mem.fail = true
	if _, err := u.AllocInterrupt(0x28, iommu.Target{Vector: 0x30}); err == nil {
		t.Fatal("allocation failure not reported")
	}
}
