package amdvi

import (
	"errors"
	"slices"
	"testing"

	"gohv/iommu"
)

const edu = 0x0018 // 00:03.0

func blockedUnit(t *testing.T) (*fakeUnit, *Unit) {
	t.Helper()
	f := newFakeUnit(t)
	u := newUnit(t, f, qemuConfig)
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

// TestDomainTranslates: 4 MiB of RAM at IOVA 0 on host pages at
// 0x4000_0000 (two 2 MiB pages) and one read-only 4 KiB page: the edu
// device reaches the right host bytes, its write to the read-only page,
// an unmapped read and another device's request are refused with
// IO_PAGE_FAULTs naming the domain; the edu device's reach the domain's
// callback. Attach invalidates the entry and the domain's pages and
// waits for completion.
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
	want := []string{"INVALIDATE_DEVTAB_ENTRY 0x18", "INVALIDATE_IOMMU_PAGES 1 all", "COMPLETION_WAIT 0x2"}
	if got := f.commands(); !slices.Equal(got, want) {
		t.Fatalf("attach: %q, want %q", got, want)
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
	f.translate(edu, 0x40_0010, true)
	f.translate(edu, 0x80_0000, false)
	f.translate(0x0020, 0x1000, true)
	got := u.Faults()
	if len(got) != 3 || !got[0].Write || got[0].Addr != 0x40_0000 || got[1].Write || got[1].Addr != 0x80_0000 || got[2].Source != 0x20 {
		t.Fatalf("faults %+v", got)
	}
	if len(routed) != 2 || routed[0] != got[0] {
		t.Errorf("routed %+v", routed)
	}
	if f.mem.flushed[d.root] == 0 {
		t.Error("page-table root not written back for a unit without the Coherent flag")
	}
}

// TestDomainUnmapInvalidates: a cached translation is gone after Unmap (a
// 4 KiB page by its own INVALIDATE_IOMMU_PAGES, a longer range by the
// domain's every page), and the 2 MiB page around it is split so its
// other pages still translate; unmapping everything frees every table
// page but the root.
func TestDomainUnmapInvalidates(t *testing.T) {
	f, u := blockedUnit(t)
	d := newDomain(t, u)
	if err := d.Map(0, 0x4000_0000, 4<<20, iommu.ReadWrite); err != nil {
		t.Fatal(err)
	}
	if err := d.Attach(edu); err != nil {
		t.Fatal(err)
	}
	for _, iova := range []uint64{0x5000, 0x6000, 0x8000, 0x9000} {
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
	want := []string{"INVALIDATE_IOMMU_PAGES 1 0x5000+1", "COMPLETION_WAIT 0x3", "INVALIDATE_IOMMU_PAGES 1 all", "COMPLETION_WAIT 0x4"}
	if got := f.commands(); !slices.Equal(got, want) {
		t.Fatalf("invalidations %q, want %q", got, want)
	}
	for _, iova := range []uint64{0x5000, 0x6000, 0x8000} {
		if f.dma(edu, iova, true) {
			t.Errorf("iova %#x reached memory after unmap", iova)
		}
	}
	if hpa, ok := f.translate(edu, 0x9000, true); !ok || hpa != 0x4000_9000 {
		t.Errorf("iova 0x9000 after the split: %#x %v", hpa, ok)
	}
	if hpa, ok := f.translate(edu, 0x20_1000, true); !ok || hpa != 0x4020_1000 {
		t.Errorf("second 2 MiB page: %#x %v", hpa, ok)
	}
	if err := d.Unmap(0, 4<<20); err != nil {
		t.Fatal(err)
	}
	if len(d.live) != 1 {
		t.Errorf("%d table pages after unmapping everything, want the root", len(d.live))
	}
}

// TestDomainDetachBlocks: Detach writes the blocking entry back (the
// device is refused again), attaching while attached is refused, and
// Destroy frees every table page and the DomainID.
func TestDomainDetachBlocks(t *testing.T) {
	f, u := blockedUnit(t)
	before := len(f.mem.pages)
	d := newDomain(t, u)
	if err := d.Map(0x10_0000, 0x4000_0000, 0x20_0000, iommu.ReadWrite); err != nil {
		t.Fatal(err)
	}
	if err := d.Attach(edu); err != nil {
		t.Fatal(err)
	}
	d2 := newDomain(t, u)
	if err := d2.Attach(edu); !errors.Is(err, iommu.ErrAttached) {
		t.Fatalf("attach to a second domain: %v", err)
	}
	if !f.dma(edu, 0x10_0000, true) {
		t.Fatal("attached device refused")
	}
	if err := d.Detach(edu); err != nil {
		t.Fatal(err)
	}
	if f.dma(edu, 0x10_0000, true) {
		t.Fatal("detached device reached memory")
	}
	pa := f.devTab&DevTabBase + edu*DTESize
	if q := f.mem.read64(pa); q != u.blockingDTE() || f.mem.read64(pa+8) != 0 {
		t.Fatalf("DTE after detach %#x", q)
	}
	if err := d2.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := d.Destroy(); err != nil {
		t.Fatal(err)
	}
	if n := len(f.mem.pages) - before; n != 0 {
		t.Fatalf("%d pages left after Destroy", n)
	}
	if err := d.Attach(edu); !errors.Is(err, iommu.ErrDestroyed) {
		t.Fatalf("attach after destroy: %v", err)
	}
	if d3 := newDomain(t, u); d3.ID() != 1 {
		t.Fatalf("DomainID %d after both were destroyed", d3.ID())
	}
	if _, err := u.NewDomain(); err != nil {
		t.Fatal(err)
	}
	if err := d.Map(0, 0, 0x1000, iommu.Read); !errors.Is(err, iommu.ErrDestroyed) {
		t.Fatalf("map after destroy: %v", err)
	}
}

// TestMapRefusals: unaligned, write-only, overlapping, out of range, a
// device beyond the table, and a failed allocation leaves nothing mapped.
func TestMapRefusals(t *testing.T) {
	f, u := blockedUnit(t)
	d := newDomain(t, u)
	if err := d.Map(0, 0x4000_0000, 0x1000, iommu.Read); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		iova, hpa, size uint64
		p               iommu.Perm
	}{{0x800, 0, 0x1000, iommu.Read}, {0x1000, 0, 0x1000, iommu.Write}, {0, 0x5000, 0x1000, iommu.Read}, {1<<48 - 0x1000, 0, 0x2000, iommu.Read}} {
		if err := d.Map(c.iova, c.hpa, c.size, c.p); err == nil {
			t.Errorf("map %+v accepted", c)
		}
	}
	if err := d.Attach(0x0100); !errors.Is(err, iommu.ErrOutside) {
		t.Errorf("device on bus 1 with a bus-0 table: %v", err)
	}
	f.mem.fail = true
	if err := d.Map(1<<40, 0x8000_0000, 0x1000, iommu.Read); err == nil {
		t.Fatal("map without pages")
	}
	f.mem.fail = false
	if _, _, _, ok := d.Translate(1 << 40); ok {
		t.Fatal("failed map left a mapping")
	}
}

// TestDomainModel: random maps and unmaps of 4 KiB and 2 MiB pages in an
// 8 MiB window agree, page by page, with a map of IOVA to host page — in
// Translate and in the fake unit's walk of the device's requests — and
// unmapping everything leaves only the root.
func TestDomainModel(t *testing.T) {
	f, u := blockedUnit(t)
	d := newDomain(t, u)
	if err := d.Attach(edu); err != nil {
		t.Fatal(err)
	}
	model := map[uint64]uint64{}
	rnd := uint64(0x9e3779b97f4a7c15)
	next := func(n uint64) uint64 {
		rnd ^= rnd << 13
		rnd ^= rnd >> 7
		rnd ^= rnd << 17
		return rnd % n
	}
	const window = 8 << 20
	for step := 0; step < 400; step++ {
		size := iommu.Size4K * (1 + next(4))
		if next(3) == 0 {
			size = iommu.Size2M
		}
		iova := next(window/size) * size
		if next(2) == 0 {
			hpa := 0x4000_0000 + next(64)*iommu.Size2M
			free := true
			for a := iova; a < iova+size; a += iommu.Size4K {
				_, mapped := model[a]
				free = free && !mapped
			}
			err := d.Map(iova, hpa, size, iommu.ReadWrite)
			if free != (err == nil) {
				t.Fatalf("step %d: map %#x+%#x: %v with the range free=%v", step, iova, size, err, free)
			}
			if err == nil {
				for a := uint64(0); a < size; a += iommu.Size4K {
					model[iova+a] = hpa + a
				}
			}
		} else {
			if err := d.Unmap(iova, size); err != nil {
				t.Fatal(err)
			}
			for a := iova; a < iova+size; a += iommu.Size4K {
				delete(model, a)
			}
		}
		for a := uint64(0); a < window; a += iommu.Size4K {
			want, mapped := model[a]
			got, _, _, ok := d.Translate(a + 8)
			if ok != mapped || ok && got != want+8 {
				t.Fatalf("step %d: iova %#x translates to %#x %v, want %#x %v", step, a, got, ok, want, mapped)
			}
			if dev, ok := f.translate(edu, a, true); ok != mapped || ok && dev != want {
				t.Fatalf("step %d: the unit takes iova %#x to %#x %v, want %#x %v", step, a, dev, ok, want, mapped)
			}
		}
		u.Faults()
	}
	if err := d.Unmap(0, window); err != nil {
		t.Fatal(err)
	}
	if len(d.live) != 1 {
		t.Fatalf("%d table pages left", len(d.live))
	}
}
