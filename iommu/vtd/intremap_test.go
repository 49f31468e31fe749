package vtd

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"gohv/iommu"
)

// remappingUnit is a unit with translation and interrupt remapping on.
func remappingUnit(t *testing.T) (*fakeUnit, *Unit) {
	t.Helper()
	f, u := blockedUnit(t)
	if err := u.EnableInterruptRemapping(); err != nil {
		t.Fatal(err)
	}
	return f, u
}

// TestInterruptRemappingNumbers pins IRTA_REG (10.4.29), the IRTE's
// remapped format (9.10), the remappable MSI address (5.1.5.2) and the
// interrupt entry cache invalidate descriptor (6.5.2.7).
func TestInterruptRemappingNumbers(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"IRTA_REG", IRTA_REG, 0xb8},
		{"IRTA_REG.EIME", IRTA_EIME, 1 << 11},
		{"IRTA_REG.S (3:0)", IRTA_S_Mask, 0xf},
		{"IRTE P", IRTE_P, 1},
		{"IRTE FPD", IRTE_FPD, 2},
		{"IRTE DM", IRTE_DM, 4},
		{"IRTE RH", IRTE_RH, 8},
		{"IRTE TM", IRTE_TM, 0x10},
		{"IRTE DLM (7:5)", IRTE_DLM_Shift, 5},
		{"IRTE IM", IRTE_IM, 1 << 15},
		{"IRTE V (23:16)", IRTE_V_Shift, 16},
		{"IRTE DST (63:32)", IRTE_DST_Shift, 32},
		{"IRTE SQ (81:80)", IRTE_SQ_Shift + 64, 80},
		{"IRTE SVT (83:82)", IRTE_SVT_Shift + 64, 82},
		{"MSI interrupt format", MSI_IF, 1 << 4},
		{"MSI SHV", MSI_SHV, 1 << 3},
		{"MSI handle 14:0 (19:5)", MSI_HandleShift, 5},
		{"MSI handle 15", MSI_Handle15, 1 << 2},
		{"IEC type", InvDesc_IEC, 4},
		{"IEC granularity", InvDesc_IEC_Index, 1 << 4},
		{"IEC IM (31:27)", InvDesc_IEC_IM, 27},
		{"IEC IIDX (47:32)", InvDesc_IEC_IIDX, 32},
		{"table entries", irtEntries, 256},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	// Vector 0x40 to APIC ID 3 for 00:03.0: P, V in 23:16, the ID in
	// DST 15:8 (bits 47:40), SID 0x18 with SVT 01b.
	if lo, hi := IRTE(0x18, iommu.Target{APICID: 3, Vector: 0x40}); lo != 0x0000_0300_0040_0001 || hi != 0x4_0018 {
		t.Errorf("IRTE %#x %#x", lo, hi)
	}
	for _, c := range []struct {
		handle uint16
		addr   uint64
	}{{0, 0xfee0_0018}, {1, 0xfee0_0038}, {0x7fff, 0xfeef_fff8}, {0x8001, 0xfee0_003c}} {
		if a, d := RemappableMSI(c.handle); a != c.addr || d != 0 {
			t.Errorf("handle %#x: address %#x data %#x, want %#x 0", c.handle, a, d, c.addr)
		}
	}
}

// TestEnableInterruptRemapping: after BlockAll, the table pointer, a
// global interrupt entry cache invalidation, then IRE (each GCMD_REG
// write one command); every interrupt request is then blocked — the
// compatibility format with 25h, a remappable one with 22h (entry not
// present) — and reported as an interrupt fault with its index.
func TestEnableInterruptRemapping(t *testing.T) {
	f, u := blockedUnit(t)
	if on, why := u.InterruptRemapping(); on || why != "not enabled" {
		t.Fatalf("before: on %v (%s)", on, why)
	}
	if r := f.msi(0x18, 0xfee0_0000, 0x41); !r.delivered || !r.compat {
		t.Fatalf("before: a compatibility-format message did not pass: %+v", r)
	}
	if err := u.EnableInterruptRemapping(); err != nil {
		t.Fatal(err)
	}
	want := []string{"IRTA 0x83007", "SIRTP", "IEC global", "QI wait", "IRE true"}
	if !slices.Equal(f.log, want) {
		t.Fatalf("operations:\n%s\nwant\n%s", strings.Join(f.log, "\n"), strings.Join(want, "\n"))
	}
	if on, why := u.InterruptRemapping(); !on {
		t.Fatalf("after: off (%s)", why)
	}
	for i, b := range f.pages.Page(f.irta &^ 0xfff) {
		if b != 0 {
			t.Fatalf("table byte %d = %#x: an entry may be present", i, b)
		}
	}
	if r := f.msi(0x18, 0xfee0_0000, 0x41); r.delivered || r.reason != 0x25 {
		t.Fatalf("compatibility format: %+v, want blocked with 25h", r)
	}
	if f := u.Faults(); len(f) != 1 || !f[0].Interrupt || f[0].Reason != "compatibility-format interrupt blocked (0x25)" {
		t.Fatalf("faults %+v", f)
	}
	addr, data := RemappableMSI(3)
	if r := f.msi(0x18, addr, data); r.delivered || r.reason != 0x22 {
		t.Fatalf("remappable, no entry: %+v, want blocked with 22h", r)
	}
	got := u.Faults()
	wantF := []iommu.Fault{{Source: 0x18, Addr: 3, Write: true, Interrupt: true, Reason: "interrupt remapping entry not present (0x22)"}}
	if !slices.Equal(got, wantF) {
		t.Fatalf("faults %+v, want %+v", got, wantF)
	}
	// Firmware's CFIS is cleared: compatibility format blocked.
	f2, u2 := blockedUnit(t)
	f2.gsts |= GSTS_CFIS
	if err := u2.EnableInterruptRemapping(); err != nil {
		t.Fatal(err)
	}
	if f2.gsts&GSTS_CFIS != 0 {
		t.Fatalf("GSTS_REG %#x: CFIS left set", f2.gsts)
	}
}

// TestAllocInterruptDelivers: an entry delivers its vector to its APIC ID
// for its device only (26h for another requester ID), a second device
// gets the next entry, and after FreeInterrupt the entry is blocked again
// — which the fake's interrupt entry cache shows only if the free
// invalidated it.
func TestAllocInterruptDelivers(t *testing.T) {
	f, u := remappingUnit(t)
	f.log = nil
	in, err := u.AllocInterrupt(0x18, iommu.Target{APICID: 2, Vector: 0x23})
	if err != nil {
		t.Fatal(err)
	}
	if in.Index != 0 || in.Address != 0xfee0_0018 || in.Data != 0 || in.Source != 0x18 {
		t.Fatalf("interrupt %+v", in)
	}
	if !slices.Equal(f.log, []string{"IEC index 0+1", "QI wait"}) {
		t.Fatalf("operations %q", f.log)
	}
	if r := f.msi(0x18, in.Address, in.Data); !r.delivered || r.compat || r.vector != 0x23 || r.dest != 2 {
		t.Fatalf("own message: %+v", r)
	}
	if r := f.msi(0x20, in.Address, in.Data); r.delivered || r.reason != 0x26 {
		t.Fatalf("another device's use of the handle: %+v, want blocked with 26h", r)
	}
	other, err := u.AllocInterrupt(0x20, iommu.Target{APICID: 0, Vector: 0x24})
	if err != nil {
		t.Fatal(err)
	}
	if other.Index != 1 {
		t.Fatalf("second entry %d", other.Index)
	}
	if r := f.msi(0x20, other.Address, other.Data); !r.delivered || r.vector != 0x24 {
		t.Fatalf("second device: %+v", r)
	}
	// A subhandle that points past the device's entry: 1 (the other
	// device's) from 0x18 fails the source check.
	if r := f.msi(0x18, in.Address, 1); r.delivered || r.reason != 0x26 {
		t.Fatalf("subhandle 1 from 00:03.0: %+v", r)
	}
	if err := u.FreeInterrupt(in); err != nil {
		t.Fatal(err)
	}
	if r := f.msi(0x18, in.Address, in.Data); r.delivered || r.reason != 0x22 {
		t.Fatalf("after free: %+v, want blocked with 22h (a stale cached entry means no invalidation)", r)
	}
	if err := u.FreeInterrupt(in); !errors.Is(err, iommu.ErrNotAllocated) {
		t.Fatalf("double free: %v", err)
	}
	if err := u.FreeInterrupt(iommu.Interrupt{Source: 0x18, Index: 1}); !errors.Is(err, iommu.ErrNotAllocated) {
		t.Fatalf("free of another device's entry: %v", err)
	}
	if again, err := u.AllocInterrupt(0x18, iommu.Target{Vector: 0x25}); err != nil || again.Index != 0 {
		t.Fatalf("reuse: %+v %v", again, err)
	}
}

// TestAllocInterruptRefusals: no remapping (not enabled; a unit without
// ECAP_REG.IR), a reserved vector, a destination beyond 8 bits, a full
// table.
func TestAllocInterruptRefusals(t *testing.T) {
	_, u := blockedUnit(t)
	if _, err := u.AllocInterrupt(0x18, iommu.Target{Vector: 0x30}); !errors.Is(err, iommu.ErrNoRemapping) {
		t.Fatalf("before enabling: %v", err)
	}
	f := newFakeUnit(t)
	f.ecap &^= ecapIR
	nu := newUnit(t, f)
	if err := nu.BlockAll(); err != nil {
		t.Fatal(err)
	}
	if err := nu.EnableInterruptRemapping(); !errors.Is(err, iommu.ErrNoRemapping) {
		t.Fatalf("unit without IR: %v", err)
	}
	if on, why := nu.InterruptRemapping(); on || !strings.Contains(why, "ECAP_REG.IR clear") {
		t.Fatalf("unit without IR: %v %s", on, why)
	}
	_, u = remappingUnit(t)
	for _, tg := range []iommu.Target{{Vector: 15}, {APICID: 256, Vector: 0x30}} {
		if _, err := u.AllocInterrupt(0x18, tg); err == nil {
			t.Errorf("target %+v accepted", tg)
		}
	}
	for i := range irtEntries {
		if _, err := u.AllocInterrupt(uint16(i), iommu.Target{Vector: 0x30}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := u.AllocInterrupt(0x18, iommu.Target{Vector: 0x30}); !errors.Is(err, iommu.ErrNoEntry) {
		t.Fatalf("full table: %v", err)
	}
}

// TestEnableInterruptRemappingNeedsQueueAndTimesOut: before BlockAll (no
// invalidation queue) it refuses; a unit whose IRES never follows times
// out with ErrTimeout.
func TestEnableInterruptRemappingNeedsQueueAndTimesOut(t *testing.T) {
	f := newFakeUnit(t)
	u := newUnit(t, f)
	if err := u.EnableInterruptRemapping(); err == nil || !strings.Contains(err.Error(), "BlockAll first") {
		t.Fatalf("before BlockAll: %v", err)
	}
	f, u = blockedUnit(t)
	f.stuck = GSTS_IRES
	if err := u.EnableInterruptRemapping(); !errors.Is(err, ErrTimeout) {
		t.Fatalf("stuck IRES: %v", err)
	}
}

// TestBlockAllKeepsInterruptRemapping: Disable and BlockAll again (the
// iommu-blocks-dma check's cycle) leave remapping on with its entries, and
// so does enabling it again.
func TestBlockAllKeepsInterruptRemapping(t *testing.T) {
	f, u := remappingUnit(t)
	in, err := u.AllocInterrupt(0x18, iommu.Target{Vector: 0x23})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Disable(); err != nil {
		t.Fatal(err)
	}
	if err := u.BlockAll(); err != nil {
		t.Fatal(err)
	}
	if on, why := u.InterruptRemapping(); !on {
		t.Fatalf("off after Disable and BlockAll: %s", why)
	}
	if r := f.msi(0x18, in.Address, in.Data); !r.delivered || r.vector != 0x23 {
		t.Fatalf("entry after BlockAll: %+v", r)
	}
	if err := u.EnableInterruptRemapping(); err != nil {
		t.Fatal(err)
	}
	if r := f.msi(0x18, in.Address, in.Data); !r.delivered || r.vector != 0x23 {
		t.Fatalf("entry after enabling again: %+v", r)
	}
}
