package vtd

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"gohv/iommu"
)

func newUnit(t *testing.T, f *fakeUnit) *Unit {
	t.Helper()
	u, err := New(0xfed90000, f, f.pages)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestBlockAllOrder: the steps in the spec's order, each GCMD_REG write
// changing one command, and every root entry not present.
func TestBlockAllOrder(t *testing.T) {
	f := newFakeUnit(t)
	u := newUnit(t, f)
	if err := u.BlockAll(); err != nil {
		t.Fatal(err)
	}
	want := []string{"FECTL 0x80000000", "RTADDR 0x80000", "SRTP", "CCMD global", "IOTLB global", "TE on", "QIE on"}
	if !slices.Equal(f.log, want) {
		t.Fatalf("operations:\n%s\nwant\n%s", strings.Join(f.log, "\n"), strings.Join(want, "\n"))
	}
	if f.gsts&(GSTS_TES|GSTS_RTPS) != GSTS_TES|GSTS_RTPS {
		t.Fatalf("GSTS_REG %#x", f.gsts)
	}
	if len(f.pages.flushed) == 0 || f.pages.flushed[0] != f.root { // QEMU's unit does not snoop (ECAP_REG.C clear)
		t.Fatalf("flushed %#x, want the root table %#x first (then the invalidation queue)", f.pages.flushed, f.root)
	}
	for i, b := range f.pages.Page(f.root) {
		if b != 0 {
			t.Fatalf("root table byte %d = %#x: an entry may be present", i, b)
		}
	}
}

// TestBlockAllFlushesWriteBuffer: a unit with CAP_REG.RWBF gets a write
// buffer flush before it reads the new root table.
func TestBlockAllFlushesWriteBuffer(t *testing.T) {
	f := newFakeUnit(t)
	f.cap |= 1 << 4
	if err := newUnit(t, f).BlockAll(); err != nil {
		t.Fatal(err)
	}
	if i := slices.Index(f.log, "WBF"); i < 0 || i > slices.Index(f.log, "SRTP") {
		t.Fatalf("no write buffer flush before SRTP: %q", f.log)
	}
}

// TestCommandsPreserveOtherEnables: with interrupt remapping and
// compatibility-format interrupts already on (firmware's), enabling and
// disabling translation writes them back unchanged (10.4.4).
func TestCommandsPreserveOtherEnables(t *testing.T) {
	f := newFakeUnit(t)
	f.gsts = GSTS_IRES | GSTS_CFIS | GSTS_RTPS
	u := newUnit(t, f)
	if err := u.BlockAll(); err != nil {
		t.Fatal(err)
	}
	if f.gsts != GSTS_IRES|GSTS_CFIS|GSTS_RTPS|GSTS_TES|GSTS_QIES {
		t.Fatalf("GSTS_REG %#x after BlockAll", f.gsts)
	}
	if err := u.Disable(); err != nil {
		t.Fatal(err)
	}
	if f.gsts != GSTS_IRES|GSTS_CFIS|GSTS_RTPS|GSTS_QIES {
		t.Fatalf("GSTS_REG %#x after Disable", f.gsts)
	}
}

// TestBlockedDMAFaults: after BlockAll a device's write faults with
// reason 1h and Faults reports it once, decoded, and clears it; after
// Disable DMA reaches memory; BlockAll again blocks again with the same
// root table.
func TestBlockedDMAFaults(t *testing.T) {
	f := newFakeUnit(t)
	u := newUnit(t, f)
	if !f.dma(0x0018, 0x123456, true) {
		t.Fatal("DMA blocked before BlockAll")
	}
	if err := u.BlockAll(); err != nil {
		t.Fatal(err)
	}
	if f.dma(0x0018, 0x123456, true) {
		t.Fatal("DMA reached memory after BlockAll")
	}
	got := u.Faults()
	want := []iommu.Fault{{Source: 0x0018, Addr: 0x123000, Write: true, Reason: "root entry not present (0x1)"}}
	if !slices.Equal(got, want) {
		t.Fatalf("faults %+v, want %+v", got, want)
	}
	if got := u.Faults(); len(got) != 0 {
		t.Fatalf("faults read twice: %+v", got)
	}
	root := f.root
	if err := u.Disable(); err != nil {
		t.Fatal(err)
	}
	if !f.dma(0x0018, 0x123456, true) {
		t.Fatal("DMA blocked after Disable")
	}
	if err := u.BlockAll(); err != nil {
		t.Fatal(err)
	}
	if f.root != root || f.dma(0x0100, 0x5000, false) {
		t.Fatalf("second BlockAll: root %#x (was %#x)", f.root, root)
	}
	if got := u.Faults(); !slices.Equal(got, []iommu.Fault{{Source: 0x0100, Addr: 0x5000, Reason: "root entry not present (0x1)"}}) {
		t.Fatalf("read fault: %+v", got)
	}
}

// TestFaultsWrapAndOverflow: four records, the first fault at index 2:
// Faults reads 2, 3, 0 in order; a fifth fault with all four held sets
// PFO, which Faults counts and clears.
func TestFaultsWrapAndOverflow(t *testing.T) {
	f := newFakeUnit(t)
	f.cap |= 3 << capNFRShift
	f.frcd = make([][2]uint64, 4)
	f.next = 2
	u := newUnit(t, f)
	if err := u.BlockAll(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		f.dma(uint16(i), uint64(i)<<12, true)
	}
	got := u.Faults()
	if len(got) != 3 || got[0].Source != 0 || got[1].Source != 1 || got[2].Source != 2 {
		t.Fatalf("faults %+v", got)
	}
	for i := range 5 {
		f.dma(uint16(0x10+i), 0, false)
	}
	if got := u.Faults(); len(got) != 4 || got[0].Source != 0x10 || got[3].Source != 0x13 || u.Overflows != 1 {
		t.Fatalf("faults %+v, overflows %d", got, u.Overflows)
	}
	if f.fsts&FSTS_PFO != 0 {
		t.Fatal("PFO not cleared")
	}
	f.dma(0x20, 0, false)
	if got := u.Faults(); len(got) != 1 || got[0].Source != 0x20 {
		t.Fatalf("after overflow: %+v", got)
	}
}

// TestTimeouts: a unit whose status never follows names the step and
// wraps ErrTimeout.
func TestTimeouts(t *testing.T) {
	for _, c := range []struct {
		stuck uint32
		step  string
	}{{GSTS_RTPS, "set root table pointer"}, {GSTS_TES, "enable translation"}} {
		f := newFakeUnit(t)
		f.stuck = c.stuck
		err := newUnit(t, f).BlockAll()
		if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), c.step) || !strings.Contains(err.Error(), "vt-d unit 0xfed90000") {
			t.Errorf("stuck %#x: %v", c.stuck, err)
		}
	}
}

// TestRefusals: no unit behind the registers, no page for the root
// table, queued invalidation left on.
func TestRefusals(t *testing.T) {
	if _, err := New(0xfed90000, absent{}, newFakePages()); err == nil || !strings.Contains(err.Error(), "VER_REG") {
		t.Errorf("absent unit: %v", err)
	}
	f := newFakeUnit(t)
	f.pages.fail = true
	if err := newUnit(t, f).BlockAll(); err == nil || !strings.Contains(err.Error(), "root table") {
		t.Errorf("no page: %v", err)
	}
	f = newFakeUnit(t)
	f.gsts = GSTS_QIES
	if err := newUnit(t, f).BlockAll(); err == nil || !strings.Contains(err.Error(), "QIES") {
		t.Errorf("queued invalidation on: %v", err)
	}
}

// absent reads all ones, as an unclaimed MMIO address does.
type absent struct{}

func (absent) Read32(uint32) uint32   { return ^uint32(0) }
func (absent) Read64(uint32) uint64   { return ^uint64(0) }
func (absent) Write32(uint32, uint32) {}
func (absent) Write64(uint32, uint64) {}

func TestDecodeFault(t *testing.T) {
	if _, ok := DecodeFault(0x1234, 0x7fff_ffff_ffff_ffff); ok {
		t.Fatal("a record without F decoded")
	}
	// What QEMU 7.2 records for a write by 00:03.0 to 0x7f5e123 through a
	// root entry without P.
	f, ok := DecodeFault(0x7f5e123, 1<<63|1<<32|0x0018)
	if !ok || f != (iommu.Fault{Source: 0x18, Addr: 0x7f5e000, Write: true, Reason: "root entry not present (0x1)"}) {
		t.Fatalf("%+v", f)
	}
	f, _ = DecodeFault(0, 1<<63|1<<62|0x99<<32|0xffff)
	if f.Write || f.Source != 0xffff || f.Reason != "fault reason 0x99" {
		t.Fatalf("%+v", f)
	}
}

// FuzzDecodeFault: any record the hardware writes decodes without
// panicking, to a page address (or, for an interrupt remapping fault, the
// interrupt index) and a source that round-trip.
func FuzzDecodeFault(f *testing.F) {
	f.Add(uint64(0x7f5e123), uint64(1<<63|1<<32|0x0018))
	f.Add(uint64(0), uint64(0))
	f.Add(uint64(5)<<48, uint64(1<<63|0x22<<32|0x0018))
	f.Fuzz(func(t *testing.T, lo, hi uint64) {
		d, ok := DecodeFault(lo, hi)
		if ok != (hi>>63 == 1) {
			t.Fatalf("ok %v for hi %#x", ok, hi)
		}
		if !ok {
			return
		}
		if r := hi >> 32 & 0xff; r >= 0x20 && r <= 0x26 {
			if !d.Interrupt || d.Addr != lo>>48 || d.Source != uint16(hi) || d.Reason == "" || !d.Write {
				t.Fatalf("interrupt fault %#x %#x: %+v", lo, hi, d)
			}
			return
		}
		if d.Interrupt || d.Addr&0xfff != 0 || d.Addr != lo&^0xfff || d.Source != uint16(hi) || d.Reason == "" || d.Write == (hi>>62&1 == 1) {
			t.Fatalf("%#x %#x: %+v", lo, hi, d)
		}
	})
}
