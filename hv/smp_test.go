package hv

import (
	"strings"
	"testing"

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
