package emul

import (
	"encoding/binary"
	"fmt"
)

// mmioAccess is one access the fake device saw.
type mmioAccess struct {
	Write bool
	GPA   uint64
	Width int
	Value uint64
}

func (a mmioAccess) String() string {
	d := "R"
	if a.Write {
		d = "W"
	}
	return fmt.Sprintf("%s%d@%#x=%#x", d, a.Width, a.GPA, a.Value)
}

type xlateCall struct {
	LA  uint64
	Acc Access
}

// fakeMem is a guest: sparse RAM, one MMIO window that logs accesses and
// answers with programmable values, and a page map from linear to
// guest-physical pages. It checks the rules Emulate promises: every access
// stays within one page, lies on a page Translate returned during this
// call (writes only on pages translated for writing), and MMIO data
// accesses have width 1, 2, 4 or 8 unless split at a page boundary.
type fakeMem struct {
	ram      map[uint64]byte   // gpa -> byte; absent bytes read as 0
	pages    map[uint64]uint64 // la page -> gpa page; absent: identity
	fault    map[uint64]uint32 // la page -> #PF error code to return
	mmioBase uint64
	mmioSize uint64
	mmioVal  map[uint64]uint64 // gpa -> value returned by an MMIO read there
	mmioDef  uint64            // value for other MMIO reads (masked to width)
	// xlate, if set, maps la pages absent from pages; a non-zero fault
	// (bit 8 is a marker) means #PF with error code fault&^0x100.
	xlate func(page uint64) (gpage uint64, fault uint32)

	failRead  error // if set, MMIO reads fail with it
	failWrite error // if set, MMIO writes fail with it

	log     []mmioAccess
	xlates  []xlateCall
	granted map[uint64]Access // gpa page -> union of access kinds translated
	errs    []string          // rule violations
}

func newFakeMem() *fakeMem {
	return &fakeMem{
		ram:      map[uint64]byte{},
		pages:    map[uint64]uint64{},
		fault:    map[uint64]uint32{},
		mmioBase: 0xd0000000,
		mmioSize: 0x10000,
		mmioVal:  map[uint64]uint64{},
		mmioDef:  0x8877665544332211,
		granted:  map[uint64]Access{},
	}
}

func (m *fakeMem) isMMIO(gpa uint64) bool {
	return gpa >= m.mmioBase && gpa-m.mmioBase < m.mmioSize
}

func (m *fakeMem) Translate(la uint64, acc Access) (uint64, error) {
	m.xlates = append(m.xlates, xlateCall{la, acc})
	page := la &^ 0xfff
	if code, ok := m.fault[page]; ok {
		return 0, &PageFault{Addr: la, Code: code}
	}
	gpage, ok := m.pages[page]
	if !ok {
		gpage = page
		if m.xlate != nil {
			var f uint32
			gpage, f = m.xlate(page)
			if f != 0 {
				return 0, &PageFault{Addr: la, Code: f &^ 0x100}
			}
		}
	}
	m.granted[gpage] |= acc | 1<<30 // bit 30: translated at all
	return gpage | la&0xfff, nil
}

func (m *fakeMem) check(gpa uint64, n int, write bool) {
	if n < 1 || n > 15 {
		m.errs = append(m.errs, fmt.Sprintf("access of %d bytes at %#x", n, gpa))
		return
	}
	if gpa&0xfff+uint64(n) > 4096 {
		m.errs = append(m.errs, fmt.Sprintf("access of %d bytes at %#x crosses a page", n, gpa))
	}
	g, ok := m.granted[gpa&^0xfff]
	if !ok {
		m.errs = append(m.errs, fmt.Sprintf("access at %#x to a page never translated", gpa))
	}
	if write && g&AccessWrite == 0 {
		m.errs = append(m.errs, fmt.Sprintf("write at %#x to a page not translated for writing", gpa))
	}
	// A data access has the operand's width unless it is one half of an
	// operand split at a page boundary; only fetches read other sizes.
	split := gpa&0xfff == 0 || gpa&0xfff+uint64(n) == 4096
	if n != 1 && n != 2 && n != 4 && n != 8 && !split {
		if write || g&AccessFetch == 0 || m.isMMIO(gpa) {
			m.errs = append(m.errs, fmt.Sprintf("access of %d bytes at %#x (mmio %v)", n, gpa, m.isMMIO(gpa)))
		}
	}
}

func le(b []byte) uint64 {
	var v [8]byte
	copy(v[:], b)
	return binary.LittleEndian.Uint64(v[:])
}

func (m *fakeMem) Read(gpa uint64, b []byte) error {
	m.check(gpa, len(b), false)
	if m.isMMIO(gpa) && m.failRead != nil {
		return m.failRead
	}
	if m.isMMIO(gpa) {
		v, ok := m.mmioVal[gpa]
		if !ok {
			v = m.mmioDef
		}
		var buf [8]byte
		binary.LittleEndian.PutUint64(buf[:], v)
		copy(b, buf[:])
		if len(b) > 8 {
			clear(b[8:])
		}
		m.log = append(m.log, mmioAccess{false, gpa, len(b), le(b)})
		return nil
	}
	for i := range b {
		b[i] = m.ram[gpa+uint64(i)]
	}
	return nil
}

func (m *fakeMem) Write(gpa uint64, b []byte) error {
	m.check(gpa, len(b), true)
	if m.isMMIO(gpa) && m.failWrite != nil {
		return m.failWrite
	}
	if m.isMMIO(gpa) {
		m.log = append(m.log, mmioAccess{true, gpa, len(b), le(b)})
		return nil
	}
	for i, c := range b {
		m.ram[gpa+uint64(i)] = c
	}
	return nil
}

// put stores bytes at a linear address through the page map.
func (m *fakeMem) put(la uint64, b []byte) {
	for i, c := range b {
		a := la + uint64(i)
		gp, ok := m.pages[a&^0xfff]
		if !ok {
			gp = a &^ 0xfff
		}
		m.ram[gp|a&0xfff] = c
	}
}

func (m *fakeMem) putU64(gpa, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	for i, c := range b {
		m.ram[gpa+uint64(i)] = c
	}
}

func (m *fakeMem) ramU64(gpa uint64) uint64 {
	var b [8]byte
	for i := range b {
		b[i] = m.ram[gpa+uint64(i)]
	}
	return binary.LittleEndian.Uint64(b[:])
}
