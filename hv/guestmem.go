package hv

import (
	"fmt"
	"sort"
	"sync/atomic"

	"gohv/ept"
	"gohv/hv/vcpu"
	"gohv/x86"
)

// GuestMemory is a partition's guest-physical address space: RAM ranges
// backed by host pages the partition owns, mapped in its nested tables, and
// MMIO ranges left unmapped so every access exits to an emulated device.
type GuestMemory struct {
	host  vcpu.HostMemory
	table *ept.Table
	ram   []ramRange // sorted by gpa, non-overlapping
	mmio  []mmioRange
	dev   deviceRanges // host device memory mapped in (passthrough.go)
}

type ramRange struct {
	gpa, size uint64
	hpa       []uint64 // host page of each guest page
}

type eptAlloc struct{ h vcpu.HostMemory }

func (a eptAlloc) AllocPage() (uint64, error) { return a.h.AllocPage() }
func (a eptAlloc) FreePage(hpa uint64)        { a.h.FreePage(hpa) }
func (a eptAlloc) Page(hpa uint64) *[512]uint64 {
	return tableView(a.h.Page(hpa))
}

func newGuestMemory(h vcpu.HostMemory, f ept.Format) (*GuestMemory, error) {
	t, err := ept.New(f, eptAlloc{h})
	if err != nil {
		return nil, err
	}
	return &GuestMemory{host: h, table: t}, nil
}

// NestedRoot is the value the backend loads as nCR3 (NPT) or the EPTP.
func (m *GuestMemory) NestedRoot() (uint64, error) {
	if m.table.Format() == ept.EPT {
		return m.table.EPTP()
	}
	return m.table.Root(), nil
}

// AddRAM backs [gpa, gpa+size) with fresh zeroed host pages.
func (m *GuestMemory) AddRAM(gpa, size uint64) error {
	if gpa%x86.PageSize != 0 || size%x86.PageSize != 0 || size == 0 || gpa+size < gpa {
		return fmt.Errorf("guest memory: RAM %#x+%#x is not page aligned", gpa, size)
	}
	if m.overlaps(gpa, size) {
		return fmt.Errorf("guest memory: RAM %#x+%#x overlaps an existing range", gpa, size)
	}
	r := ramRange{gpa: gpa, size: size, hpa: make([]uint64, 0, size/x86.PageSize)}
	undo := func() {
		for _, pa := range r.hpa {
			m.host.FreePage(pa)
		}
	}
	for i := uint64(0); i < size/x86.PageSize; i++ {
		pa, err := m.host.AllocPage()
		if err != nil {
			undo()
			return fmt.Errorf("guest memory: RAM page %d of %d: %w", i, size/x86.PageSize, err)
		}
		r.hpa = append(r.hpa, pa)
	}
	// Map runs of host-contiguous pages with one call each, so the tables
	// use large pages where the allocator happened to give them.
	for i := 0; i < len(r.hpa); {
		j := i + 1
		for j < len(r.hpa) && r.hpa[j] == r.hpa[j-1]+x86.PageSize {
			j++
		}
		g := gpa + uint64(i)*x86.PageSize
		if err := m.table.Map(g, r.hpa[i], uint64(j-i)*x86.PageSize, ept.RWX, ept.WB); err != nil {
			m.table.Unmap(gpa, uint64(i)*x86.PageSize)
			undo()
			return fmt.Errorf("guest memory: map %#x: %w", g, err)
		}
		i = j
	}
	m.ram = append(m.ram, r)
	sort.Slice(m.ram, func(a, b int) bool { return m.ram[a].gpa < m.ram[b].gpa })
	return nil
}

func (m *GuestMemory) overlaps(gpa, size uint64) bool {
	for _, r := range m.ram {
		if gpa < r.gpa+r.size && r.gpa < gpa+size {
			return true
		}
	}
	for _, r := range m.mmio {
		if gpa < r.gpa+r.size && r.gpa < gpa+size {
			return true
		}
	}
	return m.dev.overlaps(gpa, size)
}

// RAMSize is the total RAM.
func (m *GuestMemory) RAMSize() uint64 {
	var n uint64
	for _, r := range m.ram {
		n += r.size
	}
	return n
}

// RAMRanges calls fn for each RAM range in address order.
func (m *GuestMemory) RAMRanges(fn func(gpa, size uint64)) {
	for _, r := range m.ram {
		fn(r.gpa, r.size)
	}
}

// page returns the host page behind guest page gpa (any offset), or nil
// when gpa is not RAM. Guest-controlled gpa: bounds are checked here.
func (m *GuestMemory) page(gpa uint64) *[4096]byte {
	for i := range m.ram {
		r := &m.ram[i]
		if gpa >= r.gpa && gpa-r.gpa < r.size {
			return m.host.Page(r.hpa[(gpa-r.gpa)/x86.PageSize])
		}
	}
	return nil
}

// Page is the host view of guest page pfn (4 KiB units), for the root's
// services that share memory with the guest (VMBus rings). It stays valid
// until Destroy; a caller must stop using it before then. Guest-controlled
// pfn: an error wrapping ErrOutsideMemory when it is not RAM.
func (m *GuestMemory) Page(pfn uint64) (*[x86.PageSize]byte, error) {
	if pfn > (1<<64-1)/x86.PageSize {
		return nil, fmt.Errorf("guest memory: page %#x: %w", pfn, ErrOutsideMemory)
	}
	pg := m.page(pfn * x86.PageSize)
	if pg == nil {
		return nil, fmt.Errorf("guest memory: page %#x: %w", pfn, ErrOutsideMemory)
	}
	return pg, nil
}

// IsRAM reports whether gpa is backed by RAM.
func (m *GuestMemory) IsRAM(gpa uint64) bool { return m.page(gpa) != nil }

// ReadRAM copies guest RAM at gpa into b. Every byte must be RAM.
func (m *GuestMemory) ReadRAM(gpa uint64, b []byte) error {
	for len(b) > 0 {
		pg := m.page(gpa)
		if pg == nil {
			return fmt.Errorf("guest memory: read %#x: %w", gpa, ErrOutsideMemory)
		}
		n := copy(b, pg[gpa%x86.PageSize:])
		b, gpa = b[n:], gpa+uint64(n)
	}
	return nil
}

// WriteRAM copies b into guest RAM at gpa. Every byte must be RAM.
func (m *GuestMemory) WriteRAM(gpa uint64, b []byte) error {
	for len(b) > 0 {
		pg := m.page(gpa)
		if pg == nil {
			return fmt.Errorf("guest memory: write %#x: %w", gpa, ErrOutsideMemory)
		}
		n := copy(pg[gpa%x86.PageSize:], b)
		b, gpa = b[n:], gpa+uint64(n)
	}
	return nil
}

// ReadU64 reads an aligned or unaligned little-endian word of RAM.
func (m *GuestMemory) ReadU64(gpa uint64) (uint64, error) {
	var b [8]byte
	if err := m.ReadRAM(gpa, b[:]); err != nil {
		return 0, err
	}
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56, nil
}

// Destroy unmaps and frees everything. The partition must not run.
func (m *GuestMemory) Destroy() {
	for _, r := range m.ram {
		for _, pa := range r.hpa {
			m.host.FreePage(pa)
		}
	}
	m.ram = nil
	m.table.Destroy()
}

// casU64 compares and swaps an aligned qword of RAM (the walker setting
// accessed/dirty bits in the guest's page tables). One CPU runs the guest's
// VPs, and a VP's thread is the only writer while it handles its exit.
func (m *GuestMemory) casU64(gpa, old, new uint64) (bool, error) {
	pg := m.page(gpa)
	if pg == nil || gpa%8 != 0 {
		return false, fmt.Errorf("guest memory: page-table entry at %#x: %w", gpa, ErrOutsideMemory)
	}
	p := qwordAt(pg, gpa%x86.PageSize)
	if *p != old {
		return false, nil
	}
	*p = new
	return true, nil
}

// OrU32 atomically ORs bits into the aligned 32-bit word of RAM at gpa and
// returns its old value: a LOCK OR on the host mapping, so a guest VP
// clearing bits of the same word concurrently (SynIC event flags) loses
// nothing. Guest-controlled gpa: outside RAM or misaligned is an error.
func (m *GuestMemory) OrU32(gpa uint64, bits uint32) (uint32, error) {
	pg := m.page(gpa)
	if pg == nil || gpa%4 != 0 {
		return 0, fmt.Errorf("guest memory: word at %#x: %w", gpa, ErrOutsideMemory)
	}
	return atomic.OrUint32(u32At(pg, gpa%x86.PageSize), bits), nil
}

// CmpxchgU32 atomically replaces old with new in the aligned 32-bit word
// of RAM at gpa (a SynIC message slot's type). Guest-controlled gpa.
func (m *GuestMemory) CmpxchgU32(gpa uint64, old, new uint32) (bool, error) {
	pg := m.page(gpa)
	if pg == nil || gpa%4 != 0 {
		return false, fmt.Errorf("guest memory: word at %#x: %w", gpa, ErrOutsideMemory)
	}
	return atomic.CompareAndSwapUint32(u32At(pg, gpa%x86.PageSize), old, new), nil
}
