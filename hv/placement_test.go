package hv

import (
	"slices"
	"strings"
	"testing"

	"gohv/hv/vcpu/vcputest"
)

// TestPlacement: VPs go to the least loaded online CPU, the highest of
// equals, never the boot CPU while others are online; a wanted CPU must be
// online and not the boot CPU then; leaving frees the slot. With one CPU,
// every VP runs on it.
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
	for _, bad := range []int{0, 4, 16} {
		if _, err := h.placeVP(bad); err == nil {
			t.Errorf("CPU %d accepted", bad)
		} else if bad == 0 && !strings.Contains(err.Error(), "boot CPU") {
			t.Errorf("CPU 0: %v", err)
		}
	}
	one := &Hypervisor{Host: &testHost{FakeHost: vcputest.NewFakeHost(), pinFail: -1}}
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
