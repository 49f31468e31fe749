package loader

import (
	"encoding/binary"
	"fmt"

	"gohv/x86"
)

// fakeMem is a sparse guest memory: RAM ranges with pages allocated on
// first write, so a test partition of gigabytes costs what the loader
// writes.
type fakeMem struct {
	ram   [][2]uint64 // gpa, size
	pages map[uint64]*[x86.PageSize]byte
}

// newFakeMem takes RAM ranges as gpa, size pairs.
func newFakeMem(ranges ...uint64) *fakeMem {
	m := &fakeMem{pages: map[uint64]*[x86.PageSize]byte{}}
	for i := 0; i+1 < len(ranges); i += 2 {
		m.ram = append(m.ram, [2]uint64{ranges[i], ranges[i+1]})
	}
	return m
}

func (m *fakeMem) RAMRanges(fn func(gpa, size uint64)) {
	for _, r := range m.ram {
		fn(r[0], r[1])
	}
}

func (m *fakeMem) isRAM(gpa uint64) bool {
	for _, r := range m.ram {
		if gpa >= r[0] && gpa-r[0] < r[1] {
			return true
		}
	}
	return false
}

func (m *fakeMem) access(gpa uint64, b []byte, write bool) error {
	for len(b) > 0 {
		if !m.isRAM(gpa) {
			return fmt.Errorf("fake memory: %#x is not RAM", gpa)
		}
		pg := m.pages[gpa/x86.PageSize]
		if pg == nil {
			pg = new([x86.PageSize]byte)
			if write {
				m.pages[gpa/x86.PageSize] = pg
			}
		}
		var n int
		if write {
			n = copy(pg[gpa%x86.PageSize:], b)
		} else {
			n = copy(b, pg[gpa%x86.PageSize:])
		}
		b, gpa = b[n:], gpa+uint64(n)
	}
	return nil
}

func (m *fakeMem) WriteRAM(gpa uint64, b []byte) error { return m.access(gpa, b, true) }
func (m *fakeMem) ReadRAM(gpa uint64, b []byte) error  { return m.access(gpa, b, false) }

// read returns n bytes at gpa, failing the caller's test through panic
// only in test code (the loader never panics).
func (m *fakeMem) read(gpa uint64, n int) []byte {
	b := make([]byte, n)
	if err := m.ReadRAM(gpa, b); err != nil {
		panic(err)
	}
	return b
}

func (m *fakeMem) u16(gpa uint64) uint16 { return binary.LittleEndian.Uint16(m.read(gpa, 2)) }
func (m *fakeMem) u32(gpa uint64) uint32 { return binary.LittleEndian.Uint32(m.read(gpa, 4)) }
func (m *fakeMem) u64(gpa uint64) uint64 { return binary.LittleEndian.Uint64(m.read(gpa, 8)) }
