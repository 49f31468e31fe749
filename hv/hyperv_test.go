package hv

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gohv/hv/tlfs"
	"gohv/hv/vcpu"
	"gohv/x86"
)

func wrmsr(vp *VP, v *fakeVCPU, msr uint32, val uint64) {
	v.regs.GPR[x86.RCX], v.regs.GPR[x86.RAX], v.regs.GPR[x86.RDX] = uint64(msr), val&0xffff_ffff, val>>32
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitMSRWrite, InstrLen: 2})
}

func rdmsr(vp *VP, v *fakeVCPU, msr uint32) uint64 {
	v.regs.GPR[x86.RCX] = uint64(msr)
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitMSRRead, InstrLen: 2})
	return v.regs.GPR[x86.RAX] | v.regs.GPR[x86.RDX]<<32
}

func gpCount(v *fakeVCPU) int {
	n := 0
	for _, e := range v.injected {
		if e.Vector == x86.VectorGP {
			n++
		}
	}
	return n
}

// TestHypercallPage: the page can be enabled only after the guest OS ID;
// it then holds the vendor's instruction and RET; a locked MSR ignores
// writes (TLFS 3.13).
func TestHypercallPage(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	vp := p.VP(0)
	wrmsr(vp, v, tlfs.MsrHypercall, 0x5000|tlfs.OverlayEnable)
	if got := rdmsr(vp, v, tlfs.MsrHypercall); got != 0x5000 {
		t.Fatalf("HYPERCALL %#x before the guest OS ID: want the GPFN without enable", got)
	}
	wrmsr(vp, v, tlfs.MsrGuestOSID, 0x8100_0006_0100_0000)
	wrmsr(vp, v, tlfs.MsrHypercall, 0x5000|tlfs.OverlayEnable)
	var code [4]byte
	p.Mem.ReadRAM(0x5000, code[:])
	if code != [4]byte{0x0f, 0x01, 0xd9, 0xc3} || rdmsr(vp, v, tlfs.MsrHypercall) != 0x5001 {
		t.Fatalf("page % x, MSR %#x", code, rdmsr(vp, v, tlfs.MsrHypercall))
	}
	if gpCount(v) != 0 {
		t.Fatalf("#GP: %+v", v.injected)
	}
	wrmsr(vp, v, tlfs.MsrHypercall, 0x7000|tlfs.OverlayEnable|tlfs.HypercallLocked)
	wrmsr(vp, v, tlfs.MsrHypercall, 0x9000|tlfs.OverlayEnable)
	if got := rdmsr(vp, v, tlfs.MsrHypercall); got != 0x7003 {
		t.Fatalf("locked MSR changed to %#x", got)
	}
	wrmsr(vp, v, tlfs.MsrGuestOSID, 0) // disables the page
	if got := rdmsr(vp, v, tlfs.MsrHypercall); got&tlfs.OverlayEnable != 0 {
		t.Fatalf("HYPERCALL %#x with guest OS ID 0", got)
	}
}

// TestReferenceTime: TIME_REF_COUNT and the reference TSC page agree and
// count 100 ns from the partition's creation.
func TestReferenceTime(t *testing.T) {
	p, v, host, _ := newTestPartition(t, 1<<20)
	vp := p.VP(0)
	host.now.Add(1_000_000) // 1 ms of the fake 1 GHz TSC
	if got := rdmsr(vp, v, tlfs.MsrTimeRefCount); got < 9_999 || got > 10_000 {
		t.Fatalf("TIME_REF_COUNT %d after 1 ms, want 10000", got)
	}
	wrmsr(vp, v, tlfs.MsrReferenceTSC, 0x6000|tlfs.OverlayEnable)
	var page [24]byte
	p.Mem.ReadRAM(0x6000, page[:])
	seq := binary.LittleEndian.Uint32(page[0:])
	scale := binary.LittleEndian.Uint64(page[8:])
	off := int64(binary.LittleEndian.Uint64(page[16:]))
	if seq == 0 {
		t.Fatal("sequence 0: the page says it is invalid")
	}
	if a, b := tlfs.RefTime(host.TSC(), scale, off), rdmsr(vp, v, tlfs.MsrTimeRefCount); a != b {
		t.Fatalf("page gives %d, MSR %d", a, b)
	}
	if got := rdmsr(vp, v, tlfs.MsrTSCFrequency); got != host.TSCHz() {
		t.Fatalf("TSC frequency %d", got)
	}
	if got := rdmsr(vp, v, tlfs.MsrAPICFrequency); got != LAPICTimerHz {
		t.Fatalf("APIC frequency %d", got)
	}
	for _, ro := range []uint32{tlfs.MsrTimeRefCount, tlfs.MsrVPIndex, tlfs.MsrTSCFrequency} {
		before := gpCount(v)
		wrmsr(vp, v, ro, 1)
		if gpCount(v) != before+1 {
			t.Errorf("write to read-only %#x accepted", ro)
		}
	}
}

// TestUnknownSyntheticMSRs raise #GP, as Hyper-V does; the VP assist page
// Linux writes on every CPU is accepted.
func TestUnknownSyntheticMSRs(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	vp := p.VP(0)
	rdmsr(vp, v, 0x4000_0199)
	wrmsr(vp, v, tlfs.MsrReset, 1)
	if gpCount(v) != 2 {
		t.Fatalf("%+v", v.injected)
	}
	wrmsr(vp, v, tlfs.MsrVPAssistPage, 0x8000|tlfs.OverlayEnable)
	if got := rdmsr(vp, v, tlfs.MsrVPAssistPage); got != 0x8001 || gpCount(v) != 2 {
		t.Fatalf("VP assist %#x", got)
	}
	if rdmsr(vp, v, tlfs.MsrVPIndex) != 0 {
		t.Fatal("VP index")
	}
}

// TestGuestCrashStopsThePartition: CRASH_CTL with CrashNotify ends the
// partition with the parameters and the message the guest gave.
func TestGuestCrashStopsThePartition(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	vp := p.VP(0)
	p.Mem.WriteRAM(0x9000, []byte("Kernel panic - not syncing: test\x00junk"))
	for i, val := range []uint64{0xdead, 0x8100, 0xffff_8000_0000_1234, 0x9000, 64} {
		wrmsr(vp, v, tlfs.MsrCrashP0+uint32(i), val)
	}
	if got := rdmsr(vp, v, tlfs.MsrCrashCtl); got != tlfs.CrashNotify|tlfs.CrashMessage {
		t.Fatalf("CRASH_CTL reads %#x", got)
	}
	wrmsr(vp, v, tlfs.MsrCrashCtl, tlfs.CrashNotify|tlfs.CrashMessage)
	r := p.Result()
	var ce *GuestCrashError
	if r.State != StateCrashed || !errors.Is(r.Err, ErrGuestCrash) || !errors.As(r.Err, &ce) ||
		ce.P[0] != 0xdead || ce.Message != "Kernel panic - not syncing: test" {
		t.Fatalf("%v", r)
	}
	if !strings.Contains(r.Err.Error(), "P2 0xffff800000001234") {
		t.Fatalf("%v", r.Err)
	}
}

func TestHyperVLeaves(t *testing.T) {
	m := NewCPUModel()
	a, b, c, d := m.CPUID(tlfs.CPUIDFeatures, 0)
	if a&tlfs.AccessHypercallMsrs == 0 || a&tlfs.AccessVpIndex == 0 {
		t.Errorf("Linux needs the hypercall and VP index MSRs: EAX %#x", a)
	}
	if b&(tlfs.AccessPartitionId|tlfs.CpuManagement|tlfs.Isolation) != 0 || c != 0 {
		t.Errorf("EBX %#x ECX %#x advertise what gohv lacks", b, c)
	}
	if d&tlfs.FeatureGuestCrashRegs == 0 {
		t.Errorf("EDX %#x", d)
	}
	// With the synthetic-IPI recommendation below, Linux 6.1 turns its
	// PV spinlocks on (hv_init_spinlocks), which read GUEST_IDLE.
	if a&tlfs.AccessGuestIdleReg == 0 {
		t.Errorf("EAX %#x lacks AccessGuestIdleReg", a)
	}
	if a, _, _, _ := m.CPUID(tlfs.CPUIDInterface, 0); a != tlfs.InterfaceSignature {
		t.Errorf("interface %#x", a)
	}
	a, _, _, _ = m.CPUID(tlfs.CPUIDEnlightenmentInfo, 0)
	if a&tlfs.RecommendDeprecateAutoEoi == 0 {
		t.Error("AutoEOI not deprecated: Linux would never EOI its SINT vector")
	}
	// The calls partitionCalls serves, recommended: Linux then flushes
	// and sends IPIs by hypercall instead of waiting for a descheduled
	// VP to take an IPI.
	for _, r := range []struct {
		bit  uint32
		name string
	}{{tlfs.RecommendHypercallRemoteFlush, "remote flush"}, {tlfs.RecommendSyntheticClusterIpi, "synthetic cluster IPI"},
		{tlfs.RecommendExProcessorMasks, "Ex processor masks"}} {
		if a&r.bit == 0 {
			t.Errorf("0x40000004.EAX %#x does not recommend the %s hypercalls", a, r.name)
		}
	}
}

// TestHypercall32: a 32-bit caller passes the input value in EDX:EAX and
// gets the result there; real mode gets #UD (TLFS 3.7, 3.13).
func TestHypercall32(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	vp := p.VP(0)
	v.regs.CR0 = x86.CR0PE
	v.regs.CS.Attrib = x86.SegDB
	wrmsr(vp, v, tlfs.MsrGuestOSID, 1)
	g := &v.regs.GPR
	g[x86.RDX], g[x86.RAX] = 0, tlfs.HvCallNotifyLongSpinWait|tlfs.ControlFast
	g[x86.RCX] = 0xdead // the 64-bit convention's RCX would be garbage here
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3})
	if g[x86.RAX] != uint64(tlfs.StatusSuccess) || g[x86.RDX] != 0 {
		t.Fatalf("EDX:EAX %#x:%#x", g[x86.RDX], g[x86.RAX])
	}
	g[x86.RDX], g[x86.RAX] = 0, 0x7777
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3})
	if g[x86.RAX] != uint64(tlfs.StatusInvalidHypercallCode) {
		t.Fatalf("EAX %#x", g[x86.RAX])
	}
	v.regs.CR0 = 0
	before := len(v.injected)
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3})
	if len(v.injected) != before+1 || v.injected[before].Vector != x86.VectorUD {
		t.Fatalf("real mode: %+v", v.injected)
	}
}

// echoPort is a root message port that answers by posting the payload
// back to the sender's SINT 2.
type echoPort struct{ p *Partition }

func (e echoPort) Message(vp uint32, typ tlfs.MessageType, payload []byte) tlfs.Status {
	if err := e.p.VP(int(vp)).SynIC().Post(2, typ, 0, payload); err != nil {
		return tlfs.StatusInsufficientBuffers
	}
	return tlfs.StatusSuccess
}

// TestPostMessageReachesARootPortAndBack: a guest's HvCallPostMessage to a
// root port, answered into its SIM slot with the SINT's vector raised.
func TestPostMessageReachesARootPortAndBack(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	vp := p.VP(0)
	v.regs.CR0, v.regs.CR4, v.regs.EFER = x86.CR0PE|x86.CR0PG, x86.CR4PAE, x86.EFERLME|x86.EFERLMA
	v.regs.CS.Attrib = x86.SegL
	wrmsr(vp, v, x86.MsrAPICBase, x86.APICDefaultBase|x86.APICBaseEnable|x86.APICBaseBSP)
	var svr [4]byte
	binary.LittleEndian.PutUint32(svr[:], 0x1ff)
	vp.view.Write(x86.APICDefaultBase+0xf0, svr[:])
	wrmsr(vp, v, tlfs.MsrGuestOSID, 1)
	wrmsr(vp, v, tlfs.MsrSIMP, 0x5000|tlfs.OverlayEnable)
	wrmsr(vp, v, tlfs.MsrSINT0+2, 0xf3)
	wrmsr(vp, v, tlfs.MsrSControl, tlfs.SControlEnable)
	if gpCount(v) != 0 {
		t.Fatalf("#GP setting up the SynIC: %+v", v.injected)
	}
	if err := p.Ports().AddMessagePort(0x42, echoPort{p}); err != nil {
		t.Fatal(err)
	}
	in := make([]byte, tlfs.PostMessageInputSize)
	tlfs.PutPostMessageInput(in, tlfs.PostMessageInput{ConnectionID: 0x42, Type: 1, Payload: []byte("ping")})
	p.Mem.WriteRAM(0x6000, in)
	v.regs.GPR[x86.RCX], v.regs.GPR[x86.RDX], v.regs.GPR[x86.R8] = tlfs.HvCallPostMessage, 0x6000, 0
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3})
	if v.regs.GPR[x86.RAX] != uint64(tlfs.StatusSuccess) {
		t.Fatalf("HvCallPostMessage: %#x", v.regs.GPR[x86.RAX])
	}
	slot := make([]byte, tlfs.MessageSize)
	p.Mem.ReadRAM(0x5000+2*tlfs.MessageSize, slot)
	h, payload, err := tlfs.ParseMessage(slot)
	if err != nil || h.Type != 1 || string(payload) != "ping" {
		t.Fatalf("slot: %+v %q %v", h, payload, err)
	}
	v.regs.RFLAGS = x86.RFLAGSIF
	vp.deliver()
	if last := v.injected[len(v.injected)-1]; last.Vector != 0xf3 {
		t.Fatalf("SINT2 vector not raised: %+v", v.injected)
	}
	// An unknown connection is refused as Linux expects.
	tlfs.PutPostMessageInput(in, tlfs.PostMessageInput{ConnectionID: 0x43, Type: 1})
	p.Mem.WriteRAM(0x6000, in)
	vp.handle(&vcpu.Exit{Kind: vcpu.ExitHypercall, InstrLen: 3})
	if v.regs.GPR[x86.RAX] != uint64(tlfs.StatusInvalidConnectionID) {
		t.Fatalf("unknown connection: %#x", v.regs.GPR[x86.RAX])
	}
}

// countHandler counts the log records it gets.
type countHandler struct{ n *int }

func (h countHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h countHandler) Handle(context.Context, slog.Record) error { *h.n++; return nil }
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h countHandler) WithGroup(string) slog.Handler             { return h }

// TestOverlayOutsideRAMWarnsOnce: a guest that points the hypercall page
// or the reference TSC page outside its RAM again and again gets one line
// on the root's console for each MSR, not one per write (the writes are
// accepted and inert).
func TestOverlayOutsideRAMWarnsOnce(t *testing.T) {
	var n int
	h := New(&fakeBackend{}, newTestHost(), NewCPUModel(), slog.New(countHandler{&n}))
	p, err := h.NewPartition(Config{Name: "t", RAMBytes: 1 << 20, Console: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	vp, v := p.VP(0), h.Backend.(*fakeBackend).vcpus[0]
	v.regs = vcpu.Regs{PAT: x86.PATReset}
	wrmsr(vp, v, tlfs.MsrGuestOSID, 1)
	for i := range 100 {
		wrmsr(vp, v, tlfs.MsrHypercall, uint64(0x1000_0000+i*0x1000)|tlfs.OverlayEnable)
		wrmsr(vp, v, tlfs.MsrReferenceTSC, uint64(0x2000_0000+i*0x1000)|tlfs.OverlayEnable)
	}
	if gpCount(v) != 0 {
		t.Fatalf("%d #GP for pages outside RAM, want the writes accepted", gpCount(v))
	}
	if n != 2 {
		t.Errorf("%d log records for 200 writes of pages outside RAM, want 2", n)
	}
}

// TestGuestIdleWaitsForAnInterrupt: a read of HV_X64_MSR_GUEST_IDLE
// returns 0 past the RDMSR only once an interrupt is requested of the VP,
// though its IF is clear (Linux's hv_qlock_wait reads it with interrupts
// off and its unlock sends an IPI); one already in IRR ends it at once;
// the guest takes the vector only once it sets IF; writes raise #GP.
func TestGuestIdleWaitsForAnInterrupt(t *testing.T) {
	p, v, _, _ := newTestPartition(t, 1<<20)
	defer p.Destroy()
	vp := p.VP(0)
	apicWrite(t, vp, regSVR, 0x1ff)
	v.regs.RFLAGS = x86.RFLAGSFixed // IF clear
	v.regs.RIP = 0x1000
	v.regs.GPR[x86.RAX], v.regs.GPR[x86.RDX] = 7, 7
	done := make(chan uint64)
	go func() { done <- rdmsr(vp, v, tlfs.MsrGuestIdle) }()
	select {
	case <-done:
		t.Fatal("the read returned with no interrupt requested")
	case <-time.After(50 * time.Millisecond):
	}
	vp.Interrupt(0x40)
	select {
	case got := <-done:
		if got != 0 || v.regs.RIP != 0x1002 {
			t.Errorf("the read gave %#x and left RIP %#x, want 0 past the RDMSR at 0x1002", got, v.regs.RIP)
		}
	case <-time.After(10 * time.Second):
		p.Stop("test")
		<-done
		t.Fatal("an IPI did not end the idle")
	}
	if vp.GuestIdles != 1 {
		t.Errorf("GuestIdles %d, want 1", vp.GuestIdles)
	}
	// The vector is still there, for the guest to take when IF allows:
	// a second read does not wait, and no event went in with IF clear.
	finished := make(chan struct{})
	go func() { rdmsr(vp, v, tlfs.MsrGuestIdle); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		p.Stop("test")
		<-finished
		t.Fatal("a read with a vector in IRR idled")
	}
	vp.deliver()
	if len(v.injected) != 0 {
		t.Fatalf("injected %+v with IF clear", v.injected)
	}
	v.regs.RFLAGS |= x86.RFLAGSIF
	vp.deliver()
	if len(v.injected) != 1 || v.injected[0].Vector != 0x40 {
		t.Fatalf("injected %+v once IF was set, want vector 0x40", v.injected)
	}
	wrmsr(vp, v, tlfs.MsrGuestIdle, 1)
	if gpCount(v) != 1 {
		t.Error("a write of GUEST_IDLE did not raise #GP")
	}
}
