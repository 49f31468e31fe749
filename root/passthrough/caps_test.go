package passthrough

import "testing"

// e1000eCaps lays out QEMU's e1000e capability list (hw/net/e1000e.c:
// PCI Express at 0xE0, power management at 0xC8, MSI at 0xD0 (64-bit),
// MSI-X at 0xA0) on the edu fake, in the order given, and returns it.
func e1000eCaps(t *testing.T, order ...uint8) *fakeConfig {
	t.Helper()
	c := newFakeConfig(false)
	c.space[0x40/4] = 0
	ids := map[uint8]uint32{0xe0: capPCIe, 0xc8: 0x01, 0xd0: capMSI | msi64<<16, 0xa0: capMSIX | 4<<16}
	c.space[regCapPtr/4] = uint32(order[0])
	for i, off := range order {
		next := uint32(0)
		if i+1 < len(order) {
			next = uint32(order[i+1])
		}
		c.space[off/4] = ids[off] | next<<8
	}
	return c
}

// guestCaps walks the capability list as a guest does, through the
// virtual space, and returns the IDs it finds by offset.
func guestCaps(t *testing.T, d *Device) map[uint8]uint8 {
	t.Helper()
	found := map[uint8]uint8{}
	for ptr, n := uint8(d.ReadConfig(regCapPtr)), 0; ptr != 0; n++ {
		if n > maxCaps {
			t.Fatalf("the guest's capability list loops")
		}
		v := d.ReadConfig(ptr)
		found[ptr] = uint8(v)
		ptr = uint8(v>>8) &^ 3
	}
	return found
}

// TestGuestListSkipsMSIX: MSI-X is not routed, so the guest's capability
// list leaves it out wherever it is — between two capabilities, first,
// last — and keeps every other capability; the host's list is untouched.
func TestGuestListSkipsMSIX(t *testing.T) {
	for _, order := range [][]uint8{
		{0xe0, 0xc8, 0xd0, 0xa0}, // QEMU's e1000e: MSI-X last
		{0xa0, 0xe0, 0xc8, 0xd0}, // first
		{0xe0, 0xa0, 0xc8, 0xd0}, // between
		{0xa0},                   // alone
	} {
		c := e1000eCaps(t, order...)
		host := c.space
		d, err := Assign(&fakeUnit{}, &fakeGuest{}, Function{Name: "00:05.0", Source: 0x28, Config: c,
			BARs: []BAR{{Index: 0, Base: eduBAR, Size: 1 << 20}}})
		if err != nil {
			t.Fatal(err)
		}
		got := guestCaps(t, d)
		if _, ok := got[0xa0]; ok {
			t.Errorf("order %#x: the guest finds MSI-X: %#x", order, got)
		}
		if len(got) != len(order)-1 {
			t.Errorf("order %#x: the guest finds %#x, want every other capability", order, got)
		}
		for off := range host {
			if off != 1 && host[off] != c.space[off] { // the command register is the host's to change
				t.Errorf("order %#x: host dword %#x changed %#x → %#x", order, 4*off, host[off], c.space[off])
			}
		}
	}
}
