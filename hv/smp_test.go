package hv

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gohv/hv/tlfs"
	"gohv/hv/vcpu"
	"gohv/x86"
)

// Local APIC interrupt command register (SDM Vol. 3A 11.6.1).
const (
	regICRLow  = 0x300
	regICRHigh = 0x310

	icrINIT   = 0x500
	icrSIPI   = 0x600
	icrAssert = 0x4000
)

// TestApplicationProcessorsWaitForSIPI: a partition's VPs after VP 0 do
// not enter the guest until the BSP starts them through its local APIC:
// INIT then SIPI to the AP's APIC ID (its VP index), as Linux's smpboot
// does; the AP then runs in real mode at the SIPI vector's page and its
// CPUID says its own initial APIC ID.
func TestApplicationProcessorsWaitForSIPI(t *testing.T) {
	host := newTestHost()
	b := &fakeBackend{}
	h := New(b, host, NewCPUModel(), nil)
	p, err := h.NewPartition(Config{Name: "smp", RAMBytes: 1 << 20, Console: &recorder{}, VPs: 3})
	if err != nil {
		t.Fatal(err)
	}
	if p.VPCount() != 3 || len(b.vcpus) != 3 {
		t.Fatalf("%d VPs over %d VCPUs, want 3", p.VPCount(), len(b.vcpus))
	}
	bsp, ap := p.VP(0), p.VP(2)
	if ap.deliver() || p.VP(1).deliver() {
		t.Fatal("an application processor would enter the guest before its SIPI")
	}
	if !bsp.deliver() {
		t.Fatal("the BSP does not run")
	}
	apicWrite(t, bsp, regSVR, 0x1ff)
	apicWrite(t, bsp, regICRHigh, 2<<24)
	apicWrite(t, bsp, regICRLow, icrINIT|icrAssert)
	apicWrite(t, bsp, regICRLow, icrSIPI|0x9a)
	if !ap.deliver() {
		t.Fatal("INIT and SIPI did not start VP 2")
	}
	r := b.vcpus[2].regs
	if r.CS.Selector != 0x9a00 || r.CS.Base != 0x9a000 || r.RIP != 0 || r.CR0&x86.CR0PE != 0 {
		t.Fatalf("VP 2 starts at CS %#x base %#x RIP %#x CR0 %#x, want real mode at 9a00:0", r.CS.Selector, r.CS.Base, r.RIP, r.CR0)
	}
	if p.VP(1).deliver() {
		t.Fatal("the SIPI for VP 2 started VP 1 too")
	}
	b.vcpus[2].regs.GPR[x86.RAX] = x86.CPUIDFeatures
	ap.handle(&vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2})
	if id := b.vcpus[2].regs.GPR[x86.RBX] >> 24; id != 2 {
		t.Errorf("VP 2's CPUID.1 initial APIC ID is %d", id)
	}
}

func TestVPCountBounds(t *testing.T) {
	h := New(&fakeBackend{}, newTestHost(), NewCPUModel(), nil)
	for _, n := range []int{-1, MaxVPs + 1} {
		if _, err := h.NewPartition(Config{Name: "x", RAMBytes: 1 << 20, VPs: n}); err == nil || !strings.Contains(err.Error(), "VPs") {
			t.Errorf("%d VPs: %v", n, err)
		}
	}
	p, err := h.NewPartition(Config{Name: "one", RAMBytes: 1 << 20})
	if err != nil || p.VPCount() != 1 {
		t.Fatalf("VPs 0 gives %v VPs, %v; want 1", p, err)
	}
}

// TestFlushHypercallFlushesTheTargets: HvCallFlushVirtualAddressSpace
// from VP 0 with a processor mask flushes exactly the VPs it names, and
// with HV_FLUSH_ALL_PROCESSORS every VP, the caller's own included; the
// Ex form takes an HV_VP_SET. Each flush is taken at the VP's next entry.
func TestFlushHypercallFlushesTheTargets(t *testing.T) {
	b := &fakeBackend{}
	h := New(b, newTestHost(), NewCPUModel(), nil)
	p, err := h.NewPartition(Config{Name: "flush", RAMBytes: 1 << 20, Console: &recorder{}, VPs: 3})
	if err != nil {
		t.Fatal(err)
	}
	vp, v := p.VP(0), b.vcpus[0]
	v.regs = vcpu.Regs{CR0: x86.CR0PE, CS: vcpu.Segment{Attrib: x86.SegL}, EFER: x86.EFERLMA}
	v.regs.GPR[x86.RCX], v.regs.GPR[x86.RAX], v.regs.GPR[x86.RDX] = tlfs.MsrGuestOSID, 1, 0
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitMSRWrite, InstrLen: 2})
	const in = 0x2000 // the input page
	call := func(code uint64, input []byte) {
		t.Helper()
		if err := p.Mem.WriteRAM(in, input); err != nil {
			t.Fatal(err)
		}
		v.regs.GPR[x86.RCX], v.regs.GPR[x86.RDX], v.regs.GPR[x86.R8] = code, in, 0
		vp.handle(&vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3})
		if st := v.regs.GPR[x86.RAX] & 0xffff; st != uint64(tlfs.StatusSuccess) {
			t.Fatalf("hypercall %#x: status %#x", code, st)
		}
	}
	flushes := func() [3]int32 {
		return [3]int32{b.vcpus[0].flushes.Load(), b.vcpus[1].flushes.Load(), b.vcpus[2].flushes.Load()}
	}
	le := func(ws ...uint64) []byte {
		var out []byte
		for _, w := range ws {
			out = binary.LittleEndian.AppendUint64(out, w)
		}
		return out
	}
	// HV_FLUSH_VIRTUAL_ADDRESS_SPACE: address space, flags, processor mask.
	call(tlfs.HvCallFlushVirtualAddressSpace, le(0, 0, 0b100))
	if got := flushes(); got != [3]int32{0, 0, 1} {
		t.Fatalf("mask 0b100 flushed %v", got)
	}
	call(tlfs.HvCallFlushVirtualAddressSpace, le(0, tlfs.FlushAllProcessors, 0))
	if got := flushes(); got != [3]int32{1, 1, 2} {
		t.Fatalf("all processors flushed %v", got)
	}
	// The Ex form: address space, flags, then an HV_VP_SET (sparse 4K,
	// bank 0 holding VPs 0 and 1): its one bank is the variable header (1 unit).
	call(tlfs.HvCallFlushVirtualAddressSpaceEx|1<<17, le(0, 0, tlfs.GenericSetSparse4K, 1, 0b011))
	if got := flushes(); got != [3]int32{2, 2, 2} {
		t.Fatalf("Ex set {0,1} flushed %v", got)
	}
}

// TestCrossFlushesFromTheFastPathEnd: two VPs on two host CPUs each make
// a TLB-flush hypercall naming the other at the same moment, both taken
// from the backend's entry loop (fastExit, the path a Linux guest's
// hypercalls take). Each waits for the other to leave guest mode, which it
// has: both calls end. (When the fast path left a VP marked in guest mode
// while it handled the exit, the two waited for each other for ever: a
// 4-VP Linux guest hung with two CPUs spinning in flush_tlb_mm_range.)
func TestCrossFlushesFromTheFastPathEnd(t *testing.T) {
	b := &fakeBackend{}
	host := newTestHost()
	host.cpus = 3
	h := New(b, host, NewCPUModel(), nil)
	p, err := h.NewPartition(Config{Name: "cross", RAMBytes: 1 << 20, Console: &recorder{}, VPs: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range b.vcpus {
		v.regs = vcpu.Regs{CR0: x86.CR0PE, CS: vcpu.Segment{Attrib: x86.SegL}, EFER: x86.EFERLMA}
		if i == 0 {
			v.regs.GPR[x86.RCX], v.regs.GPR[x86.RAX], v.regs.GPR[x86.RDX] = tlfs.MsrGuestOSID, 1, 0
			p.VP(0).handle(&vcpu.Exit{Kind: vcpu.ExitMSRWrite, InstrLen: 2})
		}
		// HV_FLUSH_VIRTUAL_ADDRESS_SPACE naming the other VP, in this
		// VP's own input page.
		in := uint64(0x2000 + i*x86.PageSize)
		input := binary.LittleEndian.AppendUint64(nil, 0)
		input = binary.LittleEndian.AppendUint64(input, 0)
		input = binary.LittleEndian.AppendUint64(input, 1<<(1-i))
		if err := p.Mem.WriteRAM(in, input); err != nil {
			t.Fatal(err)
		}
		v.regs.GPR[x86.RCX], v.regs.GPR[x86.RDX], v.regs.GPR[x86.R8] = tlfs.HvCallFlushVirtualAddressSpace, in, 0
		vp := p.VP(i)
		vp.hostCPU.Store(int32(i + 1))
		vp.newSlice()
		vp.inRun.Store(true) // as the run loop leaves it around Run
	}
	// Each VP's thread: the flush hypercall's exit, then, as the guest
	// runs on, CPUID exits until the test ends (what a kick out of guest
	// mode brings on a real CPU).
	done := make(chan int, 2)
	var status [2]uint64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vp := p.VP(i)
			e := vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3}
			vp.fastExit(&e, false)
			status[i] = b.vcpus[i].regs.GPR[x86.RAX] & 0xffff
			done <- i
			for !stop.Load() {
				e := vcpu.Exit{Kind: vcpu.ExitCPUID, InstrLen: 2}
				vp.fastExit(&e, false)
				runtime.Gosched()
			}
		}()
	}
	timeout := time.After(10 * time.Second)
	for range 2 {
		select {
		case <-done:
		case <-timeout:
			t.Fatal("the two flush hypercalls still wait for each other after 10 s")
		}
	}
	stop.Store(true)
	wg.Wait()
	for i, v := range b.vcpus {
		if status[i] != uint64(tlfs.StatusSuccess) {
			t.Errorf("VP %d's flush: status %#x", i, status[i])
		}
		if n := v.flushes.Load(); n != 1 {
			t.Errorf("VP %d flushed %d times, want 1 (the other's call)", i, n)
		}
	}
}

// TestSyntheticClusterIPIReachesTheTargets: HvCallSendSyntheticClusterIpiEx
// from VP 0 to VPs 1 and 2 puts the vector in their LAPICs, and each
// takes it at its next entry; VP 0 gets nothing.
func TestSyntheticClusterIPIReachesTheTargets(t *testing.T) {
	b := &fakeBackend{}
	h := New(b, newTestHost(), NewCPUModel(), nil)
	p, err := h.NewPartition(Config{Name: "ipi", RAMBytes: 1 << 20, Console: &recorder{}, VPs: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range b.vcpus {
		apicWrite(t, p.VP(i), regSVR, 0x1ff)
		v.regs.RFLAGS = x86.RFLAGSIF
		p.VP(i).waitSIPI = false
	}
	vp, v := p.VP(0), b.vcpus[0]
	v.regs.CR0, v.regs.CS.Attrib, v.regs.EFER = x86.CR0PE, x86.SegL, x86.EFERLMA
	v.regs.GPR[x86.RCX], v.regs.GPR[x86.RAX], v.regs.GPR[x86.RDX] = tlfs.MsrGuestOSID, 1, 0
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitMSRWrite, InstrLen: 2})
	input := make([]byte, 0, 32)
	for _, w := range []uint64{0xfd, tlfs.GenericSetSparse4K, 1, 0b110} {
		input = binary.LittleEndian.AppendUint64(input, w)
	}
	if err := p.Mem.WriteRAM(0x2000, input); err != nil {
		t.Fatal(err)
	}
	v.regs.GPR[x86.RCX], v.regs.GPR[x86.RDX] = tlfs.HvCallSendSyntheticClusterIpiEx|1<<tlfs.ControlVarHeaderShift, 0x2000
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3})
	if st := v.regs.GPR[x86.RAX] & 0xffff; st != uint64(tlfs.StatusSuccess) {
		t.Fatalf("status %#x", st)
	}
	for i := range 3 {
		p.VP(i).deliver()
		got := len(b.vcpus[i].injected) > 0 && b.vcpus[i].injected[0].Vector == 0xfd
		if got != (i != 0) {
			t.Errorf("VP %d took vector 0xfd: %v (injected %v)", i, got, b.vcpus[i].injected)
		}
	}
}

// TestHostileINITAndSIPI: what a guest may do to its own processors
// (README "What a guest may do to its own processors"), through the ICR
// and the run loop's delivery. An AP's INIT to the BSP restarts the BSP
// at the reset vector and leaves the AP as it was; a SIPI to the BSP is
// dropped; INIT and SIPI to absent IDs reach nobody; and a fetch the
// restarted BSP cannot make (no memory at the reset vector) or an AP
// started on an MMIO page ends the partition, naming the VP, with the
// device untouched.
func TestHostileINITAndSIPI(t *testing.T) {
	b := &fakeBackend{}
	h := New(b, newTestHost(), NewCPUModel(), nil)
	p, err := h.NewPartition(Config{Name: "init", RAMBytes: 1 << 20, Console: &recorder{}, VPs: 2})
	if err != nil {
		t.Fatal(err)
	}
	bsp, ap := p.VP(0), p.VP(1)
	vb, va := b.vcpus[0], b.vcpus[1]
	bsp.deliver()
	apicWrite(t, bsp, regSVR, 0x1ff)
	apicWrite(t, bsp, regICRHigh, 1<<24)
	apicWrite(t, bsp, regICRLow, icrINIT|icrAssert)
	apicWrite(t, bsp, regICRLow, icrSIPI|0x10)
	if !ap.deliver() || va.regs.CS.Base != 0x10000 {
		t.Fatal("the AP did not start")
	}
	va.regs.RIP, vb.regs.RIP = 0x1234, 0x5678 // both have run on

	// INIT and SIPI to IDs no VP has: counted, nothing else.
	for _, id := range []uint32{2, 14, 0xfe} {
		apicWrite(t, bsp, regICRHigh, id<<24)
		apicWrite(t, bsp, regICRLow, icrINIT|icrAssert)
		apicWrite(t, bsp, regICRLow, icrSIPI|0x10)
	}
	if st := bsp.lapic.Stats(); st.IPIsNoTarget != 6 {
		t.Errorf("%d IPIs with no target, want 6", st.IPIsNoTarget)
	}
	if !bsp.deliver() || !ap.deliver() || vb.regs.RIP != 0x5678 || va.regs.RIP != 0x1234 {
		t.Fatalf("IPIs to absent IDs moved a VP: RIP %#x, %#x", vb.regs.RIP, va.regs.RIP)
	}

	// The AP's INIT to the BSP: the BSP at the reset vector, not waiting.
	apicWrite(t, ap, regSVR, 0x1ff)
	apicWrite(t, ap, regICRHigh, 0)
	apicWrite(t, ap, regICRLow, icrINIT|icrAssert)
	if !bsp.deliver() || vb.regs.CS.Base != 0xffff_0000 || vb.regs.RIP != 0xfff0 || vb.regs.CR0&x86.CR0PE != 0 {
		t.Fatalf("BSP after the AP's INIT: CS base %#x RIP %#x CR0 %#x", vb.regs.CS.Base, vb.regs.RIP, vb.regs.CR0)
	}
	if !ap.deliver() || va.regs.RIP != 0x1234 {
		t.Fatalf("the AP moved: RIP %#x", va.regs.RIP)
	}
	if base := bsp.lapic.Base(); base&x86.APICBaseBSP == 0 {
		t.Fatalf("IA32_APIC_BASE %#x lost the BSP flag", base)
	}
	// A SIPI to the BSP: dropped.
	apicWrite(t, ap, regICRLow, icrSIPI|0x20)
	if !bsp.deliver() || vb.regs.RIP != 0xfff0 || bsp.lapic.Stats().Dropped != 1 {
		t.Fatalf("a SIPI to the BSP: RIP %#x, %d dropped", vb.regs.RIP, bsp.lapic.Stats().Dropped)
	}
	// Nothing at 0xfffffff0: the BSP's first fetch ends the partition.
	bsp.handle(&vcpu.Exit{Kind: vcpu.ExitNestedFault, GPA: 0xffff_fff0, Fetch: true})
	if r := p.Result(); r.State != StateCrashed || !errors.Is(r.Err, ErrOutsideMemory) || r.VP != 0 {
		t.Fatalf("a fetch at the reset vector with no memory there: %v (VP %d)", r, r.VP)
	}

	// An AP started on an MMIO page: its fetch ends the partition and
	// never reaches the device.
	dev := &scratchDevice{}
	q, err := h.NewPartition(Config{Name: "mmio", RAMBytes: 0xa0000, Console: &recorder{}, VPs: 2}) // RAM up to 640 KiB
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AddMMIO(0xc0000, 0x1000, dev); err != nil {
		t.Fatal(err)
	}
	qb, qa := q.VP(0), q.VP(1)
	qb.deliver()
	apicWrite(t, qb, regICRHigh, 1<<24)
	apicWrite(t, qb, regICRLow, icrINIT|icrAssert)
	apicWrite(t, qb, regICRLow, icrSIPI|0xc0)
	if !qa.deliver() {
		t.Fatal("the AP did not start")
	}
	qa.handle(&vcpu.Exit{Kind: vcpu.ExitNestedFault, GPA: 0xc0000, Fetch: true})
	r := q.Result()
	if r.State != StateCrashed || !errors.Is(r.Err, ErrUnsupported) || !strings.Contains(r.Err.Error(), "instruction fetch from MMIO at gpa 0xc0000") || r.VP != 1 {
		t.Fatalf("an AP started on an MMIO page: %v (VP %d)", r, r.VP)
	}
	if len(dev.accesses) != 0 {
		t.Fatalf("the fetch reached the device: %v", dev.accesses)
	}
}

// TestInterruptExitYieldsOnlyWhenDue: on a host of several CPUs a host
// interrupt exit gives the VP's thread up (yield: the Go runtime's
// hand-off, a new slice) only when the VP's alarm — its slice's end or a
// guest timer's deadline — has come; any other interrupt (a kick) leaves
// it to enter again. On one host CPU every interrupt exit yields, so the
// goroutines it woke get the only CPU.
func TestInterruptExitYieldsOnlyWhenDue(t *testing.T) {
	for _, cpus := range []int{1, 4} {
		host := newTestHost()
		host.cpus = cpus
		h := New(&fakeBackend{}, host, NewCPUModel(), nil)
		p, err := h.NewPartition(Config{Name: "y", RAMBytes: 1 << 20, Console: &recorder{}})
		if err != nil {
			t.Fatal(err)
		}
		vp := p.VP(0)
		host.now.Store(1_000_000)
		vp.alarm = 3_000_000 // ahead: this interrupt is a kick
		vp.handle(&vcpu.Exit{Kind: vcpu.ExitInterrupt})
		if yielded := vp.alarm == -1; yielded != (cpus == 1) {
			t.Errorf("%d host CPUs: a kick's exit yielded %v, want %v", cpus, yielded, cpus == 1)
		}
		vp.alarm = 3_000_000
		host.now.Store(3_000_000) // the alarm came
		vp.handle(&vcpu.Exit{Kind: vcpu.ExitInterrupt})
		if vp.alarm != -1 {
			t.Errorf("%d host CPUs: the alarm's exit did not yield", cpus)
		}
	}
}

// gatedVCPU is a fakeVCPU whose Run honours exit requests
// (vcpu.ExitRequester) as svm's and vmx's do: it looks at the request
// last before entering, after onRun, which stands for what other threads
// do while the entry is on its way.
type gatedVCPU struct {
	fakeVCPU
	req   atomic.Bool
	onRun func(call int)
	calls int // Run calls
	bare  int // entries with no event injected
}

func (v *gatedVCPU) RequestExit()      { v.req.Store(true) }
func (v *gatedVCPU) ClearExitRequest() { v.req.Store(false) }
func (v *gatedVCPU) Run(e *vcpu.Exit) error {
	v.calls++
	if v.onRun != nil {
		v.onRun(v.calls)
	}
	if v.req.Load() {
		*e = vcpu.Exit{Kind: vcpu.ExitNone}
		return nil
	}
	if len(v.injected) == 0 {
		v.bare++
	}
	*e = v.next
	return nil
}

type gatedBackend struct {
	fakeBackend
	v *gatedVCPU
}

func (b *gatedBackend) NewVCPU(uint64) (vcpu.VCPU, error) { return b.v, nil }

// TestKickBeforeEntryCallsTheEntryOff: an interrupt another thread posts
// after the run loop's last look at the LAPIC and before the entry (the
// window in which the kick's host interrupt would be taken in host mode)
// keeps the backend from entering, and the run loop injects it at once:
// the guest does not run without it. Without the request the guest ran
// on until its next exit, up to a time slice.
func TestKickBeforeEntryCallsTheEntryOff(t *testing.T) {
	g := &gatedVCPU{}
	b := &gatedBackend{v: g}
	host := newTestHost()
	host.cpus = 2
	h := New(b, host, NewCPUModel(), nil)
	p, err := h.NewPartition(Config{Name: "gate", RAMBytes: 1 << 20, Console: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Destroy()
	vp := p.VP(0)
	g.regs = vcpu.Regs{RFLAGS: x86.RFLAGSFixed | x86.RFLAGSIF, PAT: x86.PATReset}
	apicWrite(t, vp, regSVR, 0x1ff)
	g.next = vcpu.Exit{Kind: vcpu.ExitShutdown} // the guest's first entry ends the partition
	g.onRun = func(call int) {
		if call == 1 {
			vp.Interrupt(0x40)
		}
	}
	p.Start()
	if r := p.WaitOrStop(10 * time.Second); !errors.Is(r.Err, ErrTripleFault) {
		t.Fatalf("the partition ended with %v, want the fake's shutdown exit", r)
	}
	if g.bare != 0 || len(g.injected) != 1 || g.injected[0].Vector != 0x40 {
		t.Fatalf("%d entries without the interrupt; injected %+v, want vector 0x40 before the first entry", g.bare, g.injected)
	}
	if g.calls != 2 {
		t.Errorf("Run called %d times, want 2: the entry called off, then the one with the interrupt", g.calls)
	}
}
