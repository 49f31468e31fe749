package apic

import (
	"errors"
	"testing"

	"gohv/x86"
)

const (
	en   = x86.APICBaseEnable
	extd = x86.APICBaseEXTD
	base = x86.APICDefaultBase
)

// TestAPICBaseTransitions walks every pair of IA32_APIC_BASE modes (SDM
// Vol. 3A 11.12.5, Figure 11-27): each legal transition takes effect, each
// illegal one is #GP and changes nothing.
func TestAPICBaseTransitions(t *testing.T) {
	modes := []struct {
		name string
		bits uint64
		mode Mode
	}{
		{"disabled", 0, ModeDisabled},
		{"xAPIC", en, ModeXAPIC},
		{"x2APIC", en | extd, ModeX2APIC},
		{"invalid", extd, 0},
	}
	legal := map[[2]string]bool{
		{"disabled", "disabled"}: true, {"disabled", "xAPIC"}: true,
		{"xAPIC", "disabled"}: true, {"xAPIC", "xAPIC"}: true, {"xAPIC", "x2APIC"}: true,
		{"x2APIC", "disabled"}: true, {"x2APIC", "x2APIC"}: true,
	}
	// How to reach each starting mode from xAPIC.
	reach := map[string][]uint64{
		"disabled": {base},
		"xAPIC":    nil,
		"x2APIC":   {base | en | extd},
	}
	for _, from := range modes[:3] {
		for _, to := range modes {
			l, _ := newOne(t)
			for _, v := range reach[from.name] {
				mustNil(t, l.WriteMSR(x86.MsrAPICBase, v))
			}
			before := l.Base()
			err := l.WriteMSR(x86.MsrAPICBase, base|to.bits)
			ok := legal[[2]string{from.name, to.name}]
			switch {
			case ok && err != nil:
				t.Errorf("%s -> %s: %v", from.name, to.name, err)
			case !ok && !errors.Is(err, ErrBaseTransition):
				t.Errorf("%s -> %s: err %v, want ErrBaseTransition", from.name, to.name, err)
			case !ok && l.Base() != before:
				t.Errorf("%s -> %s: base changed to %#x on #GP", from.name, to.name, l.Base())
			case ok && l.Mode() != to.mode:
				t.Errorf("%s -> %s: mode %v", from.name, to.name, l.Mode())
			}
			if err != nil && !errors.Is(err, ErrGP) {
				t.Errorf("%s -> %s: %v does not wrap ErrGP", from.name, to.name, err)
			}
		}
	}
}

// TestAPICBaseReservedBits: bits 7:0, 9 and those at or above MAXPHYADDR
// are reserved; EXTD is when x2APIC is not advertised; BSP is read-only;
// the base may move anywhere below MAXPHYADDR.
func TestAPICBaseReservedBits(t *testing.T) {
	l, _ := newOne(t) // MAXPHYADDR 46, BSP
	for _, v := range []uint64{base | en | 1, base | en | 0x80, base | en | 1<<9, 1<<46 | en, 1<<63 | en} {
		if err := l.WriteMSR(x86.MsrAPICBase, v); !errors.Is(err, ErrBaseReserved) {
			t.Errorf("IA32_APIC_BASE %#x: err %v, want ErrBaseReserved", v, err)
		}
	}
	mustNil(t, l.WriteMSR(x86.MsrAPICBase, 0x3fff_ffff_f000|en)) // highest page below 2^46; BSP cleared in the write
	if got := l.Base(); got != 0x3fff_ffff_f000|en|x86.APICBaseBSP {
		t.Errorf("base %#x: BSP must stay", got)
	}
	r := newRig(t, 1, func(_ int, c *Config) { c.X2APIC = false })
	if err := r.lapics[0].WriteMSR(x86.MsrAPICBase, base|en|extd); !errors.Is(err, ErrBaseReserved) {
		t.Errorf("EXTD without x2APIC: %v", err)
	}
}

// TestDisableResets: a globally disabled LAPIC takes nothing, its page
// reads as unclaimed, and re-enabling finds the power-up state.
func TestDisableResets(t *testing.T) {
	l, r := newOne(t)
	enable(l)
	xw(l, LAPIC_TPR, 0x30)
	xw(l, LAPIC_ID, 0x0700_0000)
	fixed(r, 7, 0x40)
	mustNil(t, l.WriteMSR(x86.MsrAPICBase, base))
	if m, _ := Deliver(r.bus, Message{Mode: DeliveryNMI, Dest: 0xff}); m != 0 {
		t.Fatal("a disabled LAPIC matched a message")
	}
	if got := xr(l, LAPIC_VER); got != 0xffff_ffff {
		t.Fatalf("page reads %#x while disabled", got)
	}
	mustNil(t, l.WriteMSR(x86.MsrAPICBase, base|en))
	if xr(l, LAPIC_TPR) != 0 || xr(l, LAPIC_SVR) != 0xff || xr(l, LAPIC_ID) != 0 {
		t.Fatal("re-enabled LAPIC not in its power-up state")
	}
	if irr, _, _ := l.snapshot(); bitsOf(irr) != nil || (l.TakeEvents() != Events{}) {
		t.Fatal("state survived the disable")
	}
}

// TestX2APICSwitchKeepsState: entering x2APIC mode keeps IRR, ISR, TPR,
// SVR and LVTs, replaces the ID and LDR; the page stops answering.
func TestX2APICSwitchKeepsState(t *testing.T) {
	r := newRig(t, 1, func(_ int, c *Config) { c.ID = 0x1_0203 })
	l := r.lapics[0]
	enable(l)
	if got := xr(l, LAPIC_ID); got != 0x0300_0000 {
		t.Fatalf("xAPIC ID %#x: want the low 8 bits of the initial ID", got)
	}
	xw(l, LAPIC_TPR, 0x20)
	xw(l, LAPIC_LVT_TIMER, 0x40)
	xw(l, LAPIC_LDR, 0x0100_0000)
	fixed(r, 3, 0x90)
	l.Ack()
	mustNil(t, l.WriteMSR(x86.MsrAPICBase, base|en|extd|x86.APICBaseBSP))
	for _, c := range []struct {
		msr  uint32
		want uint64
	}{
		{x86.MsrX2APICID, 0x1_0203},
		{x86.MsrX2APICLDR, 0x1020<<16 | 1<<3},
		{x86.MsrX2APICTPR, 0x20},
		{x86.MsrX2APICSIVR, 0x1ff},
		{x86.MsrX2APICLVTTimer, 0x40},
		{x86.MsrX2APICISR0 + 4, 1 << 16}, // vector 0x90
		{x86.MsrX2APICPPR, 0x90},
		{x86.MsrX2APICVersion, 0x0106_0014},
	} {
		got, err := l.ReadMSR(c.msr)
		if err != nil || got != c.want {
			t.Errorf("RDMSR %#x = %#x, %v; want %#x", c.msr, got, err, c.want)
		}
	}
	if got := xr(l, LAPIC_ID); got != 0xffff_ffff {
		t.Fatalf("page answers in x2APIC mode: %#x", got)
	}
	mustNil(t, l.WriteMSR(x86.MsrX2APICEOI, 0))
	if _, isr, _ := l.snapshot(); bitsOf(isr) != nil {
		t.Fatal("x2APIC EOI did not retire 0x90")
	}
}

// TestX2APICGP checks each #GP rule of SDM Vol. 3A 11.12.1.2-3 and that a
// faulting write changes nothing.
func TestX2APICGP(t *testing.T) {
	l, _ := newOne(t)
	if _, err := l.ReadMSR(x86.MsrX2APICTPR); !errors.Is(err, ErrNotX2APIC) {
		t.Fatalf("x2APIC MSR in xAPIC mode: %v", err)
	}
	if err := l.WriteMSR(x86.MsrX2APICTPR, 0); !errors.Is(err, ErrNotX2APIC) {
		t.Fatalf("x2APIC MSR write in xAPIC mode: %v", err)
	}
	mustNil(t, l.WriteMSR(x86.MsrAPICBase, base|en|extd))
	reads := []struct {
		msr  uint32
		want error
	}{
		{x86.MsrX2APICEOI, ErrWriteOnly},
		{x86.MsrX2APICSelfIPI, ErrWriteOnly},
		{0x809, ErrNoRegister}, // APR
		{0x80c, ErrNoRegister}, // RRD
		{0x80e, ErrNoRegister}, // DFR
		{0x831, ErrNoRegister}, // ICR high
		{0x800, ErrNoRegister},
		{0x8ff, ErrNoRegister},
		{0x840, ErrNoRegister},
	}
	for _, c := range reads {
		if _, err := l.ReadMSR(c.msr); !errors.Is(err, c.want) || !errors.Is(err, ErrGP) {
			t.Errorf("RDMSR %#x: %v, want %v", c.msr, err, c.want)
		}
	}
	writes := []struct {
		msr  uint32
		v    uint64
		want error
	}{
		{x86.MsrX2APICID, 5, ErrReadOnly},
		{x86.MsrX2APICVersion, 0, ErrReadOnly},
		{x86.MsrX2APICPPR, 0, ErrReadOnly},
		{x86.MsrX2APICLDR, 0, ErrReadOnly},
		{x86.MsrX2APICISR0, 0, ErrReadOnly},
		{x86.MsrX2APICTMR0 + 7, 0, ErrReadOnly},
		{x86.MsrX2APICIRR0 + 3, 0, ErrReadOnly},
		{x86.MsrX2APICCurCount, 0, ErrReadOnly},
		{0x80e, 0, ErrNoRegister},
		{0x831, 0, ErrNoRegister},
		{0x8ff, 0, ErrNoRegister},
		{x86.MsrX2APICTPR, 0x100, ErrReservedBits},
		{x86.MsrX2APICTPR, 1 << 32, ErrReservedBits},
		{x86.MsrX2APICEOI, 1, ErrReservedBits},
		{x86.MsrX2APICESR, 1, ErrReservedBits},
		{x86.MsrX2APICSIVR, 1 << 10, ErrReservedBits},
		{x86.MsrX2APICLVTTimer, 1 << 8, ErrReservedBits}, // no delivery mode on the timer
		{x86.MsrX2APICLVTTimer, 3 << TIMER_MODE, ErrReservedBits},
		{x86.MsrX2APICLVTError, 1 << 13, ErrReservedBits},
		{x86.MsrX2APICLVTLINT0, 1 << 17, ErrReservedBits},
		{x86.MsrX2APICDivConf, 0b100, ErrReservedBits},
		{x86.MsrX2APICSelfIPI, 0x100, ErrReservedBits},
		{x86.MsrX2APICICR, 1 << ICR_DLV_STATUS, ErrReservedBits},
		{x86.MsrX2APICICR, 1 << 20, ErrReservedBits},
		{x86.MsrX2APICInitCount, 1 << 32, ErrReservedBits},
		{0x1234, 0, ErrNotAPICMSR},
	}
	for _, c := range writes {
		before, _ := l.ReadMSR(x86.MsrX2APICTPR)
		if err := l.WriteMSR(c.msr, c.v); !errors.Is(err, c.want) || !errors.Is(err, ErrGP) {
			t.Errorf("WRMSR %#x = %#x: %v, want %v", c.msr, c.v, err, c.want)
		}
		if after, _ := l.ReadMSR(x86.MsrX2APICTPR); after != before {
			t.Errorf("WRMSR %#x changed TPR", c.msr)
		}
	}
	if l.Stats().IPIsSent != 0 {
		t.Error("a faulting ICR write sent an IPI")
	}
	// The read-only LVT bits are ignored, not faulted.
	mustNil(t, l.WriteMSR(x86.MsrX2APICLVTLINT0, 1<<LVT_REMOTE_IRR|1<<LVT_DLV_STATUS|lvtMasked))
	if got, _ := l.ReadMSR(x86.MsrX2APICLVTLINT0); got != lvtMasked {
		t.Errorf("LINT0 %#x", got)
	}
	if _, err := l.ReadMSR(0x1234); !errors.Is(err, ErrNotAPICMSR) {
		t.Error(err)
	}
	if HandlesMSR(0x1234) || !HandlesMSR(x86.MsrTSCDeadline) || !HandlesMSR(0x8ff) || !HandlesMSR(x86.MsrAPICBase) {
		t.Error("HandlesMSR")
	}
}

// TestX2APICICRAndSelfIPI: the ICR is one 64-bit MSR with a 32-bit
// destination, and SELF_IPI sends a fixed interrupt to the writer.
func TestX2APICICRAndSelfIPI(t *testing.T) {
	r := newRig(t, 2, func(i int, c *Config) { c.ID = uint32(i) * 0x100 })
	for _, l := range r.lapics {
		mustNil(t, l.WriteMSR(x86.MsrAPICBase, l.Base()|extd))
		mustNil(t, l.WriteMSR(x86.MsrX2APICSIVR, 0x1ff))
	}
	src := r.lapics[0]
	icr := uint64(0x100)<<32 | 0x4e
	mustNil(t, src.WriteMSR(x86.MsrX2APICICR, icr))
	if got, _ := src.ReadMSR(x86.MsrX2APICICR); got != icr {
		t.Fatalf("ICR reads %#x", got)
	}
	if got := takers(r, 0x4e); len(got) != 1 || got[0] != 1 {
		t.Fatalf("ICR to x2APIC ID 0x100 reached %v", got)
	}
	mustNil(t, src.WriteMSR(x86.MsrX2APICSelfIPI, 0x4f))
	if got := takers(r, 0x4f); len(got) != 1 || got[0] != 0 {
		t.Fatalf("SELF_IPI reached %v", got)
	}
	mustNil(t, src.WriteMSR(x86.MsrX2APICSelfIPI, 0x03))
	mustNil(t, src.WriteMSR(x86.MsrX2APICESR, 0))
	if got, _ := src.ReadMSR(x86.MsrX2APICESR); got != 1<<ESR_SEND_ILLEGAL_VEC|1<<ESR_RECV_ILLEGAL_VEC {
		t.Fatalf("ESR %#x after an illegal self IPI", got)
	}
}

// TestTSCDeadlineNotAdvertised: without CPUID.1:ECX.TSC_Deadline the MSR
// faults and the timer mode field has no TSC-deadline value.
func TestTSCDeadlineNotAdvertised(t *testing.T) {
	r := newRig(t, 1, func(_ int, c *Config) { c.TSCDeadline = false })
	l := r.lapics[0]
	if _, err := l.ReadMSR(x86.MsrTSCDeadline); !errors.Is(err, ErrNoTSCDeadline) {
		t.Fatal(err)
	}
	if err := l.WriteMSR(x86.MsrTSCDeadline, 1); !errors.Is(err, ErrNoTSCDeadline) {
		t.Fatal(err)
	}
	enable(l)
	xw(l, LAPIC_LVT_TIMER, TIMER_MODE_TSC_DEADLINE<<TIMER_MODE|0x40)
	if got := xr(l, LAPIC_LVT_TIMER); got != 0x40 {
		t.Fatalf("LVT timer %#x", got)
	}
}

func TestErrorsNameTheCheck(t *testing.T) {
	if got := ErrReadOnly.Error(); got != "apic: #GP(0): write to a read-only x2APIC register" {
		t.Fatal(got)
	}
	r := newRig(t, 2, func(i int, c *Config) { c.ID = uint32(i) + 0x100 })
	if r.lapics[1].ID() != 0x01 {
		t.Fatalf("xAPIC ID %#x, want the low 8 bits", r.lapics[1].ID())
	}
	mustNil(t, r.lapics[1].WriteMSR(x86.MsrAPICBase, base|en|extd))
	if r.lapics[1].ID() != 0x101 {
		t.Fatalf("x2APIC ID %#x", r.lapics[1].ID())
	}
}
