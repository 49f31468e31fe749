package vtd

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"gohv/iommu"
)

const edu = 0x0018 // 00:03.0

// blockedUnit is a fake QEMU unit after BlockAll, its log cleared.
func blockedUnit(t *testing.T) (*fakeUnit, *Unit) {
	t.Helper()
	f := newFakeUnit(t)
	u := newUnit(t, f)
	if err := u.BlockAll(); err != nil {
		t.Fatal(err)
	}
	f.log = nil
	return f, u
}

func newDomain(t *testing.T, u *Unit) *Domain {
	t.Helper()
	d, err := u.NewDomain()
	if err != nil {
		t.Fatal(err)
	}
	return d.(*Domain)
}

// TestDomainTranslates: a partition-like domain (4 MiB of RAM at IOVA 0 on
// host pages at 0x4000_0000, one read-only page above it) attached to the
// edu device: IOVAs reach the right host bytes through 2 MiB pages and a
// 4 KiB page, a write to the read-only page faults with reason 5h, an
// IOVA outside the mapping with 6h (read) and one beyond the 39-bit
// width with 4h, another device on the bus with 2h; each of the edu
// device's faults reaches the domain's callback, the other device's not.
func TestDomainTranslates(t *testing.T) {
	f, u := blockedUnit(t)
	d := newDomain(t, u)
	var routed []iommu.Fault
	d.OnFault(func(x iommu.Fault) { routed = append(routed, x) })
	if err := d.Map(0, 0x4000_0000, 4<<20, iommu.ReadWrite); err != nil {
		t.Fatal(err)
	}
	if err := d.Map(0x40_0000, 0x7000_0000, 0x1000, iommu.Read); err != nil {
		t.Fatal(err)
	}
	if err := d.Attach(edu); err != nil {
		t.Fatal(err)
	}
	want := []string{"CCMD global", "IOTLB domain 1", "QI wait"}
	if !slices.Equal(f.log, want) {
		t.Fatalf("attach: %q, want %q", f.log, want)
	}
	for _, c := range []struct {
		iova, hpa uint64
		write     bool
	}{{0x1234, 0x4000_1234, true}, {0x3f_fff8, 0x403f_fff8, false}, {0x40_0010, 0x7000_0010, false}} {
		if hpa, ok := f.translate(edu, c.iova, c.write); !ok || hpa != c.hpa {
			t.Errorf("iova %#x: %#x %v, want %#x", c.iova, hpa, ok, c.hpa)
		}
	}
	if _, _, size, _ := d.Translate(0x20_0000); size != iommu.Size2M {
		t.Errorf("page size at 2 MiB: %#x", size)
	}
	// QEMU's unit has one fault record: each fault is read before the next.
	var got []iommu.Fault
	for _, r := range []struct {
		sid   uint16
		iova  uint64
		write bool
	}{{edu, 0x40_0010, true}, {edu, 0x80_0000, false}, {edu, 1 << 39, false}, {0x0020, 0x1000, true}} {
		f.translate(r.sid, r.iova, r.write)
		got = append(got, u.Faults()...)
	}
	reasons := []string{"write to a page without write permission (0x5)", "read of a page without read permission (0x6)",
		"address beyond the guest address width (0x4)", "context entry not present (0x2)"}
	if len(got) != 4 {
		t.Fatalf("faults %+v", got)
	}
	for i, r := range reasons {
		if got[i].Reason != r {
			t.Errorf("fault %d: %+v, want reason %q", i, got[i], r)
		}
	}
	if len(routed) != 3 || routed[0] != got[0] || routed[2].Addr != 1<<39 {
		t.Errorf("routed to the domain: %+v", routed)
	}
	if !slices.Contains(f.pages.flushed, d.table.Root()) {
		t.Error("second-level root not written back on a unit without page-walk coherency")
	}
}

// TestDomainUnmapInvalidates: a translation the unit has cached (the
// fake's IOTLB keeps it until an invalidation covers it) is gone after
// Unmap — a 4 KiB page by a page-selective invalidation, an unaligned
// range by a domain-selective one — and the 2 MiB page around it is split
// so its other pages still translate.
func TestDomainUnmapInvalidates(t *testing.T) {
	f, u := blockedUnit(t)
	d := newDomain(t, u)
	if err := d.Map(0, 0x4000_0000, 4<<20, iommu.ReadWrite); err != nil {
		t.Fatal(err)
	}
	if err := d.Attach(edu); err != nil {
		t.Fatal(err)
	}
	for _, iova := range []uint64{0x5000, 0x6000, 0x9000} {
		if !f.dma(edu, iova, true) {
			t.Fatalf("iova %#x before unmap", iova)
		}
	}
	f.log = nil
	if err := d.Unmap(0x5000, 0x1000); err != nil {
		t.Fatal(err)
	}
	if err := d.Unmap(0x6000, 0x3000); err != nil {
		t.Fatal(err)
	}
	want := []string{"IOTLB page did 1 0x5000+1", "QI wait", "IOTLB domain 1", "QI wait"}
	if !slices.Equal(f.log, want) {
		t.Fatalf("invalidations %q, want %q", f.log, want)
	}
	for _, iova := range []uint64{0x5000, 0x6000, 0x8000} {
		if f.dma(edu, iova, true) {
			t.Errorf("iova %#x reached memory after unmap", iova)
		}
		if got := u.Faults(); len(got) != 1 || got[0].Addr != iova {
			t.Errorf("iova %#x: faults %+v", iova, got)
		}
	}
	if hpa, ok := f.translate(edu, 0x9000, true); !ok || hpa != 0x4000_9000 {
		t.Errorf("iova 0x9000 after the split: %#x %v", hpa, ok)
	}
}

// TestDomainDetachBlocks: after Detach the device's cached context entry
// is invalidated and its requests fault with reason 2h; it can then join
// another domain, but not while attached; Destroy frees every table page
// and the domain ID.
func TestDomainDetachBlocks(t *testing.T) {
	f, u := blockedUnit(t)
	before := len(f.pages.pages)
	d := newDomain(t, u)
	if err := d.Map(0, 0x4000_0000, 4<<20, iommu.ReadWrite); err != nil {
		t.Fatal(err)
	}
	if err := d.Attach(edu); err != nil {
		t.Fatal(err)
	}
	d2 := newDomain(t, u)
	if d2.ID() != 2 {
		t.Fatalf("second domain ID %d", d2.ID())
	}
	if err := d2.Attach(edu); !errors.Is(err, iommu.ErrAttached) {
		t.Fatalf("attach to a second domain: %v", err)
	}
	f.dma(edu, 0x1000, true)
	f.log = nil
	if err := d.Detach(edu); err != nil {
		t.Fatal(err)
	}
	if want := []string{"CCMD device 00:03.0 did 1", "IOTLB domain 1", "QI wait"}; !slices.Equal(f.log, want) {
		t.Fatalf("detach: %q, want %q", f.log, want)
	}
	if f.dma(edu, 0x1000, true) {
		t.Fatal("detached device reached memory")
	}
	if got := u.Faults(); len(got) != 1 || got[0].Reason != "context entry not present (0x2)" {
		t.Fatalf("faults %+v", got)
	}
	if err := d.Detach(edu); !errors.Is(err, iommu.ErrNotAttached) {
		t.Fatalf("second detach: %v", err)
	}
	if err := d2.Attach(edu); err != nil {
		t.Fatal(err)
	}
	if err := d2.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := d.Destroy(); err != nil {
		t.Fatal(err)
	}
	if f.dma(edu, 0x1000, false) {
		t.Fatal("device of a destroyed domain reached memory")
	}
	// What stays: bus 0's context table.
	if n := len(f.pages.pages) - before; n != 1 {
		t.Fatalf("%d pages left after Destroy, want the context table", n)
	}
	if err := d.Map(0, 0x1000, 0x1000, iommu.Read); !errors.Is(err, iommu.ErrDestroyed) {
		t.Fatalf("map after destroy: %v", err)
	}
	if d3 := newDomain(t, u); d3.ID() != 1 {
		t.Fatalf("domain ID %d after both were destroyed", d3.ID())
	}
}

// TestDomainLevels: QEMU's SAGAW (39 bits only) gives a 3-level table and
// refuses IOVAs from 2^39; a unit offering 48 bits gets 4 levels and
// translates there.
func TestDomainLevels(t *testing.T) {
	_, u := blockedUnit(t)
	d := newDomain(t, u)
	if d.aw != AW39 {
		t.Fatalf("aw %d", d.aw)
	}
	if err := d.Map(1<<39, 0x1000, 0x1000, iommu.Read); err == nil {
		t.Fatal("mapped an IOVA beyond 39 bits")
	}
	f := newFakeUnit(t)
	f.cap = f.cap&^(capSAGAWMask<<capSAGAWShift) | 4<<capSAGAWShift
	u = newUnit(t, f)
	if err := u.BlockAll(); err != nil {
		t.Fatal(err)
	}
	d = newDomain(t, u)
	if err := d.Map(1<<40, 0x8000_0000, 1<<21, iommu.ReadWrite); err != nil {
		t.Fatal(err)
	}
	if err := d.Attach(0x0100); err != nil {
		t.Fatal(err)
	}
	if hpa, ok := f.translate(0x0100, 1<<40|0x1ff000, true); !ok || hpa != 0x801f_f000 {
		t.Fatalf("4-level: %#x %v", hpa, ok)
	}
}

// TestMapRefusals: unaligned, write-only, out of range; and NewDomain
// before BlockAll.
func TestMapRefusals(t *testing.T) {
	_, u := blockedUnit(t)
	d := newDomain(t, u)
	for _, c := range []struct {
		iova, hpa, size uint64
		p               iommu.Perm
	}{{0x800, 0, 0x1000, iommu.Read}, {0, 0, 0x1000, iommu.Write}, {0, 0, 0, iommu.Read}, {1<<39 - 0x1000, 0, 0x2000, iommu.Read}, {0, 1 << 52, 0x1000, iommu.Read}} {
		if err := d.Map(c.iova, c.hpa, c.size, c.p); err == nil {
			t.Errorf("map %+v accepted", c)
		}
	}
	if _, err := newUnit(t, newFakeUnit(t)).NewDomain(); err == nil {
		t.Error("domain before BlockAll")
	}
}

// TestDomainRegisterInvalidation: a unit without queued invalidation
// (ECAP_REG.QI clear) gets the same requests through CCMD_REG and
// IOTLB_REG, and BlockAll leaves QIE off.
func TestDomainRegisterInvalidation(t *testing.T) {
	f := newFakeUnit(t)
	f.ecap &^= ecapQI
	u := newUnit(t, f)
	if err := u.BlockAll(); err != nil {
		t.Fatal(err)
	}
	if f.gsts&GSTS_QIES != 0 {
		t.Fatal("QIE on a unit without QI")
	}
	f.log = nil
	d := newDomain(t, u)
	if err := d.Map(0, 0x4000_0000, 4<<20, iommu.ReadWrite); err != nil {
		t.Fatal(err)
	}
	if err := d.Attach(edu); err != nil {
		t.Fatal(err)
	}
	if err := d.Unmap(0x5000, 0x1000); err != nil {
		t.Fatal(err)
	}
	if err := d.Detach(edu); err != nil {
		t.Fatal(err)
	}
	want := []string{"CCMD global", "IOTLB domain 1", "IOTLB page did 1 0x5000+1", "CCMD device 00:03.0 did 1", "IOTLB domain 1"}
	if !slices.Equal(f.log, want) {
		t.Fatalf("%q, want %q", f.log, want)
	}
}

// TestQueueTimeoutAndError: a wait whose status never arrives times out
// naming the step; a descriptor the unit refuses (IQE) fails at once.
func TestQueueTimeoutAndError(t *testing.T) {
	f, u := blockedUnit(t)
	d := newDomain(t, u)
	f.noWait = true
	if err := d.Attach(edu); !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "context-cache invalidation for 00:03.0") {
		t.Fatalf("no status: %v", err)
	}
	f.noWait = false
	f.fsts |= FSTS_IQE
	if err := d.Unmap(0, 0x1000); err == nil || !strings.Contains(err.Error(), "refused a queued descriptor") {
		t.Fatalf("IQE: %v", err)
	}
}

// TestBlockAllAgainWithQueue: after Disable, BlockAll points the unit at
// the root table again with its invalidations through the queue (the
// registers are not allowed while QIE is set).
func TestBlockAllAgainWithQueue(t *testing.T) {
	f, u := blockedUnit(t)
	if err := u.Disable(); err != nil {
		t.Fatal(err)
	}
	f.log = nil
	if err := u.BlockAll(); err != nil {
		t.Fatal(err)
	}
	want := []string{"FECTL 0x80000000", "RTADDR 0x80000", "SRTP", "CCMD global", "QI wait", "IOTLB global", "QI wait", "TE on"}
	if !slices.Equal(f.log, want) {
		t.Fatalf("%q, want %q", f.log, want)
	}
}
