package hv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"gohv/hv/tlfs"
	"gohv/hv/vcpu"
	"gohv/x86"
)

func TestCPUIDModelHidesVirtualization(t *testing.T) {
	m := NewCPUModel()
	_, _, c, _ := m.CPUID(1, 0)
	if c&x86.CPUID1ECXHypervisor == 0 {
		t.Error("hypervisor-present bit clear")
	}
	if c&(x86.CPUID1ECXVMX|x86.CPUID1ECXXSAVE|x86.CPUID1ECXOSXSAVE|x86.CPUID1ECXMONITOR) != 0 {
		t.Errorf("leaf 1 ECX %#x exposes VMX/XSAVE/OSXSAVE/MONITOR", c)
	}
	if _, _, c, d := m.CPUID(1, 0); c&x86.CPUID1ECXX2APIC == 0 || c&x86.CPUID1ECXTSCDeadline == 0 || d&x86.CPUID1EDXAPIC == 0 {
		t.Errorf("leaf 1 ECX %#x EDX %#x: want the virtual LAPIC's APIC, x2APIC and TSC-deadline bits", c, d)
	}
	if _, _, c, _ := m.CPUID(0x8000_0001, 0); c&(1<<2) != 0 {
		t.Error("SVM visible")
	}
	if a, b, c, d := m.CPUID(0x8000_000a, 0); a|b|c|d != 0 {
		t.Error("SVM leaf visible")
	}
	if a, b, c, d := m.CPUID(0xd, 0); a|b|c|d != 0 {
		t.Error("XSAVE leaf visible")
	}
	a, b, c, d := m.CPUID(tlfs.CPUIDVendorAndMaxFunction, 0)
	var name [12]byte
	binary.LittleEndian.PutUint32(name[0:], b)
	binary.LittleEndian.PutUint32(name[4:], c)
	binary.LittleEndian.PutUint32(name[8:], d)
	if string(name[:]) != "Microsoft Hv" || a < tlfs.CPUIDImplementationLimits {
		t.Errorf("hypervisor leaf %#x %q", a, name)
	}
	if a, _, _, _ := m.CPUID(0x8000_0000, 0); a > maxExt {
		t.Errorf("max extended leaf %#x", a)
	}
}

func TestMSRModel(t *testing.T) {
	m := NewCPUModel()
	r := &vcpu.Regs{CR0: x86.CR0PG | x86.CR0PE, EFER: x86.EFERLME | x86.EFERLMA}
	if v, err := m.ReadMSR(r, x86.MsrEFER); err != nil || v != x86.EFERLME|x86.EFERLMA {
		t.Fatalf("EFER read %#x %v", v, err)
	}
	for _, bad := range []uint64{x86.EFERLME | 1<<20, x86.EFERLME | x86.EFERSVME, 0 /* LME off under paging */} {
		if _, err := m.WriteMSR(r, x86.MsrEFER, bad); !errors.Is(err, errGP) {
			t.Errorf("EFER write %#x: %v, want #GP", bad, err)
		}
	}
	if dirty, err := m.WriteMSR(r, x86.MsrEFER, x86.EFERLME|x86.EFERNXE|x86.EFERSCE); err != nil || !dirty || r.EFER != x86.EFERLME|x86.EFERLMA|x86.EFERNXE|x86.EFERSCE {
		t.Fatalf("EFER write: %v %v %#x", dirty, err, r.EFER)
	}
	if _, err := m.WriteMSR(r, x86.MsrPAT, 0x0007_0406_0007_0402); !errors.Is(err, errGP) {
		t.Error("PAT with memory type 2 accepted")
	}
	if _, err := m.WriteMSR(r, x86.MsrPAT, 0x0006_0606_0006_0606); err != nil || r.PAT != 0x0006_0606_0006_0606 {
		t.Error("valid PAT refused")
	}
	if _, err := m.ReadMSR(r, 0x1b); !errors.Is(err, errGP) {
		t.Error("APIC base readable without an APIC")
	}
	if !m.PassThroughMSR(x86.MsrLSTAR, true) || m.PassThroughMSR(x86.MsrEFER, false) || m.PassThroughMSR(x86.MsrTSC, true) {
		t.Error("pass-through list wrong")
	}
}

func TestExitHandling(t *testing.T) {
	p, v, _, rec := newTestPartition(t, 1<<20)
	vp := p.VP(0)
	v.regs.RIP = 0x1000
	v.regs.CS.Attrib = x86.SegL
	v.regs.CR0, v.regs.CR4, v.regs.EFER = x86.CR0PE|x86.CR0PG, x86.CR4PAE, x86.EFERLME|x86.EFERLMA

	// CPUID with a hardware-reported length.
	v.regs.GPR[x86.RAX] = tlfs.CPUIDVendorAndMaxFunction
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2})
	if v.regs.RIP != 0x1002 || v.regs.GPR[x86.RBX] != 0x7263694d { // "Micr"
		t.Fatalf("cpuid: rip %#x rbx %#x", v.regs.RIP, v.regs.GPR[x86.RBX])
	}
	// Unknown MSR: #GP, RIP unchanged.
	v.regs.GPR[x86.RCX] = 0x12345
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitMSRRead, InstrLen: 2})
	if len(v.injected) != 1 || v.injected[0].Vector != x86.VectorGP || !v.injected[0].HasError || v.regs.RIP != 0x1002 {
		t.Fatalf("rdmsr unknown: %+v rip %#x", v.injected, v.regs.RIP)
	}
	// UART output, line-buffered and prefixed.
	for _, c := range []byte("hi\n") {
		v.regs.GPR[x86.RAX] = uint64(c)
		vp.handle(&vcpu.Exit{Kind: vcpu.ExitIO, Port: 0x3f8, Size: 1, InstrLen: 1})
	}
	if len(rec.lines) != 1 || rec.lines[0] != "t: hi\n" {
		t.Fatalf("console %q", rec.lines)
	}
	// IN from an unclaimed port: all ones, upper x86.RAX bits kept for 8/16-bit.
	v.regs.GPR[x86.RAX] = 0x1234_5678_0000_0000
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitIO, Port: 0x2f0, Size: 2, In: true, InstrLen: 1})
	if v.regs.GPR[x86.RAX] != 0x1234_5678_0000_ffff {
		t.Fatalf("in: rax %#x", v.regs.GPR[x86.RAX])
	}
	// Hypercalls: #UD until the guest sets its OS ID.
	v.regs.GPR[x86.RCX] = tlfs.HvCallNotifyLongSpinWait
	rip := v.regs.RIP
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3})
	if last := v.injected[len(v.injected)-1]; last.Vector != x86.VectorUD || v.regs.RIP != rip {
		t.Fatalf("hypercall without a guest OS ID: %+v rip %#x", last, v.regs.RIP)
	}
	v.regs.GPR[x86.RCX], v.regs.GPR[x86.RAX], v.regs.GPR[x86.RDX] = tlfs.MsrGuestOSID, 1, 0
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitMSRWrite, InstrLen: 2})
	v.regs.GPR[x86.RCX] = tlfs.HvCallNotifyLongSpinWait | tlfs.ControlFast
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3})
	if v.regs.GPR[x86.RAX] != uint64(tlfs.StatusSuccess) {
		t.Fatal("spin-wait hypercall failed")
	}
	v.regs.GPR[x86.RCX] = 0x7777
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3})
	if v.regs.GPR[x86.RAX] != uint64(tlfs.StatusInvalidHypercallCode) {
		t.Fatal("unknown hypercall succeeded")
	}
	v.regs.SS.Attrib = 3 << 5 // CPL 3
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3})
	if last := v.injected[len(v.injected)-1]; last.Vector != x86.VectorUD {
		t.Fatalf("CPL3 hypercall: %+v", last)
	}
	v.regs.SS.Attrib = 0
	// An access outside RAM ends the partition.
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitNestedFault, GPA: 0x4000_0000, Write: true})
	if !p.stopping.Load() {
		t.Fatal("partition still running after an access outside its memory")
	}
	r := p.Result()
	if r.State != StateCrashed || !errors.Is(r.Err, ErrOutsideMemory) || !strings.Contains(r.Err.Error(), "write of gpa 0x40000000") {
		t.Fatalf("result %v", r)
	}
}

func TestDebugExitStopsWithStatus(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	v.regs.GPR[x86.RAX] = 0x42
	p.VP(0).handle(&vcpu.Exit{Kind: vcpu.ExitIO, Port: DebugExitPort, Size: 4, InstrLen: 1})
	if r := p.Result(); !r.PoweredOffWith(0x42) {
		t.Fatalf("%v", r)
	}
}

func TestShutdownAndInvalidStateCrash(t *testing.T) {
	for _, c := range []struct {
		exit vcpu.Exit
		want error
	}{
		{vcpu.Exit{Kind: vcpu.ExitShutdown}, ErrTripleFault},
		{vcpu.Exit{Kind: vcpu.ExitInvalidState, Detail: "GUEST_TR_AR_BYTES: reserved bits set"}, ErrInvalidState},
		{vcpu.Exit{Kind: vcpu.ExitUnexpected}, ErrUnsupported},
	} {
		p, _, _, _ := newTestPartition(t, 1<<20)
		p.VP(0).handle(&c.exit)
		if r := p.Result(); r.State != StateCrashed || !errors.Is(r.Err, c.want) {
			t.Errorf("%v: %v, want crashed with %v", c.exit.Kind, r, c.want)
		}
	}
	p, _, _, _ := newTestPartition(t, 1<<20)
	p.VP(0).handle(&vcpu.Exit{Kind: vcpu.ExitInvalidState, Detail: "EFER.SVME clear"})
	var ise *InvalidStateError
	if r := p.Result(); !errors.As(r.Err, &ise) || ise.Detail != "EFER.SVME clear" || ise.VP != 0 || r.VP != 0 {
		t.Errorf("invalid state: %v", r)
	}
}

// TestExitPathDoesNotAllocate: the exits a running guest takes over and
// over are handled without a heap allocation.
func TestExitPathDoesNotAllocate(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	p.console = nil
	vp := p.VP(0)
	v.injected = make([]vcpu.Event, 0, 1)
	for _, e := range []vcpu.Exit{
		{Kind: vcpu.ExitCPUID, InstrLen: 2},
		{Kind: vcpu.ExitMSRRead, InstrLen: 2},
		{Kind: vcpu.ExitHypercall, InstrLen: 3},
		{Kind: vcpu.ExitIO, Port: 0x3ff, Size: 1, InstrLen: 1},
		{Kind: vcpu.ExitIO, Port: 0x3f8, Size: 1, InstrLen: 1},
		{Kind: vcpu.ExitIO, Port: 0x2f0, Size: 4, In: true, InstrLen: 1},
		{Kind: vcpu.ExitInterrupt},
		{Kind: vcpu.ExitCRWrite, CR: 4, Value: x86.CR4PAE | x86.CR4OSFXSR, InstrLen: 3},
		{Kind: vcpu.ExitCRWrite, CR: 0, Value: x86.CR0PG, InstrLen: 3}, // refused: #GP
	} {
		v.regs.GPR[x86.RCX] = x86.MsrEFER
		v.regs.GPR[x86.RAX] = 'x'
		n := testing.AllocsPerRun(1000, func() {
			v.injected = v.injected[:0]
			vp.handle(&e)
			vp.deliver()
		})
		if n != 0 {
			t.Errorf("%v exit: %v allocations per exit", e.Kind, n)
		}
	}
}

func TestGuestMemoryBounds(t *testing.T) {
	p, _, host, _ := newTestPartition(t, 64<<10)
	m := p.Mem
	if err := m.WriteRAM(0xfffc, []byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteRAM(0xfffe, []byte{1, 2, 3, 4}); !errors.Is(err, ErrOutsideMemory) {
		t.Fatalf("write across the end: %v", err)
	}
	if err := m.ReadRAM(^uint64(0)-1, make([]byte, 4)); !errors.Is(err, ErrOutsideMemory) {
		t.Fatalf("read at the top of the address space: %v", err)
	}
	if err := p.AddMMIO(0x8000, 0x1000, nil); err == nil {
		t.Fatal("MMIO over RAM accepted")
	}
	pages := len(host.Pages)
	p.Start()
	p.Stop("test")
	p.Destroy()
	if len(host.Pages) != 0 {
		t.Fatalf("%d of %d pages left after Destroy", len(host.Pages), pages)
	}
}

func TestNewPartitionOutOfMemoryReleasesPages(t *testing.T) {
	host := newTestHost()
	host.Limit = 20
	h := New(&fakeBackend{}, host, NewCPUModel(), nil)
	if _, err := h.NewPartition(Config{Name: "big", RAMBytes: 1 << 20}); err == nil {
		t.Fatal("no error with 20 pages for 256")
	}
	if len(host.Pages) != 0 {
		t.Fatalf("%d pages leaked", len(host.Pages))
	}
}

func TestUARTRegisters(t *testing.T) {
	rec := &recorder{}
	u := NewUART("p", rec, nil)
	u.Out(0x3fb, 1, 0x80) // DLAB
	u.Out(0x3f8, 1, 1)
	u.Out(0x3f9, 1, 0)
	if u.In(0x3f8, 1) != 1 {
		t.Error("divisor latch low not kept")
	}
	u.Out(0x3fb, 1, 0x03)
	if u.In(0x3fd, 1)&0x60 != 0x60 {
		t.Error("transmitter not empty")
	}
	for _, c := range []byte("a\x01b") {
		u.Out(0x3f8, 1, uint32(c))
	}
	u.Flush()
	if len(rec.lines) != 1 || rec.lines[0] != "p: a.b\n" {
		t.Fatalf("%q", rec.lines)
	}
	long := bytes.Repeat([]byte("z"), 600)
	for _, c := range long {
		u.Out(0x3f8, 1, uint32(c))
	}
	if len(rec.lines) < 3 {
		t.Fatalf("long line not split: %d lines", len(rec.lines))
	}
}

// TestDecodedLengthWithoutNRIP: with no length from the hardware the core
// decodes the guest's instruction, prefixes included, without allocating.
func TestDecodedLengthWithoutNRIP(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	vp := p.VP(0)
	v.regs.CR0 = x86.CR0PE
	v.regs.CS.Attrib = x86.SegDB // 32-bit protected mode, paging off
	p.Mem.WriteRAM(0x1000, []byte{0x0f, 0xa2, 0x66, 0x0f, 0xa2})
	v.regs.RIP = 0x1000
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitCPUID})
	if v.regs.RIP != 0x1002 {
		t.Fatalf("after CPUID rip %#x", v.regs.RIP)
	}
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitCPUID})
	if v.regs.RIP != 0x1005 {
		t.Fatalf("after 66 CPUID rip %#x", v.regs.RIP)
	}
	n := testing.AllocsPerRun(1000, func() {
		v.regs.RIP = 0x1000
		vp.handle(&vcpu.Exit{Kind: vcpu.ExitCPUID})
	})
	if n != 0 {
		t.Errorf("%v allocations per decoded exit", n)
	}
}

// scratchDevice is MMIO memory that records each access.
type scratchDevice struct {
	mem      [256]byte
	accesses []int
}

func (d *scratchDevice) ReadMMIO(off uint64, b []byte) {
	d.accesses = append(d.accesses, len(b))
	copy(b, d.mem[off:])
}
func (d *scratchDevice) WriteMMIO(off uint64, b []byte) {
	d.accesses = append(d.accesses, len(b))
	copy(d.mem[off:], b)
}

func TestMMIOEmulation(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	dev := &scratchDevice{}
	for i := range dev.mem {
		dev.mem[i] = byte(i)
	}
	if err := p.AddMMIO(0xc000_0000, 256, dev); err != nil {
		t.Fatal(err)
	}
	vp := p.VP(0)
	v.regs.CR0 = x86.CR0PE
	v.regs.CS.Attrib = x86.SegDB
	// mov eax, [ebx+0x10]; mov byte [ebx+0x20], 0x7f
	p.Mem.WriteRAM(0x1000, []byte{0x8b, 0x43, 0x10, 0xc6, 0x43, 0x20, 0x7f})
	v.regs.RIP = 0x1000
	v.regs.GPR[x86.RBX] = 0xc000_0000
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitNestedFault, GPA: 0xc000_0010})
	if v.regs.GPR[x86.RAX] != 0x13121110 || v.regs.RIP != 0x1003 {
		t.Fatalf("load: rax %#x rip %#x", v.regs.GPR[x86.RAX], v.regs.RIP)
	}
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitNestedFault, GPA: 0xc000_0020, Write: true})
	if dev.mem[0x20] != 0x7f || v.regs.RIP != 0x1007 || len(dev.accesses) != 2 || dev.accesses[0] != 4 || dev.accesses[1] != 1 {
		t.Fatalf("store: %#x rip %#x accesses %v", dev.mem[0x20], v.regs.RIP, dev.accesses)
	}
	// An instruction the emulator does not know ends the partition with its name.
	p.Mem.WriteRAM(0x1007, []byte{0x0f, 0x01, 0xf8}) // swapgs
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitNestedFault, GPA: 0xc000_0000})
	if r := p.Result(); r.State != StateCrashed || !errors.Is(r.Err, ErrUnsupported) || !strings.Contains(r.Err.Error(), "mmio") {
		t.Fatalf("%v", r)
	}
}

func TestStringPortIO(t *testing.T) {
	p, v, _, rec := newTestPartition(t, 1<<20)
	vp := p.VP(0)
	v.regs.CR0 = x86.CR0PE
	v.regs.CS.Attrib = x86.SegDB
	p.Mem.WriteRAM(0x2000, []byte("ok\n"))
	v.regs.RIP, v.regs.GPR[x86.RSI], v.regs.GPR[x86.RCX] = 0x1000, 0x2000, 3
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitIO, Port: 0x3f8, Size: 1, String: true, Rep: true, InstrLen: 2})
	if len(rec.lines) != 1 || rec.lines[0] != "t: ok\n" || v.regs.GPR[x86.RSI] != 0x2003 || v.regs.GPR[x86.RCX] != 0 || v.regs.RIP != 0x1002 {
		t.Fatalf("rep outsb: %q rsi %#x rcx %d rip %#x", rec.lines, v.regs.GPR[x86.RSI], v.regs.GPR[x86.RCX], v.regs.RIP)
	}
	// INSW from the UART scratch register (two bytes: low from the port, the
	// 16-bit read of an 8-bit register), backwards with DF set.
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitIO, Port: 0x3ff, Size: 1, InstrLen: 1}) // OUT AL (='\n' left in x86.RAX? set it)
	v.regs.GPR[x86.RAX] = 0x5a
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitIO, Port: 0x3ff, Size: 1, InstrLen: 1})
	v.regs.RFLAGS = x86.RFLAGSDF
	v.regs.GPR[x86.RDI], v.regs.GPR[x86.RCX] = 0x3001, 2
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitIO, Port: 0x3ff, Size: 1, In: true, String: true, Rep: true, InstrLen: 2})
	var got [2]byte
	p.Mem.ReadRAM(0x3000, got[:])
	if got != [2]byte{0x5a, 0x5a} || v.regs.GPR[x86.RDI] != 0x2fff {
		t.Fatalf("rep insb: % x rdi %#x", got, v.regs.GPR[x86.RDI])
	}
	// An address outside RAM ends the partition.
	v.regs.GPR[x86.RSI], v.regs.GPR[x86.RCX] = 0xf000_0000, 1
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitIO, Port: 0x3f8, Size: 1, String: true, InstrLen: 1})
	if r := p.Result(); r.State != StateCrashed || !errors.Is(r.Err, ErrOutsideMemory) {
		t.Fatalf("%v", r)
	}
}

// FuzzExitDispatch feeds exits with guest-chosen register values and memory
// to the core: whatever the guest does, the root must not panic, and the
// partition either runs on or ends with a reason.
func FuzzExitDispatch(f *testing.F) {
	f.Add(uint8(vcpu.ExitCPUID), uint64(0x4000_0000), uint64(0), uint64(0x1000), uint16(0), []byte{0x0f, 0xa2})
	f.Add(uint8(vcpu.ExitIO), uint64(0x41), uint64(3), uint64(0x1000), uint16(0x3f8), []byte{0xf3, 0x6e})
	f.Add(uint8(vcpu.ExitNestedFault), uint64(0), uint64(0xc000_0000), uint64(0x1000), uint16(0), []byte{0x8b, 0x03})
	f.Fuzz(func(t *testing.T, kind uint8, rax, rbx, rip uint64, port uint16, code []byte) {
		p, v, _, _ := newTestPartition(t, 64<<10)
		dev := &scratchDevice{}
		p.AddMMIO(0xc000_0000, 256, dev)
		p.Mem.WriteRAM(0x1000, code[:min(len(code), 64)])
		v.regs.CR0 = x86.CR0PE
		v.regs.CS.Attrib = x86.SegDB
		v.regs.RIP = rip
		v.regs.GPR[x86.RAX], v.regs.GPR[x86.RBX], v.regs.GPR[x86.RCX], v.regs.GPR[x86.RSI] = rax, rbx, rax>>8, rbx
		e := vcpu.Exit{Kind: vcpu.ExitKind(kind % uint8(vcpu.NumExitKinds)), Port: port, Size: []uint8{1, 2, 4}[port%3],
			In: rax&1 != 0, String: rax&2 != 0, Rep: rax&4 != 0, GPA: rbx, Write: rax&8 != 0}
		if e.Kind == vcpu.ExitHLT {
			p.Stop("fuzz") // HLT with nothing pending would sleep until Stop
		}
		p.VP(0).handle(&e)
		if r := p.Result(); p.stopping.Load() && r.Err == nil {
			t.Fatalf("stopped without a reason: %v", r)
		}
	})
}
