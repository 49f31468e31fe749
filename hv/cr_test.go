package hv

import (
	"encoding/binary"
	"errors"
	"testing"

	"gohv/hv/vcpu"
	"gohv/x86"
)

// TestWriteCR follows the SDM's rules for MOV to CR0/CR3/CR4 (Vol. 2B MOV
// to CR, Vol. 3A 2.5 and 10.8.5).
func TestWriteCR(t *testing.T) {
	m := NewCPUModel()
	protected := vcpu.Regs{CR0: x86.CR0PE | x86.CR0ET, CR4: x86.CR4PAE, EFER: x86.EFERLME}
	long := vcpu.Regs{CR0: x86.CR0PE | x86.CR0PG, CR4: x86.CR4PAE, EFER: x86.EFERLME | x86.EFERLMA}
	for _, c := range []struct {
		name  string
		start vcpu.Regs
		cr    uint8
		v     uint64
		gp    bool
		check func(r *vcpu.Regs) bool
	}{
		{"enable paging with LME enters long mode", protected, 0, x86.CR0PE | x86.CR0PG | x86.CR0ET, false,
			func(r *vcpu.Regs) bool { return r.EFER&x86.EFERLMA != 0 && r.CR0&x86.CR0PG != 0 }},
		{"disable paging leaves long mode", long, 0, x86.CR0PE, false,
			func(r *vcpu.Regs) bool { return r.EFER&x86.EFERLMA == 0 }},
		{"PG without PE", protected, 0, x86.CR0PG, true, nil},
		{"NW without CD", protected, 0, x86.CR0PE | x86.CR0NW, true, nil},
		{"CR0 bits 63:32", protected, 0, 1<<32 | x86.CR0PE, true, nil},
		{"long mode needs PAE", vcpu.Regs{CR0: x86.CR0PE, EFER: x86.EFERLME}, 0, x86.CR0PE | x86.CR0PG, true, nil},
		{"CR4.PAE may not clear in long mode", long, 4, 0, true, nil},
		{"CR4.VMXE is not offered", protected, 4, x86.CR4PAE | x86.CR4VMXE, true, nil},
		{"CR4.OSFXSR is", protected, 4, x86.CR4PAE | x86.CR4OSFXSR, false,
			func(r *vcpu.Regs) bool { return r.CR4 == x86.CR4PAE|x86.CR4OSFXSR }},
		{"CR3 above MAXPHYADDR in long mode", long, 3, 1 << 62, true, nil},
		{"CR3", long, 3, 0x1000, false, func(r *vcpu.Regs) bool { return r.CR3 == 0x1000 }},
		{"CR8", long, 8, 5, false, func(r *vcpu.Regs) bool { return r.CR8 == 5 }},
		{"CR8 bits 63:4", long, 8, 0x10, true, nil},
		{"CR2 is not written through this path", long, 2, 0, true, nil},
	} {
		r := c.start
		err := m.WriteCR(&r, c.cr, c.v)
		if c.gp {
			if !errors.Is(err, errGP) || r != c.start {
				t.Errorf("%s: %v, registers %+v; want #GP and no change", c.name, err, r)
			}
			continue
		}
		if err != nil || !c.check(&r) {
			t.Errorf("%s: %v, registers %+v", c.name, err, r)
		}
	}
}

// TestCRWriteExit: the core applies a CR write the backend reports,
// reloads the state, and skips the instruction; a refused one raises #GP
// without moving RIP. Outside 64-bit mode only the low 32 bits count.
func TestCRWriteExit(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	vp := p.VP(0)
	v.regs.CR0 = x86.CR0PE | x86.CR0ET
	v.regs.CS.Attrib = x86.SegDB
	v.regs.RIP = 0x1000
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitCRWrite, CR: 4, Value: 0xffff_ffff_0000_0000 | x86.CR4PAE, InstrLen: 3})
	if v.regs.CR4 != x86.CR4PAE || v.regs.RIP != 0x1003 || !v.dirty {
		t.Fatalf("CR4 %#x rip %#x dirty %v", v.regs.CR4, v.regs.RIP, v.dirty)
	}
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitCRWrite, CR: 0, Value: x86.CR0PG, InstrLen: 3})
	if last := v.injected[len(v.injected)-1]; last.Vector != x86.VectorGP || !last.HasError || v.regs.RIP != 0x1003 {
		t.Fatalf("PG without PE: %+v rip %#x", last, v.regs.RIP)
	}
}

// TestCRWriteDecodedFromTheInstruction: a backend without decode assists
// leaves the source to the core, which reads the MOV to CR8 at RIP.
func TestCRWriteDecodedFromTheInstruction(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	vp := p.VP(0)
	v.regs.CR0, v.regs.CR4, v.regs.EFER = x86.CR0PE|x86.CR0PG, x86.CR4PAE, x86.EFERLME|x86.EFERLMA
	v.regs.CS.Attrib = x86.SegL
	// Identity-map the first 2 MiB for the fetch: PML4 at 0x10000.
	p.Mem.WriteRAM(0x10000, le64(0x11000|3))
	p.Mem.WriteRAM(0x11000, le64(0x12000|3))
	p.Mem.WriteRAM(0x12000, le64(0|0x83))
	v.regs.CR3 = 0x10000
	p.Mem.WriteRAM(0x1000, []byte{0x44, 0x0f, 0x22, 0xc3}) // mov cr8, rbx
	v.regs.RIP, v.regs.GPR[x86.RBX] = 0x1000, 7
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitCRWrite, CR: 8, ValueFromInstruction: true})
	if v.regs.CR8 != 7 || v.regs.RIP != 0x1004 || vp.lapic.TPR() != 0x70 {
		t.Fatalf("CR8 %d RIP %#x TPR %#x", v.regs.CR8, v.regs.RIP, vp.lapic.TPR())
	}
	p.Mem.WriteRAM(0x1004, []byte{0x0f, 0x20, 0xc0}) // mov rax, cr0: not a write to CR8
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitCRWrite, CR: 8, ValueFromInstruction: true})
	if r := p.Result(); !errors.Is(r.Err, ErrUnsupported) {
		t.Fatalf("%v", r)
	}
}

func le64(v uint64) []byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return b[:]
}

// TestMiscEnable: IA32_MISC_ENABLE reads as a modern CPU's and takes back
// only its own value.
func TestMiscEnable(t *testing.T) {
	m := NewCPUModel()
	r := &vcpu.Regs{}
	v, err := m.ReadMSR(r, x86.MsrMiscEnable)
	if err != nil || v&x86.MiscEnableXDDisable != 0 || v&x86.MiscEnableFastStrings == 0 {
		t.Fatalf("%#x %v", v, err)
	}
	if _, err := m.WriteMSR(r, x86.MsrMiscEnable, v); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WriteMSR(r, x86.MsrMiscEnable, v|x86.MiscEnableXDDisable); err == nil {
		t.Fatal("XD_DISABLE accepted")
	}
}

// TestNBCfg: AMD's NB_CFG reads 0 and takes Linux's EnableCf8ExtCfg write
// without effect.
func TestNBCfg(t *testing.T) {
	m := NewCPUModel()
	r := &vcpu.Regs{}
	if _, err := m.WriteMSR(r, x86.MsrAMDNBCfg, 1<<46); err != nil {
		t.Fatal(err)
	}
	if v, err := m.ReadMSR(r, x86.MsrAMDNBCfg); err != nil || v != 0 {
		t.Fatalf("%#x %v", v, err)
	}
}

// TestBIOSSignID: IA32_BIOS_SIGN_ID takes Linux's write of 0 and reads 0
// (no microcode revision), rather than #GP and an "unchecked MSR access"
// warning at every boot on Intel.
func TestBIOSSignID(t *testing.T) {
	m := NewCPUModel()
	r := &vcpu.Regs{}
	if dirty, err := m.WriteMSR(r, x86.MsrBIOSSignID, 0); err != nil || dirty {
		t.Fatal(dirty, err)
	}
	if v, err := m.ReadMSR(r, x86.MsrBIOSSignID); err != nil || v != 0 {
		t.Fatalf("%#x %v", v, err)
	}
}
