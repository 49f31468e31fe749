package physmem

// Memory-map entry types, as the Multiboot information structure reports
// them (Multiboot Specification 0.6.96 §3.3) and the BIOS E820 call and ACPI
// (ACPI 6.5 §15, Table 15.1) define them. Only TypeUsable is RAM the kernel
// may allocate; every other value, including ones not listed, is reserved.
const (
	TypeUsable          = 1
	TypeReserved        = 2
	TypeACPIReclaimable = 3
	TypeACPINVS         = 4
	TypeBadRAM          = 5
)

// MemoryMap turns a firmware memory map into the usable set. Entries may
// arrive in any order and overlap; where a reserved entry overlaps a usable
// one, reserved wins, whichever came first. Usable entries shrink to whole
// pages; reserved ones grow to whole pages. The zero value is empty.
// Pointer-free; at about 4 KiB it belongs in a global or on a boot stack.
type MemoryMap struct {
	usable   Map
	reserved Map
	overflow bool
}

// Add records one entry. It returns false when the entry cannot be recorded
// exactly (more than MaxRanges distinct usable or reserved ranges): a usable
// entry is then dropped, a reserved one is merged into its nearest reserved
// neighbour, and Build reports failure too. A zero-length entry is ignored;
// one that runs past 2^64 is clipped.
// Runs with interrupts off; must not allocate.
func (mm *MemoryMap) Add(base, length uint64, typ uint32) bool {
	if length == 0 {
		return true
	}
	end := base + length
	if end < base {
		end = ^uint64(0)
	}
	var ok bool
	if typ == TypeUsable {
		ok = mm.usable.AddUsable(base, end)
	} else {
		s := base &^ pageMask
		e, fits := alignUp(end)
		if !fits {
			e = lastPage
		}
		if s < e && !mm.reserved.add(s, e) {
			// Out of room: widen the nearest reserved range over this one.
			// Reserving too much loses RAM; reserving too little is unsafe.
			mm.reserved.widen(s, e)
			ok = false
		} else {
			ok = true
		}
	}
	if !ok {
		mm.overflow = true
	}
	return ok
}

// Build stores the usable set (usable entries minus reserved ones) in dst.
// It returns false if any entry was lost (Add failed) or reserving split the
// usable set beyond MaxRanges; dst is then still safe to allocate from — it
// never includes reserved memory — but may miss some RAM.
// Must not allocate.
func (mm *MemoryMap) Build(dst *Map) bool {
	*dst = mm.usable
	ok := !mm.overflow
	for i := 0; i < mm.reserved.n; i++ {
		r := mm.reserved.r[i]
		if !dst.Reserve(r.Start, r.End) {
			ok = false
		}
	}
	return ok
}

// Reserved stores the reserved ranges (merged, widened to whole pages) in
// dst, for reports.
func (mm *MemoryMap) Reserved(dst *Map) { *dst = mm.reserved }

// widen covers [s, e) by stretching the range nearest to it. The map must be
// non-empty and [s, e) must not overlap or touch any of its ranges.
// Runs with interrupts off; must not allocate.
func (m *Map) widen(s, e uint64) {
	if m.n == 0 {
		return
	}
	i := 0
	for i < m.n && m.r[i].End < s {
		i++
	}
	switch {
	case i == m.n:
		m.r[i-1].End = e
	case i == 0:
		m.r[0].Start = s
	case s-m.r[i-1].End <= m.r[i].Start-e:
		m.r[i-1].End = e
	default:
		m.r[i].Start = s
	}
}
