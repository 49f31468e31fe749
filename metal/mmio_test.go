package metal

import "testing"

func TestMapMMIOBounds(t *testing.T) {
	for _, c := range []struct {
		pa, size uint64
		ok       bool
	}{
		{0xfed90000, 0x1000, true},
		{0xfea00000, 1 << 20, true},
		{0xffff_f000, 0x1000, true},
		{0xffff_f000, 0x2000, false}, // crosses 4 GiB
		{0x1_0000_0000, 0x1000, false},
		{0, 0x1000, false}, // the null guard
		{0xfed90000, 0, false},
		{^uint64(0) - 0xfff, 0x2000, false}, // wraps
	} {
		if _, err := MapMMIO(c.pa, c.size); (err == nil) != c.ok {
			t.Errorf("MapMMIO(%#x, %#x): %v", c.pa, c.size, err)
		}
	}
}

func TestMMIOOffsetOutsideWindowPanics(t *testing.T) {
	m := MMIO{Base: 0xfed90000, Size: 0x1000}
	for _, c := range []struct {
		off   uint32
		width uint64
	}{{0x1000, 4}, {0xffc, 8}, {0x2, 4}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("offset %#x width %d did not panic", c.off, c.width)
				}
			}()
			m.addr(c.off, c.width)
		}()
	}
	if got := m.addr(0xff8, 8); got != 0xfed90ff8 {
		t.Errorf("addr %#x", got)
	}
}
