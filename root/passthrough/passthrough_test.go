package passthrough

import (
	"fmt"
	"testing"
	"time"

	"gohv/iommu"
)

// fakeConfig is QEMU's edu device's configuration space as the host sees
// it (hw/misc/edu.c: 1234:11e8, class 00ff, BAR0 1 MiB of 32-bit memory,
// an MSI capability at 0x40 with 64-bit addresses), optionally with a
// PCI Express capability that has FLR at 0x50. It records every write.
type fakeConfig struct {
	space  [1024]uint32
	writes []string
	flrs   int
}

const eduBAR = 0xfea0_0000

func newFakeConfig(pcie bool) *fakeConfig {
	c := &fakeConfig{}
	c.space[0] = 0x11e8_1234
	c.space[1] = 0x0010_0003 // capabilities list; memory and I/O decoding on
	c.space[2] = 0x00ff_0010
	c.space[4] = eduBAR
	c.space[0x2c/4] = 0x1100_1af4
	c.space[0x34/4] = 0x40
	c.space[0x3c/4] = 0x0000_010b
	c.space[0x40/4] = 0x0080_0005 // MSI, 64-bit, no next
	if pcie {
		c.space[0x40/4] |= 0x50 << 8
		c.space[0x50/4] = 0x0002_0010
		c.space[0x54/4] = devCapFLR
	}
	return c
}

func (c *fakeConfig) Read32(off uint16) uint32 { return c.space[off/4] }

func (c *fakeConfig) Write32(off uint16, v uint32) {
	c.writes = append(c.writes, fmt.Sprintf("%#x=%#x", off, v))
	switch {
	case off == regCommand:
		c.space[1] = c.space[1]&0xffff_0000 | v&0xffff
	case off == 0x58 && v&devCtlFLR != 0:
		c.flrs++
		c.space[4], c.space[1] = 0, c.space[1]&0xffff_0000 // an FLR clears the BARs and the command
	default:
		c.space[off/4] = v
	}
}

// fakeUnit and fakeDomain keep mappings in maps.
type fakeUnit struct {
	domains  []*fakeDomain
	attached map[uint16]*fakeDomain
	failMap  bool
}

type fakeDomain struct {
	u       *fakeUnit
	maps    map[uint64]uint64 // iova page → hpa page
	onFault func(iommu.Fault)
	dead    bool
}

func (u *fakeUnit) Name() string              { return "fake unit" }
func (u *fakeUnit) BlockAll() error           { return nil }
func (u *fakeUnit) Disable() error            { return nil }
func (u *fakeUnit) Faults() []iommu.Fault     { return nil }
func (u *fakeUnit) Covers(source uint16) bool { return source < 0x100 }
func (u *fakeUnit) NewDomain() (iommu.Domain, error) {
	d := &fakeDomain{u: u, maps: map[uint64]uint64{}}
	u.domains = append(u.domains, d)
	return d, nil
}
func (d *fakeDomain) ID() uint16 { return 1 }
func (d *fakeDomain) Attach(s uint16) error {
	if d.u.attached == nil {
		d.u.attached = map[uint16]*fakeDomain{}
	}
	d.u.attached[s] = d
	return nil
}
func (d *fakeDomain) Detach(s uint16) error { delete(d.u.attached, s); return nil }
func (d *fakeDomain) Map(iova, hpa, size uint64, p iommu.Perm) error {
	if d.u.failMap {
		return fmt.Errorf("fake: no pages")
	}
	for off := uint64(0); off < size; off += 4096 {
		d.maps[iova+off] = hpa + off
	}
	return nil
}
func (d *fakeDomain) Unmap(iova, size uint64) error { return nil }
func (d *fakeDomain) Translate(iova uint64) (uint64, iommu.Perm, uint64, bool) {
	h, ok := d.maps[iova&^0xfff]
	return h | iova&0xfff, iommu.ReadWrite, 4096, ok
}
func (d *fakeDomain) OnFault(fn func(iommu.Fault)) { d.onFault = fn }
func (d *fakeDomain) Destroy() error {
	for s, o := range d.u.attached {
		if o == d {
			delete(d.u.attached, s)
		}
	}
	d.dead = true
	return nil
}

// fakeGuest has 4 MiB of RAM in two host runs and records device maps.
type fakeGuest struct{ maps [][3]uint64 }

func (g *fakeGuest) RAMHostRuns(fn func(gpa, hpa, size uint64)) {
	fn(0, 0x1000_0000, 0x30_0000)
	fn(0x30_0000, 0x2000_0000, 0x10_0000)
}

func (g *fakeGuest) MapDevice(gpa, hpa, size uint64) error {
	for _, m := range g.maps {
		if gpa < m[0]+m[2] && m[0] < gpa+size {
			return fmt.Errorf("overlap")
		}
	}
	g.maps = append(g.maps, [3]uint64{gpa, hpa, size})
	return nil
}

const eduSource = 0x0018

func assignEdu(t *testing.T, pcie bool) (*Device, *fakeConfig, *fakeUnit, *fakeGuest) {
	t.Helper()
	c, u, g := newFakeConfig(pcie), &fakeUnit{}, &fakeGuest{}
	d, err := Assign(u, g, Function{Name: "00:03.0", Source: eduSource, Config: c,
		BARs: []BAR{{Index: 0, Base: eduBAR, Size: 1 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	return d, c, u, g
}

// TestAssignMapsRAMAndBARs: the domain maps exactly the partition's RAM
// at its GPAs and holds the device; BAR0 is mapped at the window's base;
// bus master and I/O decoding are off on the host.
func TestAssignMapsRAMAndBARs(t *testing.T) {
	d, c, u, g := assignEdu(t, false)
	dom := u.domains[0]
	if u.attached[eduSource] != dom || len(dom.maps) != 0x400 {
		t.Fatalf("attached %v, %d pages mapped", u.attached, len(dom.maps))
	}
	for _, x := range [][2]uint64{{0, 0x1000_0000}, {0x2f_f000, 0x102f_f000}, {0x30_0000, 0x2000_0000}, {0x3f_f000, 0x200f_f000}} {
		if dom.maps[x[0]] != x[1] {
			t.Errorf("iova %#x → %#x, want %#x", x[0], dom.maps[x[0]], x[1])
		}
	}
	if len(g.maps) != 1 || g.maps[0] != [3]uint64{BARWindowBase, eduBAR, 1 << 20} || d.GuestBAR(0) != BARWindowBase {
		t.Fatalf("device maps %#x", g.maps)
	}
	if cmd := c.space[1] & 0xffff; cmd != cmdMemory {
		t.Fatalf("host command %#x, want memory decoding only", cmd)
	}
}

// TestAssignTurnsHostMSIOff: MSI left enabled by firmware is disabled on
// the host at assignment; the guest sees its own (disabled) shadow.
func TestAssignTurnsHostMSIOff(t *testing.T) {
	c, u, g := newFakeConfig(false), &fakeUnit{}, &fakeGuest{}
	c.space[0x40/4] |= msiEnable << 16
	d, err := Assign(u, g, Function{Name: "00:03.0", Source: eduSource, Config: c, BARs: []BAR{{Index: 0, Base: eduBAR, Size: 1 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	if c.space[0x40/4]>>16&msiEnable != 0 || d.ReadConfig(0x40)>>16&msiEnable != 0 {
		t.Fatalf("MSI control: host %#x, guest %#x", c.space[0x40/4], d.ReadConfig(0x40))
	}
}

// TestAssignRefusals: a bridge, a BAR smaller than a page, a device
// outside the unit, a domain that cannot map.
func TestAssignRefusals(t *testing.T) {
	c := newFakeConfig(false)
	c.space[3] = 0x0001_0000
	if _, err := Assign(&fakeUnit{}, &fakeGuest{}, Function{Name: "bridge", Config: c}); err == nil {
		t.Error("a bridge was assigned")
	}
	if _, err := Assign(&fakeUnit{}, &fakeGuest{}, Function{Name: "small", Config: newFakeConfig(false), BARs: []BAR{{Base: eduBAR, Size: 256}}}); err == nil {
		t.Error("a 256-byte BAR was assigned")
	}
	if _, err := Assign(&fakeUnit{}, &fakeGuest{}, Function{Name: "far", Source: 0x100, Config: newFakeConfig(false)}); err == nil {
		t.Error("a device outside the unit was assigned")
	}
	u := &fakeUnit{failMap: true}
	if _, err := Assign(u, &fakeGuest{}, Function{Name: "nomem", Source: eduSource, Config: newFakeConfig(false)}); err == nil || !u.domains[0].dead || len(u.attached) != 0 {
		t.Errorf("failed map: %v, domain destroyed %v, attached %v", err, u.domains[0].dead, u.attached)
	}
}

// TestConfigSpace: what a guest reads and what its writes do.
func TestConfigSpace(t *testing.T) {
	d, c, _, g := assignEdu(t, false)
	if v := d.ReadConfig(0); v != 0x11e8_1234 {
		t.Fatalf("IDs %#x", v)
	}
	// BAR sizing, then the old base back: no new mapping.
	d.WriteConfig(regBAR0, 0xffff_ffff, 0xffff_ffff)
	if v := d.ReadConfig(regBAR0); v != 0xfff0_0000 {
		t.Fatalf("sized BAR0 reads %#x", v)
	}
	d.WriteConfig(regBAR0, BARWindowBase, 0xffff_ffff)
	if v := d.ReadConfig(regBAR0); v != BARWindowBase || len(g.maps) != 1 {
		t.Fatalf("BAR0 %#x, maps %#x", v, g.maps)
	}
	// Relocation inside the window maps the host BAR there too.
	d.WriteConfig(regBAR0, 0xd000_0000, 0xffff_ffff)
	if v := d.ReadConfig(regBAR0); v != 0xd000_0000 || len(g.maps) != 2 || g.maps[1] != [3]uint64{0xd000_0000, eduBAR, 1 << 20} || d.Relocations != 1 {
		t.Fatalf("relocated: BAR0 %#x, maps %#x", v, g.maps)
	}
	// Over RAM, into the interrupt controllers, or unaligned: refused.
	for _, base := range []uint32{0x0010_0000, 0xfee0_0000, 0xd008_0000} {
		d.WriteConfig(regBAR0, base, 0xffff_ffff)
	}
	if len(g.maps) != 2 || d.Refused != 2 {
		t.Fatalf("maps %#x, refused %d", g.maps, d.Refused)
	}
	// The type bits are the host's.
	d.WriteConfig(regBAR0, 0xd000_000f, 0xffff_ffff)
	if v := d.ReadConfig(regBAR0); v != 0xd000_0000 {
		t.Fatalf("BAR0 type bits: %#x", v)
	}
	// Absent BARs and the ROM read 0 and ignore writes.
	d.WriteConfig(0x14, 0xffff_ffff, 0xffff_ffff)
	d.WriteConfig(regROM, 0xffff_ffff, 0xffff_ffff)
	if d.ReadConfig(0x14) != 0 || d.ReadConfig(regROM) != 0 {
		t.Fatal("absent BAR or ROM answers")
	}
	// Command: memory and bus master reach the host, I/O only the guest's view.
	d.WriteConfig(regCommand, 0xffff_0107, 0x0000_ffff)
	if v := d.ReadConfig(regCommand) & 0xffff; v != cmdIO|cmdMemory|cmdBusMaster {
		t.Fatalf("guest command %#x", v)
	}
	if cmd := c.space[1] & 0xffff; cmd != cmdMemory|cmdBusMaster {
		t.Fatalf("host command %#x", cmd)
	}
	// MSI: control, address and data are virtual.
	before := c.space[0x40/4 : 0x50/4]
	saved := append([]uint32(nil), before...)
	d.WriteConfig(0x40, 0x0001_0000, 0xffff_0000) // enable
	d.WriteConfig(0x44, 0xfee0_1000, 0xffff_ffff)
	d.WriteConfig(0x48, 0x1, 0xffff_ffff)
	d.WriteConfig(0x4c, 0x4041, 0x0000_ffff)
	if d.ReadConfig(0x40) != 0x0081_0005 || d.ReadConfig(0x44) != 0xfee0_1000 || d.ReadConfig(0x48) != 1 || d.ReadConfig(0x4c)&0xffff != 0x4041 {
		t.Fatalf("MSI reads %#x %#x %#x %#x", d.ReadConfig(0x40), d.ReadConfig(0x44), d.ReadConfig(0x48), d.ReadConfig(0x4c))
	}
	for i, w := range saved {
		if c.space[0x40/4+i] != w {
			t.Fatalf("host MSI dword %d changed: %#x", i, c.space[0x40/4+i])
		}
	}
	for _, w := range c.writes {
		if w[:4] != "0x4=" {
			t.Fatalf("a host write other than the command register: %s", w)
		}
	}
}

// TestReleaseWithoutFLR: bus master and decoding off, the domain
// destroyed (the device blocked again), the configuration space closed.
func TestReleaseWithoutFLR(t *testing.T) {
	d, c, u, _ := assignEdu(t, false)
	d.WriteConfig(regCommand, cmdMemory|cmdBusMaster, 0xffff)
	how, err := d.Release()
	if err != nil {
		t.Fatal(err)
	}
	if c.space[1]&0xffff != 0 || !u.domains[0].dead || len(u.attached) != 0 || c.flrs != 0 {
		t.Fatalf("after release: command %#x, domain dead %v, attached %v, FLRs %d", c.space[1]&0xffff, u.domains[0].dead, u.attached, c.flrs)
	}
	if how == "" || d.ReadConfig(0) != ^uint32(0) {
		t.Fatalf("how %q, IDs after release %#x", how, d.ReadConfig(0))
	}
}

// TestReleaseWithFLR: a PCIe function with FLR is reset, 100 ms waited,
// and its BARs written back.
func TestReleaseWithFLR(t *testing.T) {
	var slept time.Duration
	sleep = func(d time.Duration) { slept += d }
	defer func() { sleep = time.Sleep }()
	d, c, u, _ := assignEdu(t, true)
	how, err := d.Release()
	if err != nil {
		t.Fatal(err)
	}
	if c.flrs != 1 || how != "function level reset" || slept < flrWait || c.space[4] != eduBAR || !u.domains[0].dead {
		t.Fatalf("FLRs %d, %q, slept %v, BAR0 %#x", c.flrs, how, slept, c.space[4])
	}
}

// FuzzConfigAccess: any sequence of guest configuration reads and writes
// changes on the host only the command register's memory, bus-master and
// INTx-disable bits, and maps only the host BAR, whole, at aligned places
// inside the window, a bounded number of times.
func FuzzConfigAccess(f *testing.F) {
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0xff, 0xf, 0x10, 0, 0, 0, 0xd0, 0xf})
	f.Add([]byte{0x04, 0x07, 0x01, 0, 0, 0x3, 0x44, 0, 0x10, 0xe0, 0xfe, 0xf})
	f.Fuzz(func(t *testing.T, ops []byte) {
		d, c, _, g := assignEdu(t, true)
		for len(ops) >= 6 {
			reg, v, mask := ops[0], uint32(ops[1])|uint32(ops[2])<<8|uint32(ops[3])<<16|uint32(ops[4])<<24, uint32(0)
			for i := range 4 {
				if ops[5]>>i&1 != 0 {
					mask |= 0xff << (8 * i)
				}
			}
			if ops[5]&0x80 != 0 {
				d.ReadConfig(reg)
			} else {
				d.WriteConfig(reg, v, mask)
			}
			ops = ops[6:]
		}
		for _, w := range c.writes {
			if w[:4] != "0x4=" {
				t.Fatalf("host write %s", w)
			}
		}
		if cmd := c.space[1] & 0xffff; cmd&^(cmdToHost) != 0 {
			t.Fatalf("host command %#x", cmd)
		}
		if len(g.maps) > maxMapsPerBAR {
			t.Fatalf("%d maps", len(g.maps))
		}
		for _, m := range g.maps {
			if m[1] != eduBAR || m[2] != 1<<20 || m[0]%(1<<20) != 0 || m[0] < BARWindowBase || m[0]+m[2] > BARWindowTop {
				t.Fatalf("map %#x", m)
			}
		}
	})
}
