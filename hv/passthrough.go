package hv

import (
	"fmt"
	"sync"

	"gohv/ept"
	"gohv/x86"
)

// Device assignment's view of a partition's memory: the host pages behind
// its RAM (for an IOMMU domain that maps exactly them at their
// guest-physical addresses) and host device memory — an assigned PCI
// function's BARs — mapped into its guest-physical space.

// deviceRanges are the host device memory ranges mapped into a partition:
// its own lock, because an assigned device's BAR moves when the guest
// relocates it, on a VP's thread while the others run.
type deviceRanges struct {
	mu sync.Mutex
	r  []deviceRange
}

type deviceRange struct{ gpa, hpa, size uint64 }

func (d *deviceRanges) overlaps(gpa, size uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.r {
		if gpa < r.gpa+r.size && r.gpa < gpa+size {
			return true
		}
	}
	return false
}

// RAMHostRuns calls fn for each run of guest RAM whose host pages are
// contiguous, in address order: [gpa, gpa+size) is backed by [hpa,
// hpa+size). The pages stay the partition's until Destroy.
func (m *GuestMemory) RAMHostRuns(fn func(gpa, hpa, size uint64)) {
	for _, r := range m.ram {
		for i := 0; i < len(r.hpa); {
			j := i + 1
			for j < len(r.hpa) && r.hpa[j] == r.hpa[j-1]+x86.PageSize {
				j++
			}
			fn(r.gpa+uint64(i)*x86.PageSize, r.hpa[i], uint64(j-i)*x86.PageSize)
			i = j
		}
	}
}

// MapDevice maps host device memory [hpa, hpa+size) — an assigned
// function's memory BAR — at guest-physical [gpa, gpa+size), read and
// write, no execute, uncacheable, so the guest reaches the device's
// registers without exits. The range must not overlap RAM, an emulated
// MMIO range or another device range. Safe while the partition runs: a
// mapping only fills entries that were not present, which neither
// processor caches (SDM Vol. 3C 28.4, APM Vol. 2 15.25), so no VP needs
// its nested TLB flushed. There is deliberately no unmap: taking a
// mapping away from running VPs needs an invalidation on every CPU that
// ran them, which the core does not do at run time; the mappings go with
// the partition's memory at Destroy. gpa and size are the root's (checked
// here against the partition's map), hpa the host device's.
func (m *GuestMemory) MapDevice(gpa, hpa, size uint64) error {
	if gpa%x86.PageSize != 0 || hpa%x86.PageSize != 0 || size%x86.PageSize != 0 || size == 0 || gpa+size < gpa {
		return fmt.Errorf("guest memory: device range %#x+%#x at host %#x is not page aligned", gpa, size, hpa)
	}
	for _, r := range m.ram {
		if gpa < r.gpa+r.size && r.gpa < gpa+size {
			return fmt.Errorf("guest memory: device range %#x+%#x overlaps RAM", gpa, size)
		}
	}
	if gpa < interruptWindowTop && IOAPICBase < gpa+size {
		return fmt.Errorf("guest memory: device range %#x+%#x overlaps the interrupt controllers", gpa, size)
	}
	for _, r := range m.mmio {
		if gpa < r.gpa+r.size && r.gpa < gpa+size {
			return fmt.Errorf("guest memory: device range %#x+%#x overlaps emulated MMIO at %#x", gpa, size, r.gpa)
		}
	}
	m.dev.mu.Lock()
	defer m.dev.mu.Unlock()
	for _, r := range m.dev.r {
		if gpa < r.gpa+r.size && r.gpa < gpa+size {
			return fmt.Errorf("guest memory: device range %#x+%#x overlaps device memory at %#x", gpa, size, r.gpa)
		}
	}
	if err := m.table.Map(gpa, hpa, size, ept.Read|ept.Write, ept.UC); err != nil {
		return fmt.Errorf("guest memory: device range %#x+%#x: %w", gpa, size, err)
	}
	m.dev.r = append(m.dev.r, deviceRange{gpa, hpa, size})
	return nil
}

// DeviceAt reports whether gpa lies in mapped device memory, and the host
// address behind it.
func (m *GuestMemory) DeviceAt(gpa uint64) (hpa uint64, ok bool) {
	m.dev.mu.Lock()
	defer m.dev.mu.Unlock()
	for _, r := range m.dev.r {
		if gpa >= r.gpa && gpa-r.gpa < r.size {
			return r.hpa + gpa - r.gpa, true
		}
	}
	return 0, false
}
