package apic

import (
	"testing"

	"gohv/x86"
)

// TestRegisterOffsetsMatchTheManual pins each xAPIC register offset (SDM
// Vol. 3A Table 11-1, written as the page address FEE0_0xxxH there) and
// each field position to the manual.
func TestRegisterOffsetsMatchTheManual(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"Local APIC ID", LAPIC_ID, 0xfee0_0020 - 0xfee0_0000},
		{"Local APIC Version", LAPIC_VER, 0x30},
		{"Task Priority", LAPIC_TPR, 0x80},
		{"Arbitration Priority", LAPIC_APR, 0x90},
		{"Processor Priority", LAPIC_PPR, 0xa0},
		{"EOI", LAPIC_EOI, 0xb0},
		{"Remote Read", LAPIC_RRD, 0xc0},
		{"Logical Destination", LAPIC_LDR, 0xd0},
		{"Destination Format", LAPIC_DFR, 0xe0},
		{"Spurious Interrupt Vector", LAPIC_SVR, 0xf0},
		{"ISR bits 31:0", LAPIC_ISR, 0x100},
		{"TMR bits 31:0", LAPIC_TMR, 0x180},
		{"IRR bits 31:0", LAPIC_IRR, 0x200},
		{"Error Status", LAPIC_ESR, 0x280},
		{"LVT CMCI", LAPIC_LVT_CMCI, 0x2f0},
		{"ICR 0-31", LAPIC_ICRL, 0x300},
		{"ICR 32-63", LAPIC_ICRH, 0x310},
		{"LVT Timer", LAPIC_LVT_TIMER, 0x320},
		{"LVT Thermal Sensor", LAPIC_LVT_THERMAL, 0x330},
		{"LVT Performance Monitoring Counters", LAPIC_LVT_PERF, 0x340},
		{"LVT LINT0", LAPIC_LVT_LINT0, 0x350},
		{"LVT LINT1", LAPIC_LVT_LINT1, 0x360},
		{"LVT Error", LAPIC_LVT_ERROR, 0x370},
		{"Initial Count", LAPIC_TIMER_INITIAL, 0x380},
		{"Current Count", LAPIC_TIMER_CURRENT, 0x390},
		{"Divide Configuration", LAPIC_TIMER_DIVIDE, 0x3e0},
		// Fields (SDM Vol. 3A Figures 11-7, 11-8, 11-12, 11-23).
		{"SVR APIC software enable", 1 << SVR_ENABLE, 0x100},
		{"SVR EOI-broadcast suppression", 1 << SVR_EOI_SUPPRESS, 0x1000},
		{"VER EOI-broadcast suppression", 1 << VER_EOI_SUPPRESS, 0x100_0000},
		{"LVT mask", 1 << LVT_MASK, 0x1_0000},
		{"LVT remote IRR", 1 << LVT_REMOTE_IRR, 0x4000},
		{"LVT trigger mode", 1 << LVT_TRIGGER, 0x8000},
		{"LVT timer TSC-deadline", TIMER_MODE_TSC_DEADLINE << TIMER_MODE, 0x4_0000},
		{"LVT timer periodic", TIMER_MODE_PERIODIC << TIMER_MODE, 0x2_0000},
		{"ICR INIT", ICR_DLV_INIT, 0x500},
		{"ICR start-up", ICR_DLV_SIPI, 0x600},
		{"ICR NMI", ICR_DLV_NMI, 0x400},
		{"ICR logical", 1 << ICR_DEST_MODE, 0x800},
		{"ICR level assert", 1 << ICR_INIT, 0x4000},
		{"ICR trigger level", 1 << ICR_TRIGGER, 0x8000},
		{"ICR self", ICR_DST_SELF, 0x4_0000},
		{"ICR all including self", ICR_DST_ALL, 0x8_0000},
		{"ICR all excluding self", ICR_DST_REST, 0xc_0000},
		{"ESR send illegal vector", 1 << ESR_SEND_ILLEGAL_VEC, 0x20},
		{"ESR receive illegal vector", 1 << ESR_RECV_ILLEGAL_VEC, 0x40},
		{"ESR illegal register address", 1 << ESR_ILLEGAL_REG_ADDR, 0x80},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, the manual says %#x", c.name, c.got, c.want)
		}
	}
}

// TestX2APICMSRsAreOffsetsShifted checks SDM Vol. 3A 11.12.1.2's rule,
// MSR = 0x800 + offset>>4, for every register both interfaces have.
func TestX2APICMSRsAreOffsetsShifted(t *testing.T) {
	for _, c := range []struct {
		msr uint32
		off uint32
	}{
		{x86.MsrX2APICID, LAPIC_ID}, {x86.MsrX2APICVersion, LAPIC_VER},
		{x86.MsrX2APICTPR, LAPIC_TPR}, {x86.MsrX2APICPPR, LAPIC_PPR},
		{x86.MsrX2APICEOI, LAPIC_EOI}, {x86.MsrX2APICLDR, LAPIC_LDR},
		{x86.MsrX2APICSIVR, LAPIC_SVR}, {x86.MsrX2APICISR0, LAPIC_ISR},
		{x86.MsrX2APICTMR0, LAPIC_TMR}, {x86.MsrX2APICIRR0, LAPIC_IRR},
		{x86.MsrX2APICESR, LAPIC_ESR}, {x86.MsrX2APICLVTCMCI, LAPIC_LVT_CMCI},
		{x86.MsrX2APICICR, LAPIC_ICRL}, {x86.MsrX2APICLVTTimer, LAPIC_LVT_TIMER},
		{x86.MsrX2APICLVTThermal, LAPIC_LVT_THERMAL}, {x86.MsrX2APICLVTPMI, LAPIC_LVT_PERF},
		{x86.MsrX2APICLVTLINT0, LAPIC_LVT_LINT0}, {x86.MsrX2APICLVTLINT1, LAPIC_LVT_LINT1},
		{x86.MsrX2APICLVTError, LAPIC_LVT_ERROR}, {x86.MsrX2APICInitCount, LAPIC_TIMER_INITIAL},
		{x86.MsrX2APICCurCount, LAPIC_TIMER_CURRENT}, {x86.MsrX2APICDivConf, LAPIC_TIMER_DIVIDE},
		{x86.MsrX2APICSelfIPI, LAPIC_SELF_IPI},
	} {
		if got := x2apicOffset(c.msr); got != c.off {
			t.Errorf("MSR %#x maps to offset %#x, want %#x", c.msr, got, c.off)
		}
	}
}

// TestDivideBy pins the divide configuration encoding (SDM Vol. 3A Figure
// 11-10) for all eight values, and shows bit 2 is not part of it.
func TestDivideBy(t *testing.T) {
	want := map[uint32]uint64{
		0b0000: 2, 0b0001: 4, 0b0010: 8, 0b0011: 16,
		0b1000: 32, 0b1001: 64, 0b1010: 128, 0b1011: 1,
	}
	for dcr, div := range want {
		if got := divideBy(dcr); got != div {
			t.Errorf("divide configuration %04b: divide by %d, want %d", dcr, got, div)
		}
	}
	l, _ := newOne(t)
	xw(l, LAPIC_TIMER_DIVIDE, 0xffff_ffff)
	if got := xr(l, LAPIC_TIMER_DIVIDE); got != 0b1011 {
		t.Errorf("divide configuration after writing all ones reads %#x, want 0xb", got)
	}
}

// TestPowerUpState checks the reset values of SDM Vol. 3A 11.4.7.1.
func TestPowerUpState(t *testing.T) {
	r := newRig(t, 2, nil)
	bsp, ap := r.lapics[0], r.lapics[1]
	if got, want := bsp.Base(), uint64(0xfee0_0900); got != want {
		t.Errorf("BSP IA32_APIC_BASE = %#x, want %#x", got, want)
	}
	if got, want := ap.Base(), uint64(0xfee0_0800); got != want {
		t.Errorf("AP IA32_APIC_BASE = %#x, want %#x", got, want)
	}
	for _, c := range []struct {
		name string
		off  uint32
		want uint32
	}{
		{"ID", LAPIC_ID, 1 << 24},
		{"version", LAPIC_VER, 0x0106_0014},
		{"TPR", LAPIC_TPR, 0},
		{"PPR", LAPIC_PPR, 0},
		{"LDR", LAPIC_LDR, 0},
		{"DFR", LAPIC_DFR, 0xffff_ffff},
		{"SVR", LAPIC_SVR, 0xff},
		{"ESR", LAPIC_ESR, 0},
		{"LVT timer", LAPIC_LVT_TIMER, 0x1_0000},
		{"LVT LINT0", LAPIC_LVT_LINT0, 0x1_0000},
		{"LVT error", LAPIC_LVT_ERROR, 0x1_0000},
		{"LVT CMCI", LAPIC_LVT_CMCI, 0x1_0000},
		{"initial count", LAPIC_TIMER_INITIAL, 0},
		{"current count", LAPIC_TIMER_CURRENT, 0},
		{"divide", LAPIC_TIMER_DIVIDE, 0},
	} {
		if got := xr(ap, c.off); got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, got, c.want)
		}
	}
	if got := ap.Mode(); got != ModeXAPIC {
		t.Errorf("mode %v, want xAPIC", got)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	c := newFakeClock()
	bus := &StaticBus{}
	for _, cfg := range []Config{
		{Bus: bus, Sink: &fakeSink{}},
		{Clock: c, Sink: &fakeSink{}},
		{Clock: c, Bus: bus},
		{Clock: c, Bus: bus, Sink: &fakeSink{}, PhysAddrBits: 60},
		{Clock: c, Bus: bus, Sink: &fakeSink{}, TimerHz: 1e13},
		{Clock: &fakeClock{}, Bus: bus, Sink: &fakeSink{}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
