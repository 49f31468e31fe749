package hv

import (
	"fmt"

	"gohv/hv/vcpu"
)

// Placement of VPs on host CPUs. Each VP runs on one host CPU from its
// start to its end (its thread is bound there, and the backend's state for
// it — a VMCS, a host save area — belongs to that CPU): the CPU a
// partition's configuration names for it, or else the online CPU with the
// fewest VPs, the highest-numbered of equals, which leaves the boot CPU,
// where the root's services start, to the last.

// HostCPUs is the host's processors as the core places VPs on them:
// metal's in the image, one CPU in host tests.
type HostCPUs interface {
	// CPUOnline reports whether host CPU i (0 to vcpu.MaxHostCPUs-1)
	// runs threads.
	CPUOnline(i int) bool
	// PinThread binds the calling thread to CPU cpu (-1: any CPU again)
	// and returns once it runs there.
	PinThread(cpu int) error
}

// placeVP picks the host CPU for a VP: want if it is not -1 (a
// configuration's choice, which must be online), else the least loaded.
func (h *Hypervisor) placeVP(want int) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if want >= 0 {
		if want >= vcpu.MaxHostCPUs || !h.Host.CPUOnline(want) {
			return -1, fmt.Errorf("host CPU %d is not online", want)
		}
		h.placed[want]++
		return want, nil
	}
	best := -1
	for i := vcpu.MaxHostCPUs - 1; i >= 0; i-- {
		if h.Host.CPUOnline(i) && (best < 0 || h.placed[i] < h.placed[best]) {
			best = i
		}
	}
	if best < 0 {
		return -1, fmt.Errorf("no host CPU is online")
	}
	h.placed[best]++
	return best, nil
}

// unplaceVP forgets a VP that left host CPU cpu.
func (h *Hypervisor) unplaceVP(cpu int) {
	h.mu.Lock()
	h.placed[cpu]--
	h.mu.Unlock()
}

// PlacedVPs is how many running VPs each host CPU holds.
func (h *Hypervisor) PlacedVPs() [vcpu.MaxHostCPUs]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.placed
}
