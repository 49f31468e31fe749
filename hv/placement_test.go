package hv

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"gohv/hv/vcpu/vcputest"
	"gohv/x86"
)

// TestPlacement: VPs go to the least loaded online CPU, the highest of
// equals, not the boot CPU while others are online unless a configuration
// names it (refused only under QEMU's TCG); a wanted CPU must be online;
// leaving frees the slot. With one CPU, every VP runs on it, TCG or not.
func TestPlacement(t *testing.T) {
	h := &Hypervisor{Host: &testHost{FakeHost: vcputest.NewFakeHost(), cpus: 4, pinFail: -1}}
	var got []int
	for range 7 {
		c, err := h.placeVP(-1)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if want := []int{3, 2, 1, 3, 2, 1, 3}; !slices.Equal(got, want) {
		t.Errorf("placed on %v, want %v", got, want)
	}
	if p := h.PlacedVPs(); p[0] != 0 || p[1] != 2 || p[3] != 3 {
		t.Errorf("placed %v", p[:4])
	}
	h.unplaceVP(3)
	h.unplaceVP(3)
	if c, _ := h.placeVP(-1); c != 3 {
		t.Errorf("after two left CPU 3, the next VP went to %d", c)
	}
	if c, err := h.placeVP(2); c != 2 || err != nil {
		t.Errorf("wanted CPU 2: %d, %v", c, err)
	}
	for _, bad := range []int{4, 16} {
		if _, err := h.placeVP(bad); err == nil {
			t.Errorf("CPU %d accepted", bad)
		}
	}
	if c, err := h.placeVP(0); c != 0 || err != nil {
		t.Errorf("wanted the boot CPU: %d, %v", c, err)
	}
	h.tcg = true
	if _, err := h.placeVP(0); err == nil || !strings.Contains(err.Error(), "QEMU TCG") {
		t.Errorf("wanted the boot CPU under QEMU TCG: %v", err)
	}
	if c, _ := h.placeVP(-1); c == 0 {
		t.Errorf("the boot CPU was chosen with others online")
	}
	one := &Hypervisor{Host: &testHost{FakeHost: vcputest.NewFakeHost(), pinFail: -1}, tcg: true}
	for range 3 {
		if c, err := one.placeVP(-1); c != 0 || err != nil {
			t.Fatalf("one CPU: %d, %v", c, err)
		}
	}
	if c, err := one.placeVP(0); c != 0 || err != nil {
		t.Errorf("one CPU, wanted 0: %d, %v", c, err)
	}
}

// TestPartitionPlacedInVPOrder: a partition's VPs are placed in index
// order before any thread starts, so a guest's CPUs 0, 1, 2 land on three
// different host CPUs whatever order their threads run in; a second
// partition fills in after them.
func TestPartitionPlacedInVPOrder(t *testing.T) {
	b := &fakeBackend{}
	h := New(b, &testHost{FakeHost: vcputest.NewFakeHost(), cpus: 4, pinFail: -1}, NewCPUModel(), nil)
	var got []int
	for _, vps := range []int{4, 2} {
		p, err := h.NewPartition(Config{Name: "p", RAMBytes: 1 << 20, Console: &recorder{}, VPs: vps})
		if err != nil {
			t.Fatal(err)
		}
		p.placeVPs()
		for i := range vps {
			if err := p.VP(i).placeErr; err != nil {
				t.Fatal(err)
			}
			got = append(got, p.VP(i).placed)
		}
	}
	if want := []int{3, 2, 1, 3, 2, 1}; !slices.Equal(got, want) {
		t.Errorf("VPs placed on %v, want %v", got, want)
	}
}

// TestQEMUTCG: the hypervisor bit with QEMU's "TCGTCGTCGTCG" at 4000_0000h
// is TCG; a real CPU (no hypervisor bit), KVM's signature, or the
// signature without the bit is not.
func TestQEMUTCG(t *testing.T) {
	cpuid := func(hv bool, sig string) func(leaf, sub uint32) (a, b, c, d uint32) {
		return func(leaf, sub uint32) (a, b, c, d uint32) {
			switch leaf {
			case x86.CPUIDFeatures:
				if hv {
					c = x86.CPUID1ECXHypervisor
				}
			case x86.CPUIDHypervisorBase:
				s := []byte(sig + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
				a = x86.CPUIDHypervisorBase + 1
				b, c, d = binary.LittleEndian.Uint32(s), binary.LittleEndian.Uint32(s[4:]), binary.LittleEndian.Uint32(s[8:])
			}
			return
		}
	}
	for _, c := range []struct {
		hv   bool
		sig  string
		want bool
	}{
		{true, "TCGTCGTCGTCG", true},
		{false, "TCGTCGTCGTCG", false},
		{true, "KVMKVMKVM", false},
		{true, "", false},
		{false, "", false},
	} {
		if got := qemuTCG(cpuid(c.hv, c.sig)); got != c.want {
			t.Errorf("hypervisor bit %v, signature %q: TCG %v, want %v", c.hv, c.sig, got, c.want)
		}
	}
}
