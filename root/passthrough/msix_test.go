package passthrough

import (
	"encoding/binary"
	"fmt"
	"testing"

	"gohv/iommu"
)

// fakeMemory is a host BAR's registers; it records every write.
type fakeMemory struct {
	regs   [4096]uint32 // 16 KiB
	writes int
}

func (m *fakeMemory) Read32(off uint64) uint32 { return m.regs[off/4] }
func (m *fakeMemory) Write32(off uint64, v uint32) {
	m.regs[off/4] = v
	m.writes++
}

// trapGuest is fakeGuest with MMIO traps.
type trapGuest struct {
	fakeGuest
	traps []trap
}

type trap struct {
	gpa, size uint64
	dev       MMIODevice
}

func (g *trapGuest) AddMMIO(gpa, size uint64, dev MMIODevice) error {
	g.traps = append(g.traps, trap{gpa, size, dev})
	return nil
}

// The e1000e's BARs as QEMU's firmware places them: BAR0 and BAR1 128 KiB
// of registers and flash, BAR2 32 I/O ports, BAR3 16 KiB holding the
// MSI-X table (5 entries at 0) and its PBA (at 0x2000).
const (
	e1000eSource = 0x28
	e1000eBAR3   = 0xfebd_0000
	e1000eMSIX   = 0xa0
	e1000eMSI    = 0xd0
)

var e1000eBARs = []BAR{
	{Index: 0, Base: 0xfeb8_0000, Size: 128 << 10},
	{Index: 1, Base: 0xfeba_0000, Size: 128 << 10},
	{Index: 2, Base: 0xc040, Size: 32, IO: true},
	{Index: 3, Base: e1000eBAR3, Size: 16 << 10},
}

// assignE1000e assigns the fake e1000e with its MSI-X table trapped and
// routes its MSI and MSI-X (entries 10-14 at vectors 0x24-0x28).
func assignE1000e(t *testing.T) (*Device, *fakeConfig, *fakeMemory, *trapGuest, *fakeRemap, *fakeSink) {
	t.Helper()
	c := e1000eCaps(t, 0xe0, 0xc8, 0xd0, 0xa0)
	c.space[(e1000eMSIX+4)/4] = 3          // table at 0 in BAR3
	c.space[(e1000eMSIX+8)/4] = 0x2000 | 3 // PBA at 0x2000 in BAR3
	mem, g, r, s := &fakeMemory{}, &trapGuest{}, &fakeRemap{}, &fakeSink{}
	f := Function{Name: "00:05.0", Source: e1000eSource, Config: c, BARs: e1000eBARs,
		BARMemory: func(b BAR) (Memory, error) {
			if b.Index != 3 {
				return nil, fmt.Errorf("BAR%d asked for", b.Index)
			}
			return mem, nil
		}}
	d, err := Assign(r, g, f)
	if err != nil {
		t.Fatal(err)
	}
	if n := d.MSIXEntries(); n != 5 {
		t.Fatalf("MSIXEntries %d, want the table's 5", n)
	}
	if err := d.RouteMSI(r, iommu.Interrupt{Source: e1000eSource, Index: 9, Address: 0xfee0_0138}, s); err != nil {
		t.Fatal(err)
	}
	var ins []iommu.Interrupt
	for i := range 5 {
		ins = append(ins, iommu.Interrupt{Source: e1000eSource, Index: 10 + i, Target: iommu.Target{Vector: uint8(0x24 + i)},
			Address: 0xfee0_0010 | uint64(10+i)<<5})
	}
	if err := d.RouteMSIX(r, ins, s); err != nil {
		t.Fatal(err)
	}
	return d, c, mem, g, r, s
}

// tableWrite32 and tableRead32 are the guest's dword accesses to its
// MSI-X table through the trap, at byte offset off of BAR3.
func tableWrite32(g *trapGuest, off uint64, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	g.traps[0].dev.WriteMMIO(off, b[:])
}

func tableRead32(g *trapGuest, off uint64) uint32 {
	var b [4]byte
	g.traps[0].dev.ReadMMIO(off, b[:])
	return binary.LittleEndian.Uint32(b[:])
}

// guestEntry programs the guest's table entry i (masked bit as given).
func guestEntry(g *trapGuest, i int, addr uint64, data uint32, masked bool) {
	e := uint64(i) * msixEntryLen
	tableWrite32(g, e+msixEntryAddrLo, uint32(addr))
	tableWrite32(g, e+msixEntryAddrHi, uint32(addr>>32))
	tableWrite32(g, e+msixEntryData, data)
	ctrl := uint32(0)
	if masked {
		ctrl = msixEntryMasked
	}
	tableWrite32(g, e+msixEntryCtrl, ctrl)
}

// TestMSIXTableTrappedAndHostProgrammed: BAR3's table page is trapped and
// the rest of BAR3 mapped; the host table holds the remapping entries'
// messages, unmasked; the guest sees MSI-X in its list with a 5-entry
// table whose entries read masked and empty; nothing the guest writes to
// its table reaches the host's.
func TestMSIXTableTrappedAndHostProgrammed(t *testing.T) {
	d, c, mem, g, _, _ := assignE1000e(t)
	bar3 := d.GuestBAR(3)
	if len(g.traps) != 1 || g.traps[0].gpa != bar3 || g.traps[0].size != 4096 {
		t.Fatalf("traps %+v, want BAR3's first page at %#x", g.traps, bar3)
	}
	mapped := false
	for _, m := range g.maps {
		if m[0] <= bar3 && bar3 < m[0]+m[2] {
			t.Errorf("the table's page is mapped: %#x", m)
		}
		if m == [3]uint64{bar3 + 4096, e1000eBAR3 + 4096, 12 << 10} {
			mapped = true
		}
	}
	if !mapped {
		t.Errorf("the rest of BAR3 is not mapped: %#x", g.maps)
	}
	for i := range 5 {
		e := uint64(i) * msixEntryLen
		want := [4]uint32{0xfee0_0010 | uint32(10+i)<<5, 0, 0, 0}
		got := [4]uint32{mem.regs[e/4], mem.regs[e/4+1], mem.regs[e/4+2], mem.regs[e/4+3]}
		if got != want {
			t.Errorf("host entry %d: %#x, want %#x", i, got, want)
		}
		if v := tableRead32(g, e+msixEntryCtrl); v != msixEntryMasked {
			t.Errorf("guest entry %d control %#x, want masked", i, v)
		}
	}
	if got := guestCaps(t, d); got[e1000eMSIX] != capMSIX {
		t.Errorf("the guest's list %#x lacks the routed MSI-X", got)
	}
	if mc := d.ReadConfig(e1000eMSIX) >> 16; mc&msixTableSize != 4 || mc&msixEnable != 0 {
		t.Errorf("guest MSI-X control %#x, want a 5-entry table, disabled", mc)
	}
	before, writes := mem.regs, mem.writes
	guestEntry(g, 0, 0xfee0_1000, 0x41, false)
	guestEntry(g, 4, 0xdead_0000, 0x99, false)
	var q [8]byte
	g.traps[0].dev.WriteMMIO(8, q[:]) // a qword over entry 0's data and control
	if mem.regs != before || mem.writes != writes {
		t.Errorf("guest table writes reached the host's table")
	}
	if c.space[e1000eMSIX/4]>>16&msixEnable != 0 {
		t.Errorf("host MSI-X enabled before the guest enabled its own")
	}
}

// TestMSIXFollowsGuestMode: the host's MSI-X is on exactly while the
// guest's is, and its MSI off then; back to MSI when the guest turns
// MSI-X off.
func TestMSIXFollowsGuestMode(t *testing.T) {
	d, c, _, _, _, _ := assignE1000e(t)
	hostMSI := func() bool { return c.space[e1000eMSI/4]>>16&msiEnable != 0 }
	hostMSIX := func() bool { return c.space[e1000eMSIX/4]>>16&msixEnable != 0 }
	if !hostMSI() || hostMSIX() {
		t.Fatalf("after routing: host MSI %v MSI-X %v, want MSI", hostMSI(), hostMSIX())
	}
	d.WriteConfig(e1000eMSIX, (msixEnable|msixMask)<<16, 0xffff_0000)
	if hostMSI() || !hostMSIX() || c.space[e1000eMSIX/4]>>16&msixMask != 0 {
		t.Fatalf("guest MSI-X on: host control %#x, MSI %v", c.space[e1000eMSIX/4]>>16, hostMSI())
	}
	d.WriteConfig(e1000eMSIX, 0, 0xffff_0000)
	if !hostMSI() || hostMSIX() {
		t.Fatalf("guest MSI-X off: host MSI %v MSI-X %v, want MSI", hostMSI(), hostMSIX())
	}
}

// TestMSIXDeliversGuestEntry: an interrupt on entry i's host vector sends
// the guest's entry i; held while the entry or the function is masked
// and sent when unmasked; dropped with MSI-X off.
func TestMSIXDeliversGuestEntry(t *testing.T) {
	d, _, _, g, _, s := assignE1000e(t)
	guestEntry(g, 2, 0xfee0_1000, 0x42, false)
	if err := d.InterruptMSIX(2); err != nil || len(s.got) != 0 || d.MSIStats().Disabled != 1 {
		t.Fatalf("MSI-X off: %v, sent %#x, stats %+v", err, s.got, d.MSIStats())
	}
	d.WriteConfig(e1000eMSIX, msixEnable<<16, 0xffff_0000)
	if err := d.InterruptMSIX(2); err != nil || len(s.got) != 1 || s.got[0] != [2]uint64{0xfee0_1000, 0x42} {
		t.Fatalf("delivered %#x (%v)", s.got, err)
	}
	// The entry masked: held, then sent on unmask through the table.
	tableWrite32(g, 2*msixEntryLen+msixEntryCtrl, msixEntryMasked)
	d.InterruptMSIX(2)
	if len(s.got) != 1 || d.MSIStats().Pending != 1 {
		t.Fatalf("masked entry: sent %#x, stats %+v", s.got, d.MSIStats())
	}
	tableWrite32(g, 2*msixEntryLen+msixEntryCtrl, 0)
	if len(s.got) != 2 {
		t.Fatalf("unmasking the entry sent %#x", s.got)
	}
	// The function masked: held, sent when the mask clears.
	d.WriteConfig(e1000eMSIX, (msixEnable|msixMask)<<16, 0xffff_0000)
	d.InterruptMSIX(2)
	if len(s.got) != 2 {
		t.Fatalf("function masked: sent %#x", s.got)
	}
	d.WriteConfig(e1000eMSIX, msixEnable<<16, 0xffff_0000)
	if len(s.got) != 3 {
		t.Fatalf("clearing the function mask sent %#x", s.got)
	}
	// Entries past the routed ones and out of range deliver nothing.
	for _, i := range []int{-1, 5, 1 << 20} {
		if err := d.InterruptMSIX(i); err != nil || len(s.got) != 3 {
			t.Fatalf("entry %d: %v, sent %#x", i, err, s.got)
		}
	}
	// A message the sink refuses is counted, the partition unharmed.
	guestEntry(g, 1, 0x1234_0000, 0, false)
	if err := d.InterruptMSIX(1); err == nil || d.MSIStats().Invalid != 1 {
		t.Fatalf("bad message: %v, stats %+v", err, d.MSIStats())
	}
}

// TestMSIXTableBARNotRelocated: the BAR holding the trapped table cannot
// move (a trap cannot be added while the partition runs); the others can.
func TestMSIXTableBARNotRelocated(t *testing.T) {
	d, _, _, g, _, _ := assignE1000e(t)
	maps := len(g.maps)
	d.WriteConfig(regBAR0+3*4, 0xd000_0000, 0xffff_ffff)
	if len(g.maps) != maps || d.Refused != 1 {
		t.Fatalf("BAR3 moved: maps %#x, refused %d", g.maps, d.Refused)
	}
	d.WriteConfig(regBAR0, 0xd000_0000, 0xffff_ffff)
	if len(g.maps) != maps+1 || d.Relocations != 1 {
		t.Fatalf("BAR0 did not move: maps %#x", g.maps)
	}
}

// TestMSIXReleased: Release turns the host's MSI-X off, masks its routed
// entries and frees their remapping entries (and MSI's).
func TestMSIXReleased(t *testing.T) {
	d, c, mem, g, r, s := assignE1000e(t)
	d.WriteConfig(e1000eMSIX, msixEnable<<16, 0xffff_0000)
	if _, err := d.Release(); err != nil {
		t.Fatal(err)
	}
	if c.space[e1000eMSIX/4]>>16&msixEnable != 0 {
		t.Errorf("host MSI-X still enabled")
	}
	for i := range 5 {
		if mem.regs[(uint64(i)*msixEntryLen+msixEntryCtrl)/4]&msixEntryMasked == 0 {
			t.Errorf("host entry %d unmasked after release", i)
		}
	}
	if len(r.freed) != 6 {
		t.Errorf("freed %d remapping entries, want 6 (MSI and five MSI-X)", len(r.freed))
	}
	guestEntry(g, 0, 0xfee0_0000, 0x30, false)
	if d.InterruptMSIX(0); len(s.got) != 0 {
		t.Errorf("delivered after release: %#x", s.got)
	}
}

// TestMSIXUnroutedStaysHidden: without BARMemory (or an MMIO-trapping
// guest) the table is not trapped, BAR3 is mapped whole, MSI-X is not
// routed and the guest's list skips it.
func TestMSIXUnroutedStaysHidden(t *testing.T) {
	c := e1000eCaps(t, 0xe0, 0xc8, 0xd0, 0xa0)
	c.space[(e1000eMSIX+4)/4] = 3
	g := &trapGuest{}
	d, err := Assign(&fakeUnit{}, g, Function{Name: "00:05.0", Source: e1000eSource, Config: c, BARs: e1000eBARs})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.traps) != 0 || d.MSIXEntries() != 0 {
		t.Fatalf("traps %+v, entries %d", g.traps, d.MSIXEntries())
	}
	if err := d.RouteMSIX(&fakeRemap{}, []iommu.Interrupt{{Source: e1000eSource}}, &fakeSink{}); err == nil {
		t.Fatal("MSI-X routed without a trapped table")
	}
	if _, ok := guestCaps(t, d)[e1000eMSIX]; ok {
		t.Fatal("the guest sees an unrouted MSI-X")
	}
}

// FuzzMSIXTable drives the guest's side of a routed MSI-X function —
// table accesses of any width and offset through the trap, capability
// writes, host interrupts — and checks that the host's table never
// changes and that every message sent into the partition is one the
// guest wrote into a routed entry's address and data.
func FuzzMSIXTable(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0x10, 0xfe, 1, 2, 2, 3, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 0xa2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		d, c, mem, g, _, s := assignE1000e(t)
		host := mem.regs[:5*msixEntryLen/4]
		var hostTable [20]uint32
		copy(hostTable[:], host)
		written := map[[2]uint64]bool{}
		for len(ops) >= 12 {
			op, arg := ops[0], ops[1:12]
			ops = ops[12:]
			off := uint64(binary.LittleEndian.Uint16(arg[0:])) % (4096 + 16)
			n := []int{1, 2, 4, 8, 3, 16}[arg[2]%6]
			data := arg[3 : 3+min(n, 8)]
			switch op % 4 {
			case 0:
				g.traps[0].dev.WriteMMIO(off, data)
			case 1:
				g.traps[0].dev.ReadMMIO(off, make([]byte, len(data)))
			case 2:
				d.WriteConfig(uint8(off), binary.LittleEndian.Uint32(arg[3:]), binary.LittleEndian.Uint32(arg[7:]))
			case 3:
				d.InterruptMSIX(int(arg[0]%8) - 1)
			}
			for i := range 5 {
				addr, data, _ := d.msixT.entry(i)
				written[[2]uint64{addr, uint64(data)}] = true
			}
		}
		var now [20]uint32
		copy(now[:], mem.regs[:20])
		if now != hostTable {
			t.Fatalf("the host's table changed: %#x, was %#x", now, hostTable)
		}
		if c.space[e1000eMSIX/4]>>16&msixMask != 0 {
			t.Fatalf("the host's function mask was set by the guest")
		}
		for _, m := range s.got {
			if !written[m] {
				t.Fatalf("sent %#x, which no routed guest entry held", m)
			}
		}
	})
}

// TestMSIXExitPathsDoNotAllocate: the guest's table accesses and
// capability writes run on a VP's exit path, unmasking and delivery
// included.
func TestMSIXExitPathsDoNotAllocate(t *testing.T) {
	d, _, _, g, _, _ := assignE1000e(t)
	guestEntry(g, 0, 0xfee0_1000, 0x41, true)
	d.WriteConfig(e1000eMSIX, msixEnable<<16, 0xffff_0000)
	sink := d.msixT.sink
	d.msixT.sink = countSink{}
	defer func() { d.msixT.sink = sink }()
	var b [4]byte
	allocs := testing.AllocsPerRun(100, func() {
		d.InterruptMSIX(0) // held: masked
		binary.LittleEndian.PutUint32(b[:], 0)
		g.traps[0].dev.WriteMMIO(msixEntryCtrl, b[:]) // unmask: sent
		binary.LittleEndian.PutUint32(b[:], msixEntryMasked)
		g.traps[0].dev.WriteMMIO(msixEntryCtrl, b[:])
		g.traps[0].dev.ReadMMIO(msixEntryData, b[:])
		d.WriteConfig(e1000eMSIX, (msixEnable|msixMask)<<16, 0xffff_0000)
		d.WriteConfig(e1000eMSIX, msixEnable<<16, 0xffff_0000)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round", allocs)
	}
}

// countSink accepts every message without keeping it.
type countSink struct{}

func (countSink) SignalMSI(uint64, uint32) error { return nil }
